"""`Tuner`: plugboard's parameter search over a model, every trial a Prefect flow run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import os
import typing as _t

from pydantic import ValidationError as PydanticValidationError

from prefect_plugboard.builder import Model
from prefect_plugboard.exceptions import Issue, StudyError, ValidationError
from prefect_plugboard.process.process import Process
from prefect_plugboard.schemas.config import ProcessSpec
from prefect_plugboard.tune.results import StudyResults, TrialResult
from prefect_plugboard.tune.specs import (
    CategoricalParameterSpec,
    Direction,
    FloatParameterSpec,
    IntParameterSpec,
    ObjectiveSpec,
    OptunaSpec,
    TuneArgsSpec,
)
from prefect_plugboard.tune.study import Study
from prefect_plugboard.tune.template import ModelTemplate


__all__ = ["Tuner"]

ModelSource = ProcessSpec | Process | Model | Mapping[str, _t.Any] | str | os.PathLike[str]
"""What a study tunes: a process spec, a process, a loaded model, a model dict or file."""


class Tuner:
    """Searches a model's parameters for the best objective, with Ray Tune and Optuna.

    `run()` is one Prefect flow run, `tune`, named after the study; every trial is a child
    flow run of the model, tagged `study:<name>` and `trial:<n>`, whose task runs are the
    model's components. At the end a table artifact lists every trial and marks the best.
    Trials run side by side on Ray (started if need be), as many as the cluster holds at
    once, up to `max_concurrent`.

    Example:
        ```python
        tuner = Tuner(
            objective=ObjectiveSpec(object_name="max-height", field_name="max_y"),
            parameters=[
                FloatParameterSpec(
                    object_name="trajectory", field_type="arg", field_name="angle",
                    lower=0, upper=90,
                ),
            ],
            num_samples=40,
            max_concurrent=4,
            mode="max",
        )
        best = tuner.run(spec=process_spec)  # or a process, a model file, a dict
        print(best.config, best.metrics)
        ```

    Args:
        objective: What to optimise, or a list of objectives (then `mode` is a list too).
        parameters: What to vary: `FloatParameterSpec`, `IntParameterSpec`,
            `CategoricalParameterSpec`.
        num_samples: How many trials to run (a resumed study counts those it has).
        mode: `"max"` or `"min"`, or one per objective.
        max_concurrent: At most this many trials at once (default: one per CPU).
        algorithm: Optuna's settings: a define-by-run `space`, `study_name`, `storage`
            (resume), `points_to_evaluate` (warm start).

    Raises:
        ValidationError: The arguments are inconsistent (e.g. one `mode` for two objectives).
    """

    def __init__(
        self,
        *,
        objective: ObjectiveSpec | list[ObjectiveSpec] | Mapping[str, _t.Any],
        parameters: Iterable[
            FloatParameterSpec | IntParameterSpec | CategoricalParameterSpec | Mapping[str, _t.Any]
        ],
        num_samples: int,
        mode: Direction | list[Direction] = "max",
        max_concurrent: int | None = None,
        algorithm: OptunaSpec | Mapping[str, _t.Any] | None = None,
    ) -> None:
        try:
            self.args = TuneArgsSpec.model_validate(
                {
                    "objective": objective,
                    "parameters": list(parameters),
                    "num_samples": num_samples,
                    "mode": mode,
                    "max_concurrent": max_concurrent,
                    "algorithm": algorithm if algorithm is not None else OptunaSpec(),
                }
            )
        except PydanticValidationError as exc:
            issues = [
                Issue(str(e["msg"]).removeprefix("Value error, "), _where(e["loc"]))
                for e in exc.errors()
            ]
            raise ValidationError(issues, subject="the Tuner's arguments") from None
        self.study: Study | None = None

    @classmethod
    def from_args(cls, args: TuneArgsSpec) -> Tuner:
        """A tuner for a study as a model's `tune:` section describes it."""
        tuner = cls.__new__(cls)
        tuner.args = args
        tuner.study = None
        return tuner

    @property
    def is_multi_objective(self) -> bool:
        """Whether the study has several objectives."""
        return len(self.args.objectives) > 1

    @property
    def result_grid(self) -> StudyResults:
        """Every trial of the last `run()`.

        Raises:
            ValueError: Nothing has run yet.
        """
        if self.study is None:
            msg = "no results yet: run the study first (`tuner.run(spec)`)"
            raise ValueError(msg)
        return self.study.results

    def run(
        self,
        spec: ModelSource,
        *,
        process_type: str | None = None,
        overrides: Mapping[str, _t.Any] | None = None,
    ) -> TrialResult | list[TrialResult]:
        """Runs the study; returns the best trial (one per objective for several).

        In async code, `await tuner.arun(spec)` instead.

        Args:
            spec: The model: a `ProcessSpec`, a `Process` (its classes importable), a loaded
                `Model`, a model dict (the `plugboard:` root) or a YAML file.
            process_type: `local` or `ray`: which process the model stands for.
            overrides: Values changed in every trial, as `prefect-plugboard run -p` takes them.

        Raises:
            ValidationError: The model or the study is invalid (nothing started).
            ResourceError: One trial cannot be placed on the cluster (nothing started).
            StudyError: No trial completed; `error.results` holds what happened.
        """
        from prefect.utilities.asyncutils import run_coro_as_sync

        return _t.cast(
            "TrialResult | list[TrialResult]",
            run_coro_as_sync(self.arun(spec, process_type=process_type, overrides=overrides)),
        )

    async def arun(
        self,
        spec: ModelSource,
        *,
        process_type: str | None = None,
        overrides: Mapping[str, _t.Any] | None = None,
    ) -> TrialResult | list[TrialResult]:
        """`run()` for async code (inside a `@flow`, the study's run is a child of it)."""
        from prefect_plugboard.tune.flow import study_flow

        template = ModelTemplate.load(
            _model_source(spec), process_type=process_type, overrides=overrides
        )
        study = self.study = Study(template, self.args)
        study.prepare()
        try:
            state = await study_flow(study)(return_state=True)
        finally:
            study.release()
        if state.is_failed() or state.is_crashed():
            await state.aresult()  # raises what failed the study
        results = study.results
        if not any(t.completed for t in results):
            why = f"it was stopped: {study.stop_reason}" if study.stop_reason else "all failed"
            errors = "; ".join(f"trial {t.number}: {t.error}" for t in results if t.error)
            msg = f"no trial of study {study.name!r} completed ({why})" + (
                f": {errors}" if errors else ""
            )
            raise StudyError(msg, results)
        return results.best()


def _model_source(spec: ModelSource) -> _t.Any:
    if isinstance(spec, Process):
        return spec.export()
    if isinstance(spec, ProcessSpec):
        return {"plugboard": {"process": spec.model_dump(exclude_unset=True)}}
    return spec


def _where(location: tuple[_t.Any, ...]) -> str:
    from prefect_plugboard.builder.yaml_source import path_of

    noise = {"ray.tune.uniform", "ray.tune.randint", "ray.tune.choice"}
    noise |= {"ObjectiveSpec", "list[ObjectiveSpec]"}
    return path_of(tuple(p for p in location if p not in noise))
