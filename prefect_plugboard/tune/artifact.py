"""The study's table artifact: every trial, its parameters, objectives, end and duration."""

from __future__ import annotations

from collections.abc import Sequence
import logging
import typing as _t

from prefect.artifacts import acreate_table_artifact

from prefect_plugboard.process.artifacts import artifact_key
from prefect_plugboard.tune.results import StudyResults, TrialResult


__all__ = ["publish_trials", "trial_rows"]

_logger = logging.getLogger(__name__)

BEST = "★"


def short_name(full_name: str) -> str:
    """`trajectory.angle` for `component.trajectory.arg.angle` (`scale` for a process's)."""
    parts = full_name.split(".")
    if len(parts) >= 4:
        return parts[-1] if parts[0] == "process" else f"{parts[1]}.{'.'.join(parts[3:])}"
    return full_name


def _value(value: _t.Any) -> _t.Any:
    return round(value, 6) if isinstance(value, float) else value


def trial_rows(results: StudyResults) -> list[dict[str, _t.Any]]:
    """One row per trial; the best trial of each objective is marked in `best`."""
    best: dict[int, list[str]] = {}
    for metric, mode in zip(results.metrics, results.modes, strict=True):
        try:
            winner = results.get_best_result(metric, mode)
        except ValueError:
            continue
        best.setdefault(winner.number, []).append(short_name(metric))
    single = len(results.metrics) == 1
    rows = []
    for trial in sorted(results, key=lambda t: t.number):
        marks = best.get(trial.number, [])
        row: dict[str, _t.Any] = {
            "trial": trial.number,
            "best": (BEST if single else ", ".join(f"{BEST} {m}" for m in marks)) if marks else "",
            "state": trial.state,
        }
        row.update({short_name(k): _value(v) for k, v in trial.config.items()})
        row.update({short_name(m): _value(trial.metrics.get(m)) for m in results.metrics})
        row["duration (s)"] = round(trial.duration, 3) if trial.duration is not None else None
        row["note"] = _note(trial)
        row["flow run"] = str(trial.flow_run_id) if trial.flow_run_id else ""
        rows.append(row)
    return rows


def _note(trial: TrialResult) -> str:
    if trial.constraint is not None:
        return f"constraint breached: {trial.constraint}"
    return trial.error or ""


async def publish_trials(study_name: str, results: StudyResults, outcome: str) -> None:
    """Publishes the trials as a table artifact of the current flow run (best effort)."""
    try:
        await acreate_table_artifact(
            table=trial_rows(results),
            key=artifact_key(study_name, "trials"),
            description=f"Study {study_name!r} {outcome}: {_summary(results)}",
        )
    except Exception:  # the study's results matter more than the table
        _logger.warning("Could not publish the trials of study %r", study_name, exc_info=True)


def _summary(trials: Sequence[TrialResult]) -> str:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    breaches = sum(1 for t in trials if t.constraint is not None)
    parts = [f"{n} {state.lower()}" for state, n in sorted(counts.items())]
    if breaches:
        parts.append(f"{breaches} breached a constraint")
    return ", ".join(parts) or "no trials"
