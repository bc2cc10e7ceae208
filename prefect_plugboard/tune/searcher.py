"""The study's search: Ray Tune's `OptunaSearch`, behind a `ConcurrencyLimiter`.

The study asks it for each trial's parameters (`suggest`) and tells it each trial's end
(`on_trial_complete`), through Ray Tune's `Searcher` interface. With a `storage`, Optuna
keeps the study in a database: a later run with the same `study_name` resumes it, counting
the trials already done (completed or failed; not those a cancellation interrupted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import logging
import math
import typing as _t

from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.tune.space import SearchSpace
from prefect_plugboard.tune.specs import Direction, OptunaSpec, TuneArgsSpec


__all__ = ["StudySearch", "check_algorithm", "worst"]

_logger = logging.getLogger(__name__)

PREFECT_STATE = "prefect_state"
"""Optuna user attribute: the trial's end in Prefect (`Completed`, `Failed`, `Cancelled`)."""
PREFECT_FLOW_RUN = "prefect_flow_run_id"
"""Optuna user attribute: the trial's Prefect flow run."""
CONSTRAINT = "constraint"
"""Optuna user attribute: the `ConstraintError` a trial ended on."""


def worst(mode: Direction) -> float:
    """The objective of a trial that breached a constraint and gave no value of its own."""
    return -math.inf if mode == "max" else math.inf


class StudySearch:
    """Suggests each trial's parameters and learns from each trial's end.

    Args:
        space: The declared parameters.
        metrics: The objectives' full names.
        modes: Their directions.
        algorithm: Optuna's settings.
        study_name: The study's name in Optuna.
        concurrency: At most this many trials are suggested and not yet told.
        space_function: A define-by-run search space, in place of the declared space.

    Raises:
        ValidationError: The storage cannot be opened, or warm-start points do not fit.
    """

    def __init__(
        self,
        space: SearchSpace,
        metrics: Sequence[str],
        modes: Sequence[Direction],
        algorithm: OptunaSpec,
        study_name: str,
        concurrency: int,
        space_function: Callable[[_t.Any], _t.Any] | None = None,
    ) -> None:
        import optuna
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        storage = _open_storage(algorithm.storage) if algorithm.storage else None
        self.previous = _finished_before(storage, study_name) if storage is not None else 0
        points = algorithm.points_to_evaluate or []
        if points and space_function is None:
            issues = space.check_points(points)
            if issues:
                raise ValidationError(issues, subject="the study's warm start")
        if self.previous:
            points = []  # a resumed study has tried them already
        metric: str | list[str] = metrics[0] if len(metrics) == 1 else list(metrics)
        mode: str | list[str] = modes[0] if len(modes) == 1 else list(modes)
        with _quiet(optuna):
            self._optuna = OptunaSearch(
                space=space_function,
                metric=metric,
                mode=mode,
                points_to_evaluate=points or None,
                study_name=study_name,
                storage=storage,
                seed=algorithm.seed,
            )
            if space_function is None:
                self._optuna.set_search_properties(
                    _t.cast(_t.Any, metric), _t.cast(_t.Any, mode), space.ray_space()
                )
        self._search = ConcurrencyLimiter(self._optuna, max_concurrent=concurrency)
        self.metrics = list(metrics)

    def suggest(self, trial_id: str) -> dict[str, _t.Any] | None:
        """The next trial's parameters, or `None` if the search has none to give now."""
        config: _t.Any = self._search.suggest(trial_id)
        return dict(config) if isinstance(config, dict) else None  # or Searcher.FINISHED

    def number(self, trial_id: str) -> int:
        """Optuna's number for a suggested trial."""
        return int(self._optuna_trial(trial_id).number)

    def complete(
        self,
        trial_id: str,
        metrics: Mapping[str, float] | None,
        *,
        state: str,
        flow_run_id: str | None = None,
        constraint: str | None = None,
    ) -> None:
        """Tells the search how a trial ended.

        Args:
            trial_id: The trial.
            metrics: The objectives, for a completed trial; `None` otherwise.
            state: Its Prefect end: `Completed`, `Failed` or `Cancelled`.
            flow_run_id: Its flow run, kept with the trial in Optuna.
            constraint: The constraint it breached, if any.
        """
        trial = self._optuna_trial(trial_id)
        import optuna

        with _quiet(optuna):
            try:
                trial.set_user_attr(PREFECT_STATE, state)
                if flow_run_id is not None:
                    trial.set_user_attr(PREFECT_FLOW_RUN, flow_run_id)
                if constraint is not None:
                    trial.set_user_attr(CONSTRAINT, constraint)
            except Exception as exc:  # noqa: BLE001 - labels only; the result matters
                _logger.warning("Could not label Optuna trial %s: %s", trial.number, exc)
            result = dict(metrics) if metrics is not None else None
            self._search.on_trial_complete(trial_id, result=result, error=metrics is None)

    def _optuna_trial(self, trial_id: str) -> _t.Any:
        # Ray's OptunaSearch keeps the Optuna trial of each Tune trial it suggested.
        return self._optuna._ot_trials[trial_id]


def check_algorithm(args: TuneArgsSpec) -> None:
    """Checks the warm-start points against the space, and that the storage opens.

    Raises:
        ValidationError: A point names no parameter or is off its range; the storage URL
            cannot be opened.
    """
    algorithm = args.algorithm
    if algorithm.points_to_evaluate and algorithm.space is None:
        issues = SearchSpace(args.parameters).check_points(algorithm.points_to_evaluate)
        if issues:
            raise ValidationError(issues, subject="the study's warm start")
    if algorithm.storage:
        _open_storage(algorithm.storage)


def _open_storage(url: str) -> _t.Any:
    import optuna

    try:
        return optuna.storages.RDBStorage(url=url)
    except Exception as exc:  # noqa: BLE001 - a bad URL, a missing driver, no server
        raise ValidationError(
            [
                Issue(
                    f"cannot open the Optuna storage {url!r}: {type(exc).__name__}: {exc}",
                    "tune.args.algorithm.storage",
                )
            ],
            subject="the study",
        ) from None


def _finished_before(storage: _t.Any, study_name: str) -> int:
    """Trials of a stored study that count toward `num_samples`: completed or failed."""
    from optuna.trial import TrialState

    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return sum(
        1
        for trial in storage.get_all_trials(study_id, deepcopy=False)
        if trial.state in (TrialState.COMPLETE, TrialState.FAIL)
        and trial.user_attrs.get(PREFECT_STATE) != "Cancelled"
    )


class _quiet:
    """Optuna's per-trial INFO lines off while inside (the study logs its own)."""

    def __init__(self, optuna: _t.Any) -> None:
        self._logging = optuna.logging

    def __enter__(self) -> None:
        self._level = self._logging.get_verbosity()
        self._logging.set_verbosity(max(self._level, logging.WARNING))

    def __exit__(self, *exc: object) -> None:
        self._logging.set_verbosity(self._level)
