"""The Tuner's specs, its `tune:` section, search spaces, the trials' table: no Prefect or Ray."""

from __future__ import annotations

import math
from pathlib import Path
import typing as _t

import pytest

from prefect_plugboard import ResourceError, ValidationError
from prefect_plugboard.builder.yaml_source import load_yaml
from prefect_plugboard.process.ray.placement import HostPlan
from prefect_plugboard.schemas import ProcessSpec, Resource
from prefect_plugboard.tune import (
    CategoricalParameterSpec,
    FloatParameterSpec,
    IntParameterSpec,
    ObjectiveSpec,
    OptunaSpec,
    StudyResults,
    TrialResult,
    TuneArgsSpec,
    Tuner,
)
from prefect_plugboard.tune.artifact import BEST, trial_rows
from prefect_plugboard.tune.resources import trials_at_once
from prefect_plugboard.tune.section import read_study
from prefect_plugboard.tune.space import SearchSpace
from prefect_plugboard.tune.template import ModelTemplate


ROOT = Path(__file__).resolve().parents[2]
TUNING = ROOT / "examples" / "tuning"

ANGLE = FloatParameterSpec(
    object_name="trajectory", field_type="arg", field_name="angle", lower=0, upper=90
)
VELOCITY = FloatParameterSpec(
    object_name="trajectory", field_type="arg", field_name="velocity", lower=0, upper=100
)
MAX_Y = ObjectiveSpec(object_name="max-height", field_name="max_y")


def test_full_names_are_plugboards() -> None:
    assert ANGLE.full_name == "component.trajectory.arg.angle"
    assert MAX_Y.full_name == "component.max-height.field.max_y"
    gain = IntParameterSpec(
        object_type="process", field_type="parameter", field_name="gain", lower=1, upper=3
    )
    assert gain.full_name == "process.default.parameter.gain"


