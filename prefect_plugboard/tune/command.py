"""`prefect-plugboard tune model.yaml`: a study from the command line, its trials live."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import math
from pathlib import Path
import time
import typing as _t

from rich.table import Table

from prefect_plugboard.cli.output import console, describe_error, errors, live_view
from prefect_plugboard.tune.artifact import short_name
from prefect_plugboard.tune.flow import study_flow
from prefect_plugboard.tune.study import Study


__all__ = ["run_tune_command", "trials_table"]

SHOWN_TRIALS = 12
"""How many trials the live table shows: the running ones and the latest to end."""


def trials_table(study: Study) -> Callable[[], _t.Any]:
    """A renderable factory for `rich.live.Live`: the study's trials as they run."""

    def render() -> _t.Any:
        trials = list(study.trials)
        if not trials:
            return f"Starting study {study.name!r}…"
        parameters = list(trials[0].config)
        metrics = [o.full_name for o in study.args.objectives]
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("trial", "state", *map(short_name, parameters + metrics), "s"):
            table.add_column(column, justify="left" if column == "state" else "right")
        running = [t for t in trials if t.state in ("Pending", "Running")]
        ended = [t for t in trials if t not in running]
        for trial in sorted([*ended[-max(0, SHOWN_TRIALS - len(running)) :], *running], key=_n):
            table.add_row(
                str(trial.number),
                trial.state + (" (constraint)" if trial.constraint is not None else ""),
                *(_cell(trial.config.get(p)) for p in parameters),
                *(_cell(trial.metrics.get(m)) for m in metrics),
                f"{trial.duration:.2f}" if trial.duration is not None else "",
            )
        done = sum(1 for t in ended if t.completed)
        caption = (
            f"{len(ended)} of {study.args.num_samples - study.previous} trials ended "
            f"({done} completed), {len(running)} running"
        )
        try:
            best = study.results.best()
        except ValueError:
            best = None
        if best is not None and not isinstance(best, list):
            caption += f"; best so far: trial {best.number}, " + ", ".join(
                f"{short_name(k)} = {_cell(v)}" for k, v in best.metrics.items()
            )
        table.caption = caption
        return table

    return render


def _n(trial: _t.Any) -> int:
    return int(trial.number)


def _cell(value: _t.Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def run_tune_command(
    file: Path,
    *,
    process_type: str | None,
    params: list[str] | None,
    num_samples: int | None,
    max_concurrent: int | None,
    study_name: str | None,
    ray_address: str | None,
) -> int:
    """Runs the study a model file describes; returns the exit code."""
    try:
        study = Study.from_model(
            file,
            process_type=process_type,
            overrides=params or None,
            num_samples=num_samples,
            max_concurrent=max_concurrent,
            study_name=study_name,
            ray_address=ray_address,
        )
        study.prepare()
    except Exception as exc:  # noqa: BLE001 - every error is reported the same way
        errors.print(f"[red]Error:[/red] {describe_error(exc)}")
        return 1
    console.print(f"Tuning {file}: study {study.name!r} ({study.args.num_samples} trials)…")
    started = time.monotonic()
    try:
        state = asyncio.run(_run(study))
    except KeyboardInterrupt:
        errors.print("[yellow]Interrupted.[/yellow]")
        return 130
    finally:
        study.release()
    results = study.results
    if not state.is_completed():
        error = asyncio.run(state.aresult(raise_on_failure=False))
        detail = describe_error(error) if isinstance(error, BaseException) else state.message
        errors.print(f"[red]{state.name}:[/red] {detail}")
    else:
        console.print(
            f"[green]✓[/green] {state.message} in {time.monotonic() - started:.1f}s "
            f"({study.concurrency} at a time)."
        )
    try:
        best = results.best()
    except ValueError:
        best = []
    for trial in best if isinstance(best, list) else [best]:
        values = ", ".join(f"{short_name(k)}={_cell(v)}" for k, v in trial.config.items())
        console.print(f"  best: trial {trial.number}: {values}")
    flow_run_id = state.state_details.flow_run_id
    console.print(
        f"Inspect the study with:\n  prefect flow-run inspect {flow_run_id}\n"
        f"  prefect flow-run logs {flow_run_id}\n"
        f"(its trials are its subflow runs, tagged study:{study.name})"
    )
    return 0 if state.is_completed() else 1


async def _run(study: Study) -> _t.Any:
    flow = study_flow(study)
    async with live_view(trials_table(study)):
        return await flow(return_state=True)
