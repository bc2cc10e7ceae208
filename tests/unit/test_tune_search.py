"""The study's search (Ray Tune's OptunaSearch): warm start, storage and resume, custom spaces.

Optuna and Ray Tune's search classes run in this process; no Ray cluster, no Prefect.
"""

from __future__ import annotations

from pathlib import Path
import typing as _t

import optuna
import pytest

from prefect_plugboard import ValidationError
from prefect_plugboard.tune import FloatParameterSpec, IntParameterSpec, OptunaSpec
from prefect_plugboard.tune.searcher import StudySearch
from prefect_plugboard.tune.space import SearchSpace, resolve_space_function


X = FloatParameterSpec(object_name="c", field_type="arg", field_name="x", lower=0, upper=1)
N = IntParameterSpec(object_name="c", field_type="arg", field_name="n", lower=2, upper=4)
METRIC = "component.c.field.y"


def search(algorithm: OptunaSpec, *, name: str = "s", **kwargs: _t.Any) -> StudySearch:
    return StudySearch(SearchSpace([X, N]), [METRIC], ["max"], algorithm, name, 2, **kwargs)


def test_suggestions_stay_in_the_space_and_count_up() -> None:
    study = search(OptunaSpec(seed=1))
    numbers = []
    for i in range(6):
        config = study.suggest(f"t{i}")
        assert config is not None
        assert 0 <= config[X.full_name] <= 1 and config[N.full_name] in (2, 3)  # upper excluded
        numbers.append(study.number(f"t{i}"))
        study.complete(f"t{i}", {METRIC: config[X.full_name]}, state="Completed")
    assert numbers == list(range(6))


def test_no_more_than_the_concurrency_is_suggested_before_an_end_is_told() -> None:
    study = search(OptunaSpec())
    assert study.suggest("a") is not None and study.suggest("b") is not None
    assert study.suggest("c") is None
    study.complete("a", {METRIC: 1.0}, state="Completed")
    assert study.suggest("c") is not None


def test_warm_start_points_come_first() -> None:
    points = [{X.full_name: 0.25, N.full_name: 3}, {X.full_name: 0.75, N.full_name: 2}]
    study = search(OptunaSpec(points_to_evaluate=points))
    first = study.suggest("a")
    second = study.suggest("b")
    assert [first, second] == points


def test_warm_start_points_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"outside \[0, 1\]"):
        search(OptunaSpec(points_to_evaluate=[{X.full_name: 2.0, N.full_name: 2}]))


def test_a_stored_study_resumes_counting_what_was_done(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    points = [{X.full_name: 0.5, N.full_name: 2}]
    first = search(OptunaSpec(storage=storage, points_to_evaluate=points), name="resumable")
    assert first.previous == 0
    ends = ["Completed", "Failed", "Cancelled", "Completed"]
    for i, state in enumerate(ends):
        config = first.suggest(f"t{i}")
        assert config is not None
        metrics = {METRIC: config[X.full_name]} if state == "Completed" else None
        first.complete(f"t{i}", metrics, state=state, flow_run_id=f"run-{i}")
    again = search(OptunaSpec(storage=storage, points_to_evaluate=points), name="resumable")
    assert again.previous == 3  # two completed, one failed; the cancelled one does not count
    config = again.suggest("next")
    assert config != points[0]  # the warm start was tried before
    assert again.number("next") == 4
    stored = optuna.load_study(study_name="resumable", storage=storage).trials
    assert [t.user_attrs.get("prefect_state") for t in stored[:4]] == ends
    assert stored[0].user_attrs["prefect_flow_run_id"] == "run-0"


def test_an_unreachable_storage_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="cannot open the Optuna storage"):
        search(OptunaSpec(storage="nosuchdb://nowhere"))


def conditional(trial: _t.Any, spec: _t.Any) -> None:
    """A define-by-run space: `n` is drawn, `x` depends on it; `spec` is the process's."""
    n = trial.suggest_int("c.n", 2, 3)
    trial.suggest_float("component.c.arg.x", 0, 1 / n)
    assert spec == "the spec"


def test_a_define_by_run_space_gets_the_spec_and_its_names_reach_the_model() -> None:
    space_function = resolve_space_function(f"{__name__}.conditional", "the spec")
    study = search(OptunaSpec(), space_function=space_function)
    space = SearchSpace([X, N])
    for i in range(4):
        config = study.suggest(f"t{i}")
        assert config is not None
        overrides = space.overrides(config)
        assert overrides[X.full_name] <= 1 / overrides[N.full_name]
        study.complete(f"t{i}", {METRIC: 1.0}, state="Completed")


def test_a_space_function_that_is_not_there_is_named() -> None:
    with pytest.raises(ValidationError, match="has no function 'nowhere'"):
        resolve_space_function(f"{__name__}.nowhere", None)
    with pytest.raises(ValidationError, match="cannot import 'no_such_module'"):
        resolve_space_function("no_such_module.space", None)


def test_bad_warm_start_points_and_storage_are_refused_before_the_study() -> None:
    from prefect_plugboard.tune import ObjectiveSpec, TuneArgsSpec
    from prefect_plugboard.tune.searcher import check_algorithm

    def args(**algorithm: _t.Any) -> TuneArgsSpec:
        return TuneArgsSpec(
            objective=ObjectiveSpec(object_name="c", field_name="y"),
            parameters=[X, N],
            num_samples=2,
            algorithm=OptunaSpec(**algorithm),
        )

    check_algorithm(args(points_to_evaluate=[{X.full_name: 0.5, N.full_name: 2}]))
    with pytest.raises(ValidationError, match="'component.c.arg.z' is not a parameter"):
        check_algorithm(args(points_to_evaluate=[{"component.c.arg.z": 1}]))
    with pytest.raises(ValidationError, match="cannot open the Optuna storage"):
        check_algorithm(args(storage="nosuchdb://nowhere"))