def test_a_parameter_without_a_type_is_a_float_or_with_categories_a_choice_as_in_plugboard() -> (
    None
):
    tuner = Tuner(
        objective=MAX_Y,
        parameters=[
            {
                "object_name": "trajectory",
                "field_type": "arg",
                "field_name": "angle",
                "lower": 0,
                "upper": 90,
            },
            {
                "object_name": "trajectory",
                "field_type": "arg",
                "field_name": "velocity",
                "categories": [10, 20],
            },
            {
                "object_name": "trajectory",
                "field_type": "arg",
                "field_name": "iters",
                "type": "ray.tune.randint",
                "lower": 1,
                "upper": 5,
            },
        ],
        num_samples=2,
    )
    angle, velocity, iters = tuner.args.parameters
    assert isinstance(angle, FloatParameterSpec) and angle.upper == 90.0
    assert isinstance(velocity, CategoricalParameterSpec) and velocity.categories == [10, 20]
    assert isinstance(iters, IntParameterSpec)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": ["max", "min"]}, "with several objectives"),
        ({"objective": [MAX_Y, MAX_Y], "mode": ["max"]}, "1 directions for 2 objectives"),
        ({"parameters": [ANGLE, ANGLE]}, "named more than once"),
        ({"parameters": []}, "parameters"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_inconsistent_tuner_arguments_are_refused_with_what_is_wrong(
    kwargs: dict[str, _t.Any], message: str
) -> None:
    arguments: dict[str, _t.Any] = {
        "objective": MAX_Y,
        "parameters": [ANGLE, VELOCITY],
        "num_samples": 4,
        **kwargs,
    }
    with pytest.raises(ValidationError, match=message):
        Tuner(**arguments)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"field_type": "arg", "field_name": "x", "lower": 0, "upper": 1}, "object_name"),
        (
            {
                "object_type": "process",
                "field_type": "arg",
                "field_name": "x",
                "lower": 0,
                "upper": 1,
            },
            "must be a parameter",
        ),
        (
            {"object_name": "c", "field_type": "arg", "field_name": "x", "lower": 2, "upper": 1},
            "must be below",
        ),
    ],
)
def test_a_bad_parameter_says_what_to_fix(spec: dict[str, _t.Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FloatParameterSpec.model_validate(spec)


def test_the_tutorials_tune_section_reads_as_plugboard_wrote_it() -> None:
    template = ModelTemplate.load(TUNING / "model-with-tuner.yaml")
    args = read_study(template.tune, template.model.source)
    assert [p.full_name for p in args.parameters] == [ANGLE.full_name, VELOCITY.full_name]
    assert args.objectives == [MAX_Y]
    assert (args.num_samples, args.mode, args.max_concurrent) == (40, "max", 4)
    changed = read_study(template.tune, template.model.source, {"num_samples": 3})
    assert changed.num_samples == 3


def test_a_bad_tune_section_lists_every_problem_with_its_line() -> None:
    text = """\
plugboard:
  process:
    args:
      components:
      - {type: projectile.Iterator, args: {name: horizontal, iters: 3}}
  tune:
    args:
      objective: {object_name: max-height, field_name: max_y}
      parameters:
      - type: ray.tune.uniform
        object_name: trajectory
        field_type: arg
        field_name: angle
        lower: 0
        uper: 90
      - type: ray.tune.normal
        object_name: trajectory
        field_type: arg
        field_name: velocity
      num_sample: 4
"""
    data, source = load_yaml(text, "model.yaml")
    with pytest.raises(ValidationError) as raised:
        read_study(data["plugboard"]["tune"], source)
    text_of = str(raised.value)
    assert "unknown key 'uper'; did you mean 'upper'?" in text_of
    assert "model.yaml:15" in text_of
    assert "unknown parameter type" in text_of and "model.yaml:16" in text_of
    assert "unknown key 'num_sample'; did you mean 'num_samples'?" in text_of
    assert "model.yaml:20" in text_of


def test_a_model_without_a_tune_section_is_told_to_add_one() -> None:
    template = ModelTemplate.load(ROOT / "examples" / "running_in_parallel" / "model.yaml")
    with pytest.raises(ValidationError, match="no `tune:` section"):
        read_study(template.tune, template.model.source)


def test_a_trials_config_becomes_the_overrides_of_the_model() -> None:
    initial = IntParameterSpec(
        object_name="loop", field_type="initial_value", field_name="x", lower=0, upper=5
    )
    space = SearchSpace([ANGLE, VELOCITY, initial])
    overrides = space.overrides(
        {
            "component.trajectory.arg.angle": 45.0,
            "trajectory.velocity": 30.0,  # plugboard's tutorial names it so
            "component.loop.initial_value.x": 2,
            "helper": 1,  # a define-by-run function's own value: not a parameter
        }
    )
    assert overrides == {
        "component.trajectory.arg.angle": 45.0,
        "component.trajectory.arg.velocity": 30.0,
        "component.loop.initial_value.x": [2],
    }


def test_warm_start_points_are_checked_against_the_space() -> None:
    colour = CategoricalParameterSpec(
        object_name="paint", field_type="arg", field_name="colour", categories=["red", "blue"]
    )
    space = SearchSpace([ANGLE, colour])
    assert not space.check_points([{ANGLE.full_name: 10.0, colour.full_name: "red"}])
    issues = [
        str(i)
        for i in space.check_points(
            [{ANGLE.full_name: 100.0, colour.full_name: "green", "component.x.arg.y": 1}]
        )
    ]
    assert any("outside [0, 90]" in i for i in issues)
    assert any("'green' is not one of the categories" in i for i in issues)
    assert any("'component.x.arg.y' is not a parameter" in i for i in issues)


def _hosts(*cpus: float, gpu: float = 0) -> list[HostPlan]:
    return [HostPlan((f"c{i}",), Resource(cpu=c, gpu=gpu)) for i, c in enumerate(cpus)]


def test_trials_at_once_is_what_the_cluster_holds_up_to_max_concurrent() -> None:
    cluster = {"CPU": 2.0}
    nodes = [{"CPU": 2.0}]
    # plugboard's #190: three components of half a CPU each; one trial at a time on 2 cores.
    assert trials_at_once(_hosts(1.5), 4, cluster, nodes) == 1
    assert trials_at_once(_hosts(0.003), 4, cluster, nodes) == 4
    assert trials_at_once(_hosts(0.003), None, cluster, nodes) == 2  # one per CPU by default
    assert trials_at_once(_hosts(0.5, 0.5), 8, {"CPU": 4.0}, [{"CPU": 2}, {"CPU": 2}]) == 4


def test_a_trial_that_cannot_fit_is_refused_naming_what_it_asks() -> None:
    with pytest.raises(ResourceError, match="asks for CPU 3, but no node has that much"):
        trials_at_once(_hosts(3), 1, {"CPU": 4.0}, [{"CPU": 2.0}, {"CPU": 2.0}])
    with pytest.raises(ResourceError, match="GPU 1"):
        trials_at_once(_hosts(0.1, gpu=1), 1, {"CPU": 2.0}, [{"CPU": 2.0}])


def test_the_trials_table_marks_the_best_and_the_breaches() -> None:
    metric = MAX_Y.full_name
    trials = [
        TrialResult(0, {ANGLE.full_name: 10.0}, {metric: 3.0}, "Completed", duration=0.5),
        TrialResult(1, {ANGLE.full_name: 80.0}, {metric: 9.0}, "Completed", duration=0.4),
        TrialResult(
            2, {ANGLE.full_name: 89.0}, {metric: -math.inf}, "Completed", constraint="too steep"
        ),
        TrialResult(3, {ANGLE.full_name: 5.0}, state="Failed", error="ValueError: boom"),
    ]
    rows = trial_rows(StudyResults(trials, [metric], ["max"]))
    assert [r["best"] for r in rows] == ["", BEST, "", ""]
    assert rows[1]["trajectory.angle"] == 80.0 and rows[1]["max-height.max_y"] == 9.0
    assert rows[2]["note"] == "constraint breached: too steep"
    assert rows[3]["state"] == "Failed" and rows[3]["note"] == "ValueError: boom"
    minimum = StudyResults(trials, [metric], ["min"]).get_best_result()
    assert minimum.number == 2  # -inf is the least; a breach in a `min` study scores +inf


def test_a_local_model_is_tuned_with_its_components_in_one_ray_worker() -> None:
    template = ModelTemplate.load(TUNING / "model-with-tuner.yaml")
    assert template.was_local
    process = template.build({ANGLE.full_name: 45.0})
    assert type(process).__name__ == "RayProcess" and process.worker_sharing == "all"
    assert {type(c).__name__ for c in process.connectors.values()} == {"RayConnector"}
    assert process.components["trajectory"].export()["args"]["angle"] == 45.0
    assert [h.components for h in template.hosts()] == [("horizontal", "trajectory", "max-height")]


def spec_given(trial: object, spec: ProcessSpec) -> ProcessSpec:
    """A define-by-run space that returns the spec it is given."""
    return spec


def test_a_space_function_is_given_the_models_own_spec_not_the_one_trials_run() -> None:
    template = ModelTemplate.load(TUNING / "model-with-tuner.yaml")
    spec = template.space_function(f"{__name__}.spec_given")(None)
    assert spec.type.endswith(".LocalProcess")  # the trials run a RayProcess
    assert template.model.process.type != spec.type
    assert [c.args.name for c in spec.args.components] == ["horizontal", "trajectory", "max-height"]


def test_a_study_naming_what_the_model_lacks_is_refused_before_anything_runs() -> None:
    template = ModelTemplate.load(TUNING / "model-with-tuner.yaml")
    typo = FloatParameterSpec(
        object_name="trajectory", field_type="arg", field_name="angel", lower=0, upper=1
    )
    stranger = ObjectiveSpec(object_name="max-hieght", field_name="max_y")
    with pytest.raises(ValidationError, match="did you mean 'max-height'"):
        template.check(TuneArgsSpec(objective=stranger, parameters=[ANGLE], num_samples=1))
    with pytest.raises(ValidationError, match="no argument 'angel'; did you mean 'angle'"):
        template.check(TuneArgsSpec(objective=MAX_Y, parameters=[typo], num_samples=1))


def test_optuna_settings_take_plugboards_keys_and_a_seed() -> None:
    spec = OptunaSpec.model_validate(
        {
            "type": "ray.tune.search.optuna.OptunaSearch",
            "space": "projectile.space",
            "study_name": "s",
            "storage": "sqlite:///s.db",
            "points_to_evaluate": [{ANGLE.full_name: 1.0}],
            "seed": 3,
        }
    )
    assert spec.seed == 3
    with pytest.raises(ValueError, match="extra"):
        OptunaSpec.model_validate({"sampler": "tpe"})


def test_the_live_table_shows_the_running_trials_and_the_best_so_far() -> None:
    from rich.console import Console

    from prefect_plugboard.tune.command import trials_table
    from prefect_plugboard.tune.study import Study

    template = ModelTemplate.load(TUNING / "model-with-tuner.yaml")
    study = Study(template, read_study(template.tune, template.model.source, {"num_samples": 3}))
    assert "Starting study 'model-with-tuner'" in str(trials_table(study)())
    metric = MAX_Y.full_name
    study.trials += [
        TrialResult(0, {ANGLE.full_name: 10.0}, {metric: 3.5}, "Completed", duration=0.5),
        TrialResult(1, {ANGLE.full_name: 80.0}, state="Running"),
    ]
    console = Console(record=True, width=160)
    console.print(trials_table(study)())
    text = " ".join(console.export_text().split())
    assert "trajectory.angle" in text and "max-height.max_y" in text
    assert "Running" in text and "3.5" in text
    assert "1 of 3 trials ended (1 completed), 1 running" in text
    assert "best so far: trial 0, max-height.max_y = 3.5" in text
