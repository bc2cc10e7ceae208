"""Writes the `*.peer.yaml` files beside it with plugboard 0.9's own `process.dump()`.

Run with the peer's Python, from this folder: `/tmp/peer-venv/bin/python make_peer_dumps.py`.
The files are plugboard's output, kept so that tests check "plugboard's dumps load here"
without the peer installed. plugboard's `dump()` always names `AsyncioConnector` (and refuses
a `RayProcess` for it), so the ZMQ and Ray variants are the hello model's spec changed with
plugboard's own schema (`override_process_type("ray")`, as its `--process-type ray`) and
written as its `dump()` writes.
"""

import asyncio
from pathlib import Path

import msgspec  # type: ignore[import-not-found]
from parity_api import Resource
from parity_complex import Offset, Random, Save, Scale, Sum
from parity_events import (
    CollectHigh,
    CollectLow,
    EventWriter,
    FindHighLowValues,
    HighEvent,
    Labels,
    LowEvent,
)
from parity_hello import A, B
from plugboard.connector import AsyncioConnector, ConnectorBuilder  # type: ignore[import-not-found]
from plugboard.library import FileWriter  # type: ignore[import-not-found]
from plugboard.process import LocalProcess  # type: ignore[import-not-found]
from plugboard.schemas import ConfigSpec, ConnectorSpec  # type: ignore[import-not-found]


def wire(cls: type, *pairs: tuple[str, str]) -> list[object]:
    return [cls(spec=ConnectorSpec(source=s, target=t)) for s, t in pairs]


def hello() -> object:
    return LocalProcess(
        name="hello",
        components=[
            A(name="a", iters=5, resources=Resource(cpu="500m")),
            B(name="b", path="b.txt"),
        ],
        connectors=wire(AsyncioConnector, ("a.out_1", "b.in_1")),
    )


def variant(source: str, target: str, connector: str, process_type: str | None = None) -> None:
    spec = ConfigSpec.model_validate(msgspec.yaml.decode(Path(source).read_bytes()))
    spec.plugboard.process.connector_builder.type = connector
    if process_type is not None:
        spec.plugboard.process = spec.plugboard.process.override_process_type(process_type)
    Path(target).write_bytes(msgspec.yaml.encode(spec.model_dump()))


def branching() -> object:
    return LocalProcess(
        name="branching",
        parameters={"scale": 2},
        components=[
            Random(name="random", iters=5, low=0, high=10, seed=3),
            Offset(name="offset", offset=10),
            Scale(name="scale"),
            Scale(name="scale-more", parameters={"scale": 3}),
            Sum(name="sum"),
            Save(name="save-input", path="input.txt"),
            Save(name="save-output", path="output.txt"),
            Save(name="save-more", path="more.txt"),
        ],
        connectors=wire(
            AsyncioConnector,
            ("random.x", "save-input.value_to_save"),
            ("random.x", "offset.a"),
            ("random.x", "scale.a"),
            ("offset.b", "sum.a"),
            ("scale.b", "sum.b"),
            ("sum.c", "save-output.value_to_save"),
            ("random.x", "scale-more.a"),
            ("scale-more.b", "save-more.value_to_save"),
        ),
    )


def loop() -> object:
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
            AsyncioConnector,
            ("random.x", "sum.a"),
            ("scale.b", "sum.b"),
            ("sum.c", "scale.a"),
            ("sum.c", "save-output.value_to_save"),
        ),
    )


def events() -> object:
    components = [
        Random(name="random", iters=20, seed=5),
        FindHighLowValues(name="find-high-low", low=2, high=8),
        CollectHigh(name="collect-high"),
        CollectLow(name="collect-low"),
        FileWriter(name="save-high", path="high.csv", field_names=["value"]),
        FileWriter(name="save-low", path="low.csv", field_names=["value"]),
    ]
    builder = ConnectorBuilder(connector_cls=AsyncioConnector)
    return LocalProcess(
        name="events",
        components=components,
        connectors=[
            *wire(
                AsyncioConnector,
                ("random.x", "find-high-low.value"),
                ("collect-high.value", "save-high.value"),
                ("collect-low.value", "save-low.value"),
            ),
            *builder.build_event_connectors(components),
        ],
    )


def staggered() -> object:
    components = [
        Labels(name="xs", field="x", count=3, delay=0.01),
        Labels(name="ys", field="y", count=3, delay=0.05),
        EventWriter(name="save", path="xy.csv", field_names=["x", "y"]),
    ]
    builder = ConnectorBuilder(connector_cls=AsyncioConnector)
    return LocalProcess(
        name="staggered",
        components=components,
        connectors=builder.build_event_connectors(components),
    )


async def main() -> None:
    hello().dump("hello.peer.yaml")
    branching().dump("branching.peer.yaml")
    loop().dump("loop.peer.yaml")
    events().dump("events.peer.yaml")
    staggered().dump("staggered.peer.yaml")
    variant("hello.peer.yaml", "zmq.peer.yaml", "plugboard.connector.ZMQConnector")
    variant("hello.peer.yaml", "ray.peer.yaml", "plugboard.connector.RayConnector", "ray")
    for made in ("high.csv", "low.csv", "xy.csv"):  # plugboard's FileWriter makes them at once
        Path(made).unlink(missing_ok=True)


if __name__ == "__main__":
    assert HighEvent and LowEvent
    asyncio.run(main())
