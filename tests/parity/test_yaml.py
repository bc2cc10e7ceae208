"""Model files both ways: plugboard's `dump()` output runs here, and ours runs in plugboard.

`models/*.peer.yaml` were written by plugboard 0.9's own `process.dump()` (see
`models/make_peer_dumps.py`); the tests that run our dumps in plugboard need the peer.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
import typing as _t

import jsonschema
from parity_complex import Offset, Random, Save, Scale, Sum
from parity_events import EventWriter, Labels
from parity_hello import A, B, pow2
import pytest
import yaml

from prefect_plugboard import build_process, load_model
from prefect_plugboard.builder.yaml_export import yaml_type_path
from prefect_plugboard.component import IO, Component
from prefect_plugboard.connector import AsyncioConnector, ConnectorBuilder, RayConnector
from prefect_plugboard.library import (
    DataReader,
    DataWriter,
    FileReader,
    FileWriter,
    SQLReader,
    SQLWriter,
    WebsocketReader,
    WebsocketWriter,
)
from prefect_plugboard.process import LocalProcess, Process, ProcessBuilder, RayProcess
from prefect_plugboard.schemas import ConfigSpec, ConnectorSpec, Status
from tests.helpers import status
from tests.parity.conftest import MODELS, Peer


def lines(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().splitlines()]


def rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))


def random_values(seed: int, count: int) -> list[float]:
    import random

    generator = random.Random(seed)
    return [generator.uniform(0, 10) for _ in range(count)]


def loop_values(seed: int, count: int, scale: float) -> list[float]:
    totals, total = [], 0.0
    for value in random_values(seed, count):
        total = value + scale * total
        totals.append(total)
    return totals


def check_hello(folder: Path) -> None:
    assert lines(folder / "b.txt") == [0, 2, 4, 6, 8]


def check_branching(folder: Path) -> None:
    values = random_values(3, 5)
    assert lines(folder / "input.txt") == pytest.approx(values)
    assert lines(folder / "output.txt") == pytest.approx([v + 10 + 2 * v for v in values])
    assert lines(folder / "more.txt") == pytest.approx([3 * v for v in values])


def check_loop(folder: Path) -> None:
    assert lines(folder / "loop.txt") == pytest.approx(loop_values(3, 5, 0.5))


def check_events(folder: Path) -> None:
    values = random_values(5, 20)
    assert [float(r[0]) for r in rows(folder / "high.csv")[1:]] == pytest.approx(
        [v for v in values if v >= 8]
    )
    assert [float(r[0]) for r in rows(folder / "low.csv")[1:]] == pytest.approx(
        [v for v in values if v <= 2]
    )


def check_staggered(folder: Path) -> None:
    assert rows(folder / "xy.csv") == [["x", "y"], ["x0", "y0"], ["x1", "y1"], ["x2", "y2"]]


LIBRARY_INPUT = "value\n0\n1\n2\n3\n4\n"


def check_library(folder: Path) -> None:
    check_hello(folder)
    assert [float(r[0]) for r in rows(folder / "copy.csv")[1:]] == [0, 1, 2, 3, 4]


CHECKS: dict[str, _t.Callable[[Path], None]] = {
    "hello": check_hello,
    "branching": check_branching,
    "loop": check_loop,
    "events": check_events,
    "staggered": check_staggered,
}


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_plugboards_dumps_load_and_run_here(name: str, in_tmp: Path) -> None:
    process = build_process(load_model(MODELS / f"{name}.peer.yaml"))
    assert isinstance(process, LocalProcess)
    async with process:
        await process.run()
    assert status(process) is Status.COMPLETED
    CHECKS[name](in_tmp)


@pytest.mark.ray
@pytest.mark.usefixtures("prefect_api", "ray_cluster")
async def test_plugboards_ray_model_runs_on_ray(in_tmp: Path) -> None:
    out = in_tmp / "b.txt"  # workers have a working directory of their own: a full path
    model = load_model(MODELS / "ray.peer.yaml", overrides=[f"component.b.arg.path={out}"])
    process = build_process(model)
    assert isinstance(process, RayProcess)
    assert {type(c) for c in process.connectors.values()} == {RayConnector}
    async with process:
        await process.run()
    check_hello(in_tmp)


@pytest.mark.usefixtures("prefect_api")
async def test_a_zmq_connector_stands_in_as_a_ray_connector(
    kind: str, in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = in_tmp / "b.txt"  # Ray workers have a working directory of their own: a full path
    with caplog.at_level(logging.INFO, logger="prefect_plugboard"):
        model = load_model(
            MODELS / "zmq.peer.yaml",
            process_type="ray" if kind == "ray" else None,  # "local" would switch to asyncio
            overrides=[f"component.b.arg.path={out}"],
        )
        process = build_process(model)
    assert isinstance(process, LocalProcess if kind == "local" else RayProcess)
    assert {type(c) for c in process.connectors.values()} == {RayConnector}
    assert any("ZMQConnector runs on RayConnector here" in r.getMessage() for r in caplog.records)
    async with process:
        await process.run()
    assert status(process) is Status.COMPLETED
    check_hello(in_tmp)


def test_connector_builder_parameters_are_accepted_with_a_warning_when_not_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = yaml.safe_load((MODELS / "zmq.peer.yaml").read_text())
    with caplog.at_level(logging.WARNING, logger="prefect_plugboard"):
        build_process(load_model(MODELS / "zmq.peer.yaml"))  # plugboard writes `{}`: no warning
    assert not caplog.records
    data["plugboard"]["process"]["connector_builder"]["args"]["parameters"] = {"rate": 5}
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING, logger="prefect_plugboard"):
        process = build_process(load_model(model))
    assert {type(c) for c in process.connectors.values()} == {RayConnector}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "connector_builder.args.parameters" in warning
    assert "{'rate': 5}" in warning and "not used" in warning


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.peer.yaml")), ids=lambda p: p.stem)
def test_the_json_schema_accepts_plugboards_dumps(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), ConfigSpec.model_json_schema())


def test_plugboards_schema_and_builder_names_build_the_same_process() -> None:
    data = yaml.safe_load((MODELS / "branching.peer.yaml").read_text())
    config = ConfigSpec.model_validate(data)
    process = ProcessBuilder.build(config.plugboard.process)
    again = ProcessBuilder.build(config)
    assert process.export() == again.export() == build_process(load_model(data)).export()
    assert set(process.components) == {
        "random",
        "offset",
        "scale",
        "scale-more",
        "sum",
        "save-input",
        "save-output",
        "save-more",
    }


# ----- our dumps ------------------------------------------------------------------------


def ours(name: str) -> Process:
    """The same models, built here (relative paths, as a model file would have them)."""

    def wire(*pairs: str) -> list[AsyncioConnector]:
        return [
            AsyncioConnector(spec=ConnectorSpec(source=s, target=t))
            for s, t in (p.split(" -> ") for p in pairs)
        ]

    if name == "hello":
        return LocalProcess(
            name="hello",
            components=[
                A(name="a", iters=5),
                B(name="b", path="b.txt"),
                pow2.component(name="squares"),
                B(name="save-squares", path="squares.txt"),
            ],
            connectors=wire(
                "a.out_1 -> b.in_1", "a.out_1 -> squares.in_1", "squares.out_1 -> save-squares.in_1"
            ),
        )
    if name == "branching":
        return LocalProcess(
            name="branching",
            parameters={"scale": 2},
            components=[
                Random(name="random", iters=5, seed=3),
                Offset(name="offset", offset=10),
                Scale(name="scale"),
                Scale(name="scale-more", parameters={"scale": 3}),
                Sum(name="sum"),
                Save(name="save-input", path="input.txt"),
                Save(name="save-output", path="output.txt"),
                Save(name="save-more", path="more.txt"),
            ],
            connectors=wire(
                "random.x -> save-input.value_to_save",
                "random.x -> offset.a",
                "random.x -> scale.a",
                "random.x -> scale-more.a",
                "offset.b -> sum.a",
                "scale.b -> sum.b",
                "sum.c -> save-output.value_to_save",
                "scale-more.b -> save-more.value_to_save",
            ),
        )
    if name == "library":  # plugboard's library classes, named as plugboard names them
        return LocalProcess(
            name="library",
            components=[
                FileReader(name="read", path="input.csv", field_names=["value"]),
                B(name="b", path="b.txt"),
                FileWriter(name="save", path="copy.csv", field_names=["value"]),
            ],
            connectors=wire("read.value -> b.in_1", "read.value -> save.value"),
        )
    if name == "ray":
        return RayProcess(
            name="ray",
            components=[
                A(name="a", iters=5),
                B(name="b", path="b.txt"),
                FileWriter(name="save", path="numbers.csv", field_names=["value"]),
            ],
            connectors=[
                RayConnector(spec=ConnectorSpec(source=s, target=t))
                for s, t in (("a.out_1", "b.in_1"), ("a.out_1", "save.value"))
            ],
        )
    if name == "loop":
        return LocalProcess(
            name="loop",
            parameters={"scale": 0.5},
            components=[
                Random(name="random", iters=5, seed=3),
                Sum(name="sum"),
                Scale(name="scale", initial_values={"a": [0]}),
                Save(name="save-output", path="loop.txt"),
            ],
            connectors=wire(
                "random.x -> sum.a",
                "scale.b -> sum.b",
                "sum.c -> scale.a",
                "sum.c -> save-output.value_to_save",
            ),
        )
    components: list[Component] = [
        Labels(name="xs", field="x", count=3, delay=0.01),
        Labels(name="ys", field="y", count=3, delay=0.05),
        EventWriter(name="save", path="xy.csv", field_names=["x", "y"]),
    ]
    events = ConnectorBuilder(AsyncioConnector).build_event_connectors(components)
    return LocalProcess(name="staggered", components=components, connectors=events)


PEER_RUN = """
import asyncio, json
from pathlib import Path
import msgspec
from plugboard.process import ProcessBuilder
from plugboard.schemas import ConfigSpec

