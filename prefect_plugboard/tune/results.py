"""What a study found: each trial's parameters, objectives and end, and the best of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
import datetime
import math
import typing as _t
from uuid import UUID


__all__ = ["StudyResults", "TrialResult"]

TrialState = _t.Literal["Pending", "Running", "Completed", "Failed", "Cancelled"]


@dataclass
class TrialResult:
    """One trial of a study.

    Like Ray Tune's `Result`, `config` holds the parameters and `metrics` the objectives,
    both by full name (`component.trajectory.arg.angle`, `component.max-height.field.max_y`).

    Attributes:
        number: The trial's number in the study (Optuna's; it goes on when a study resumes).
        config: The parameters' values.
        metrics: Each objective's value (for a constraint breach: the value it was scored
            with); empty unless the trial completed.
        state: `Running`, then `Completed`, `Failed` or `Cancelled`.
        constraint: For a trial that ended on a `ConstraintError`: its message.
        error: For a failed trial: what failed.
        started: When the trial started.
        duration: How long it took (s).
        flow_run_id: The trial's Prefect flow run.
    """

    number: int
    config: dict[str, _t.Any]
    metrics: dict[str, float] = field(default_factory=dict)
    state: TrialState = "Pending"
    constraint: str | None = None
    error: str | None = None
    started: datetime.datetime | None = None
    duration: float | None = None
    flow_run_id: UUID | None = None

    @property
    def completed(self) -> bool:
        """Whether the trial has an objective (a constraint breach included)."""
        return self.state == "Completed"


class StudyResults(Sequence[TrialResult]):
    """Every trial of a study run, in the order they started; a list with a few helpers.

    Args:
        trials: The trials.
        metrics: The objectives' full names.
        modes: Their directions.
    """

    def __init__(
        self, trials: Sequence[TrialResult], metrics: Sequence[str], modes: Sequence[str]
    ) -> None:
        self._trials = list(trials)
        self.metrics = list(metrics)
        self.modes = list(modes)

    @_t.overload
    def __getitem__(self, index: int) -> TrialResult: ...

    @_t.overload
    def __getitem__(self, index: slice) -> Sequence[TrialResult]: ...

    def __getitem__(self, index: int | slice) -> TrialResult | Sequence[TrialResult]:
        return self._trials[index]

    def __len__(self) -> int:
        return len(self._trials)

    def __iter__(self) -> Iterator[TrialResult]:
        return iter(self._trials)

    @property
    def errors(self) -> list[str]:
        """What failed, one entry per failed trial."""
        return [t.error or "failed" for t in self._trials if t.state == "Failed"]

    @property
    def num_errors(self) -> int:
        """How many trials failed."""
        return len(self.errors)

    def get_best_result(self, metric: str | None = None, mode: str | None = None) -> TrialResult:
        """The completed trial with the best value of `metric` (by default the objective).

        Raises:
            ValueError: No trial completed, or `metric` is not an objective.
        """
        metric = metric or self.metrics[0]
        if metric not in self.metrics:
            msg = f"{metric!r} is not an objective of the study; they are {self.metrics}"
            raise ValueError(msg)
        mode = mode or self.modes[self.metrics.index(metric)]
        done = [t for t in self._trials if t.completed and metric in t.metrics]
        if not done:
            msg = "no trial of the study completed"
            raise ValueError(msg)
        sign = 1.0 if mode == "max" else -1.0
        return max(done, key=lambda t: _ranked(sign * t.metrics[metric]))

    def best(self) -> TrialResult | list[TrialResult]:
        """The best trial (one per objective for several objectives)."""
        if len(self.metrics) == 1:
            return self.get_best_result()
        return [self.get_best_result(m, d) for m, d in zip(self.metrics, self.modes, strict=True)]

    def get_dataframe(self) -> _t.Any:
        """The trials as a pandas `DataFrame`: number, state, parameters, objectives."""
        import importlib

        pandas: _t.Any = importlib.import_module("pandas")  # comes with Ray Tune
        return pandas.DataFrame(
            [
                {
                    "number": t.number,
                    "state": t.state,
                    **{f"config/{k}": v for k, v in t.config.items()},
                    **t.metrics,
                    "constraint": t.constraint,
                    "error": t.error,
                    "duration": t.duration,
                }
                for t in self._trials
            ]
        )


def _ranked(value: float) -> float:
    return -math.inf if math.isnan(value) else value
