"""YAML models: every problem named with its place, before anything starts."""

from collections.abc import Callable
import json
from pathlib import Path
import shutil
import typing as _t

import jsonschema
import pytest
import yaml

from prefect_plugboard import LocalProcess, RayProcess, ValidationError, build_process, load_model
from prefect_plugboard.schemas.config import ConfigSpec


MODELS = Path(__file__).parent / "models"
BASE = (MODELS / "model.yaml").read_text()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("shapes.py", "broken.py"):
        shutil.copy(MODELS / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def no_prefect_or_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call to the Prefect API or to Ray fails the test."""
    import prefect.client.orchestration
    import ray

    def forbidden(*args: object, **kwargs: object) -> _t.NoReturn:
        raise AssertionError("validation called the Prefect API or Ray")

    monkeypatch.setattr(prefect.client.orchestration, "get_client", forbidden)
    monkeypatch.setattr(ray, "init", forbidden)


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


CASES: list[tuple[str, Callable[[str], str], list[str], str]] = [
    ("yaml-syntax", replace("limit: 3", "limit: [3"), ["invalid YAML"], ""),
    (
        "top-level-key",
        append("prefekt:\n  retries: 1\n"),
        ["unknown key 'prefekt'", "did you mean 'prefect'?"],
        "prefekt (model.yaml:26)",
    ),
    (
        "component-key",
        replace(
            "      - type: shapes.Scale\n        args:", "      - type: shapes.Scale\n        arg:"
        ),
        ["unknown key 'arg'", "did you mean 'args'?"],
        "components[1].arg (model.yaml:13)",
    ),
    (
        "module-missing",
        replace("shapes.Count", "shape.Count"),
        ["no module named 'shape'"],
        "components[0].type (model.yaml:8)",
    ),
    (
        "name-missing",
        replace("shapes.Scale", "shapes.Scal"),
        ["has no 'Scal'", "; did you mean 'shapes.Scale'?"],
        "components[1].type (model.yaml:12)",
    ),
    (
        "module-fails",
        replace("shapes.Count", "broken.Count"),
        ["importing 'broken' failed: RuntimeError: broken on purpose"],
        "components[0].type (model.yaml:8)",
    ),
    (
        "not-a-component",
        replace("shapes.Count", "shapes.NOT_A_COMPONENT"),
        ["is not a component class"],
        "components[0].type (model.yaml:8)",
    ),
    (
        "unknown-argument",
        replace("factor: 10", "factr: 10"),
        ["Scale has no argument 'factr'", "did you mean 'factor'?"],
        "components[1].args.factr (model.yaml:15)",
    ),
    (
        "missing-argument",
        replace("          limit: 3\n", ""),
        ["Count needs the argument 'limit'"],
        "components[0].args (model.yaml:9)",
    ),
    (
        "malformed-reference",
        replace("source: count.n", "source: count"),
        ["'count' is not a 'component.field' reference"],
        "connectors[0].source (model.yaml:22)",
    ),
    (
        "unknown-component",
        replace("target: scale.n", "target: scael.n"),
        ["unknown component 'scael'", "; did you mean 'scale'?"],
        "connectors[0].target (model.yaml:23)",
    ),
    (
        "unknown-field",
        replace("source: scale.scaled", "source: scale.scaledd"),
        ["component 'scale' (Scale) has no output 'scaledd'", "; did you mean 'scaled'?"],
        "connectors[1].source (model.yaml:24)",
    ),
    (
        "input-as-source",
        replace("source: scale.scaled", "source: scale.n"),
        ["has no output 'n'", "('n' is an input)"],
        "connectors[1].source (model.yaml:24)",
    ),
    (
        "duplicate-name",
        replace("name: scale", "name: count"),
        ["duplicate component name 'count' (also components[0])"],
        "components[1] (model.yaml:12)",
    ),
    (
        "unconnected-input",
        replace("      - source: count.n\n        target: scale.n\n", ""),
        ["'scale' (Scale) has unconnected inputs: n"],
        "components[1] (model.yaml:12)",
    ),
    (
        "bad-resource",
        replace("          limit: 3\n", "          limit: 3\n          resources: {cpu: lots}\n"),
        ["'lots' is not a quantity"],
        "components[0].args.resources.cpu (model.yaml:12)",
    ),
    (
        "negative-resource",
        replace("          limit: 3\n", "          limit: 3\n          resources: {gpu: -1}\n"),
        ["cannot be negative"],
        "components[0].args.resources.gpu (model.yaml:12)",
    ),
    (
        "unknown-resource-key",
        replace("          limit: 3\n", "          limit: 3\n          resources: {cpus: 1}\n"),
        ["unknown key 'cpus'", "did you mean 'cpu'?"],
        "components[0].args.resources.cpus (model.yaml:12)",
    ),
    (
        "asyncio-on-ray",
        replace(
            "  process:\n",
            "  process:\n    type: plugboard.process.RayProcess\n    connector_builder:\n"
            "      type: plugboard.connector.AsyncioConnector\n",
        ),
        ["AsyncioConnector only works within one event loop", "RayConnector"],
        "plugboard.process.connector_builder.type (model.yaml:5)",
    ),
    (
        "unprovided-plugboard-class",
        replace(
            "  process:\n",
            "  process:\n    connector_builder:\n      type: plugboard.connector.RedisConnector\n",
        ),
        [
            "'plugboard.connector.RedisConnector' is a plugboard class that prefect-plugboard "
            "does not provide"
        ],
        "plugboard.process.connector_builder.type (model.yaml:4)",
    ),
    (
        "unknown-connector-setting",
        replace("  process:\n", "  process:\n    connector_builder:\n      args: {maxsze: 1}\n"),
        ["AsyncioConnector has no setting 'maxsze'", "did you mean 'maxsize'?"],
        "plugboard.process.connector_builder.args.maxsze (model.yaml:4)",
    ),
    (
        "duplicate-yaml-key",
        replace("          limit: 3\n", "          limit: 3\n          limit: 4\n"),
        ["duplicate key 'limit' (also on line 11)"],
        "components[0].args.limit (model.yaml:12)",
    ),
    (
        "initial-values-unknown-input",
        replace(
            "          factor: 10\n", "          factor: 10\n          initial_values: {m: [1]}\n"
        ),
        ["initial_values for 'm', which is not one of its inputs; its inputs: n"],
        "components[1].args.initial_values (model.yaml:16)",
    ),
    (
        "no-plugboard-root",
        lambda text: "process: {}\n",
        ["needs a top-level `plugboard:` section"],
        "",
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected", "where"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.usefixtures("no_prefect_or_ray")
def test_a_bad_model_is_refused_naming_the_culprit_and_its_place(
    case: str, edit: Callable[[str], str], expected: list[str], where: str, folder: Path
) -> None:
    path = folder / "model.yaml"
    path.write_text(edit(BASE))
    with pytest.raises(ValidationError) as info:
        build_process(load_model(path))
    text = str(info.value)
    for fragment in expected:
        assert fragment in text, text
    if where:
        location, _, line = where.partition(" (")
        assert f"{location} (" in text, text
        assert line.rstrip(")") and f"/{line.rstrip(')')})" in text, text
    if case == "yaml-syntax":
        assert "model.yaml:11:" in text or "model.yaml:12:" in text, text


@pytest.mark.usefixtures("no_prefect_or_ray")
def test_every_problem_is_reported_at_once(folder: Path) -> None:
    text = BASE.replace("factor: 10", "factr: 10").replace("target: scale.n", "target: scael.n")
    text = text.replace("shapes.Count", "shapes.Cont").replace(
        "limit: 3", "limit: 3\n          resources: {cpu: lots}"
    )
    (folder / "model.yaml").write_text(text)
    with pytest.raises(ValidationError) as info:
        build_process(load_model(folder / "model.yaml"))
    messages = [i.message for i in info.value.issues]
    assert any("'lots' is not a quantity" in m for m in messages)
    assert any("no argument 'factr'" in m for m in messages)
    assert any("unknown component 'scael'" in m for m in messages)
    assert len(messages) == 3, messages  # shapes.Cont is not reported: its resources failed first


@pytest.mark.usefixtures("no_prefect_or_ray")
def test_a_loop_without_initial_values_is_refused(folder: Path) -> None:
    text = BASE.replace(
        "      connectors:\n",
        "      - type: shapes.Scale\n        args: {name: back}\n      connectors:\n"
        "      - {source: scale.scaled, target: back.n}\n"
        "      - {source: back.scaled, target: scale.n}\n",
    ).replace("      - source: count.n\n        target: scale.n\n", "")
    (folder / "model.yaml").write_text(text)
    with pytest.raises(
        ValidationError, match="circular connection without initial values: scale -> back -> scale"
    ):
        build_process(load_model(folder / "model.yaml"))


def test_the_seed_yaml_builds_with_plugboard_type_paths() -> None:
    seed = Path(__file__).parents[2] / "examples" / "running_in_parallel"
    local = build_process(load_model(seed / "model.yaml"))
    ray = build_process(load_model(seed / "model-ray.yaml"))
    assert type(local) is LocalProcess and type(ray) is RayProcess
    assert [type(c).__name__ for c in ray.components.values()] == [
        "Iterator",
        "Sleep",
        "Sleep",
        "Timestamper",
        "FileWriter",
    ]
    assert {type(c).__name__ for c in ray.connectors.values()} == {"RayConnector"}


def test_overrides_and_process_type_switch_a_model_without_editing_it(folder: Path) -> None:
    (folder / "model.yaml").write_text(BASE)
    process = build_process(
        load_model(
            folder / "model.yaml",
            process_type="ray",
            overrides=[
                "component.count.arg.limit=7",
                "component.scale.parameter.gain=3",
                "offset=1",
                "component.count.arg.resources.cpu=500m",
            ],
        )
    )
    assert isinstance(process, RayProcess)
    assert {type(c).__name__ for c in process.connectors.values()} == {"RayConnector"}
    count, scale = process.components["count"], process.components["scale"]
    assert count._limit == 7 and count.resources.cpu == 0.5
    assert scale.parameters == {"gain": 3}
    assert process.parameters == {"gain": 1, "offset": 1}
    back = build_process(load_model(folder / "model.yaml", process_type="local"))
    assert isinstance(back, LocalProcess)


def test_the_prefect_section_configures_a_ray_process(folder: Path) -> None:
    (folder / "model.yaml").write_text(
        BASE
        + "prefect:\n  ray_address: auto\n  placement_timeout: 5\n  stop_grace: 2.5\n"
        + "  worker_sharing: none\n"
    )
    process = build_process(load_model(folder / "model.yaml", process_type="ray"))
    assert isinstance(process, RayProcess)
    assert process.ray_address == "auto"
    assert (process.placement_timeout, process.stop_grace) == (5, 2.5)
    assert process.worker_sharing == "none"
    local = build_process(load_model(folder / "model.yaml", process_type="local"))
    assert isinstance(local, LocalProcess)  # Ray settings do not apply to it


def test_an_override_naming_an_unknown_component_is_refused(folder: Path) -> None:
    (folder / "model.yaml").write_text(BASE)
    with pytest.raises(
        ValidationError,
        match=r"-p component.cuont.arg.limit: no component named 'cuont'; did you mean 'count'\?",
    ):
        load_model(folder / "model.yaml", overrides=["component.cuont.arg.limit=1"])


def test_a_process_can_be_given_as_another_yaml_file(folder: Path) -> None:
    (folder / "inner.yaml").write_text(BASE.replace("factor: 10", "factr: 10"))
    (folder / "outer.yaml").write_text(
        "plugboard:\n  process: inner.yaml\nprefect:\n  retries: 1\n"
    )
    with pytest.raises(ValidationError) as info:
        build_process(load_model(folder / "outer.yaml"))
    assert "inner.yaml:15" in str(info.value)
    (folder / "inner.yaml").write_text(BASE)
    model = load_model(folder / "outer.yaml")
    assert model.spec.prefect.retries == 1
    assert set(build_process(model).components) == {"count", "scale", "save"}


def test_dump_writes_yaml_that_round_trips(folder: Path) -> None:
    (folder / "model.yaml").write_text(BASE)
    process = build_process(load_model(folder / "model.yaml"))
    process.dump(folder / "dumped.yaml")
    again = build_process(load_model(folder / "dumped.yaml"))
    assert again.export() == process.export()
    dumped = yaml.safe_load((folder / "dumped.yaml").read_text())
    assert dumped["plugboard"]["process"]["args"]["components"][1] == {
        "type": "shapes.Scale",
        "args": {"factor": 10, "name": "scale"},
    }


# ----- JSON Schema ---------------------------------------------------------------------------

SCHEMA = ConfigSpec.model_json_schema()


@pytest.mark.parametrize(
    "path",
    sorted(
        path
        for path in (Path(__file__).parents[2] / "examples").rglob("*.yaml")
        if path.parent.name != "blocks"  # channel block documents, not models
    )
    + [MODELS / "model.yaml"],
    ids=lambda p: p.name,
)
def test_the_json_schema_accepts_the_examples(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


SCHEMA_VISIBLE = [
    "top-level-key",
    "component-key",
    "malformed-reference",
    "bad-resource",
    "negative-resource",
    "unknown-resource-key",
    "no-plugboard-root",
]


@pytest.mark.parametrize("case", SCHEMA_VISIBLE)
def test_the_json_schema_rejects_what_a_schema_can_see(case: str) -> None:
    edit = next(c[1] for c in CASES if c[0] == case)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(edit(BASE)), SCHEMA)


def test_the_schema_is_what_the_cli_prints() -> None:
    from typer.testing import CliRunner

    from prefect_plugboard.cli import app

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SCHEMA


def test_a_model_without_a_name_is_named_after_its_file(folder: Path) -> None:
    named = yaml.safe_load(BASE)
    assert named["plugboard"]["process"]["args"]["name"]
    del named["plugboard"]["process"]["args"]["name"]
    (folder / "seed-model.yaml").write_text(yaml.safe_dump(named))
    process = build_process(load_model(folder / "seed-model.yaml"))
    assert process.name == "seed-model"
    assert process.flow_name == "seed-model"  # also what the Prefect UI shows, and its keys
    from_dict = build_process(load_model(named))
    assert from_dict.name.startswith("LocalProcess_")  # no file, no name to take