spec = ConfigSpec.model_validate(msgspec.yaml.decode(Path("model.yaml").read_bytes()))
process = ProcessBuilder.build(spec.plugboard.process)

async def main():
    async with process:
        await process.run()

asyncio.run(main())
print(json.dumps({"status": str(process.status), "types": sorted(
    type(c).__module__ + "." + type(c).__name__ for c in process.components.values())}))
"""


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("name", ["hello", "branching", "loop", "staggered", "library"])
async def test_our_dumps_run_here_and_in_plugboard(
    name: str, peer: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = tmp_path / "ours", tmp_path / "peer"
    for folder in (mine, theirs):
        folder.mkdir()
        (folder / "input.csv").write_text(LIBRARY_INPUT)
    monkeypatch.chdir(mine)
    ours(name).dump("model.yaml")
    (theirs / "model.yaml").write_text((mine / "model.yaml").read_text())
    process = build_process(load_model("model.yaml"))
    async with process:
        await process.run()
    result = peer.run(PEER_RUN, cwd=theirs)
    assert result["status"] == "completed"
    for folder in (mine, theirs):
        if name in CHECKS:
            CHECKS[name](folder)
    if name == "hello":  # the @component function, named by its import path, in both
        for folder in (mine, theirs):
            assert lines(folder / "squares.txt") == [2 * i**2 for i in range(5)]
    if name == "library":
        assert result["types"] == [
            "parity_hello.B",
            "plugboard.library.file_io.FileReader",
            "plugboard.library.file_io.FileWriter",
        ]
        for folder in (mine, theirs):
            check_library(folder)


PEER_BUILD = """
import json
from pathlib import Path
import msgspec
from plugboard.process import ProcessBuilder
from plugboard.schemas import ConfigSpec

