"""How the command line speaks: problems as a list, progress as a live table."""

from __future__ import annotations

from collections.abc import Callable
import typing as _t

from rich.console import Console
from rich.table import Table

from prefect_plugboard.exceptions import ComponentError, PlugboardError, ValidationError
from prefect_plugboard.process.process import Process


__all__ = ["console", "describe_error", "errors", "progress_table"]

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def describe_error(error: BaseException) -> str:
    """A short account of an error for the terminal: the problems, or the failure and cause."""
    if isinstance(error, ValidationError):
        return str(error)
    if isinstance(error, ComponentError) and error.__cause__ is not None:
        return str(error)
    if isinstance(error, PlugboardError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def progress_table(process_getter: Callable[[], Process | None]) -> Callable[[], _t.Any]:
    """A renderable factory for `rich.live.Live`: each component's status and figures."""

    def render() -> _t.Any:
        process = process_getter()
        if process is None:
            return "Starting…"
        rows = process.progress()
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("component", "type", "status", "steps", "in", "out"):
            table.add_column(
                column, justify="right" if column in ("steps", "in", "out") else "left"
            )
        for row in rows:
            table.add_row(
                row.name,
                row.type,
                str(row.status),
                f"{row.steps:,}",
                f"{row.messages_in:,}",
                f"{row.messages_out:,}",
            )
        running = sum(1 for r in rows if not r.status.is_terminal and r.status != "created")
        moved = sum(r.messages_in for r in rows)
        table.caption = f"{running} of {len(rows)} components running, {moved:,} messages moved"
        return table

    return render