spec = ConfigSpec.model_validate(msgspec.yaml.decode(Path("model.yaml").read_bytes()))
process = ProcessBuilder.build(spec.plugboard.process)
print(json.dumps({
    "process": type(process).__module__ + "." + type(process).__name__,
    "connectors": sorted({type(c).__name__ for c in process.connectors.values()}),
    "types": {n: type(c).__module__ + "." + type(c).__name__
              for n, c in process.components.items()},
}))
"""


@pytest.mark.slow
def test_our_ray_dump_builds_in_plugboard(peer: Peer, in_tmp: Path) -> None:
    ours("ray").dump("model.yaml")
    result = peer.run(PEER_BUILD, cwd=in_tmp)  # built only: running would start Ray there
    assert result == {
        "process": "plugboard.process.ray_process.RayProcess",
        "connectors": ["RayConnector"],
        "types": {
            "a": "parity_hello.A",
            "b": "parity_hello.B",
            "save": "plugboard.library.file_io.FileWriter",
        },
    }
    again = build_process(load_model("model.yaml"))
    assert isinstance(again, RayProcess)
    assert again.export() == ours("ray").export()


@pytest.mark.usefixtures("prefect_api")
async def test_a_component_function_named_in_yaml_runs(kind: str, in_tmp: Path) -> None:
    ours("hello").dump("model.yaml")
    assert "type: parity_hello.pow2" in Path("model.yaml").read_text()
    # Ray workers have a working directory of their own: full paths.
    paths = {"b": in_tmp / "b.txt", "save-squares": in_tmp / "squares.txt"}
    model = load_model(
        "model.yaml",
        process_type=kind,
        overrides=[f"component.{name}.arg.path={path}" for name, path in paths.items()],
    )
    process = build_process(model)
    assert isinstance(process, LocalProcess if kind == "local" else RayProcess)
    async with process:
        await process.run()
    assert status(process) is Status.COMPLETED
    assert lines(paths["save-squares"]) == [2 * i**2 for i in range(5)]
    check_hello(in_tmp)


def test_our_dump_names_what_plugboard_names(in_tmp: Path) -> None:
    process = ours("hello")
    process.dump("model.yaml")
    dumped = yaml.safe_load(Path("model.yaml").read_text())["plugboard"]["process"]
    assert dumped["type"] == "plugboard.process.LocalProcess"
    assert dumped["connector_builder"] == {"type": "plugboard.connector.AsyncioConnector"}
    assert [c["type"] for c in dumped["args"]["components"]] == [
        "parity_hello.A",
        "parity_hello.B",
        "parity_hello.pow2",
        "parity_hello.B",
    ]
    again = build_process(load_model("model.yaml"))
    assert again.export() == process.export()


def test_dump_refuses_what_it_cannot_write(in_tmp: Path) -> None:
    with pytest.raises(ValueError, match="give the path a .yaml or .yml suffix \\(got '.txt'\\)"):
        ours("hello").dump("p.txt")
    assert not Path("p.txt").exists()

    class Local(Component):
        io = IO(outputs=["x"])

    process = LocalProcess(components=[Local(name="local")], connectors=[])
    with pytest.raises(ValueError, match="Local is defined inside a function"):
        process.dump("model.yaml")
    assert not Path("model.yaml").exists()


def test_connector_settings_shared_by_all_go_to_the_builder(in_tmp: Path) -> None:
    process = RayProcess(
        components=[A(name="a", iters=1), B(name="b", path="b.txt")],
        connectors=[RayConnector(spec=ConnectorSpec(source="a.out_1", target="b.in_1"), maxsize=8)],
    )
    builder = process.export()["plugboard"]["process"]["connector_builder"]
    assert builder == {"type": "plugboard.connector.RayConnector", "args": {"maxsize": 8}}


def test_our_dump_names_processes_and_library_classes_as_plugboard_does() -> None:
    dumped = ours("ray").export()["plugboard"]["process"]
    assert dumped["type"] == "plugboard.process.RayProcess"
    assert dumped["connector_builder"]["type"] == "plugboard.connector.RayConnector"
    assert [c["type"] for c in dumped["args"]["components"]] == [
        "parity_hello.A",
        "parity_hello.B",
        "plugboard.library.file_io.FileWriter",
    ]


PLUGBOARD_NAMES: list[tuple[type, str]] = [
    (LocalProcess, "plugboard.process.LocalProcess"),
    (RayProcess, "plugboard.process.RayProcess"),
    (AsyncioConnector, "plugboard.connector.AsyncioConnector"),
    (RayConnector, "plugboard.connector.RayConnector"),
    # plugboard's component registry knows these by their module's path only.
    (DataReader, "plugboard.library.data_reader.DataReader"),
    (DataWriter, "plugboard.library.data_writer.DataWriter"),
    (FileReader, "plugboard.library.file_io.FileReader"),
    (FileWriter, "plugboard.library.file_io.FileWriter"),
    (SQLReader, "plugboard.library.sql_io.SQLReader"),
    (SQLWriter, "plugboard.library.sql_io.SQLWriter"),
    (WebsocketReader, "plugboard.library.websocket_io.WebsocketReader"),
    (WebsocketWriter, "plugboard.library.websocket_io.WebsocketWriter"),
]


@pytest.mark.parametrize(
    ("cls", "name"), PLUGBOARD_NAMES, ids=[cls.__name__ for cls, _ in PLUGBOARD_NAMES]
)
def test_classes_plugboard_has_are_dumped_under_its_registry_names(cls: type, name: str) -> None:
    assert yaml_type_path(cls) == name
