"""How the command line speaks: problems as a list, progress as a live table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
import logging
import sys
import typing as _t

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from prefect_plugboard.exceptions import ComponentError, PlugboardError, ValidationError
from prefect_plugboard.process.process import Process


__all__ = ["console", "describe_error", "errors", "live_view", "progress_table"]

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

REDRAW_INTERVAL = 0.25
"""How often (s) a live table is redrawn."""


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


@contextlib.asynccontextmanager
async def live_view(get_renderable: Callable[[], _t.Any]) -> AsyncIterator[None]:
    """On a terminal, a table that redraws in place below the log lines, for the block.

    Log lines bound for the terminal (Prefect's console handler) are printed through the
    live display, so each lands whole above the table instead of inside it. The table is
    redrawn from the event loop, 4 times a second, not from a thread of its own: the run logs
    from the loop, so a redraw never meets a log line half-way. Off a terminal (a pipe, a
    file, CI) nothing is drawn and the logs go where they went.

    Args:
        get_renderable: Called at each redraw for what to draw.
    """
    if not sys.stdout.isatty():
        yield
        return
    live = Live(get_renderable=get_renderable, console=console, auto_refresh=False, transient=True)
    with _terminal_logs_through(console), live:
        redraw = asyncio.ensure_future(_redraw(live))
        try:
            yield
        finally:
            redraw.cancel()


async def _redraw(live: Live) -> None:
    while True:
        live.refresh()
        await asyncio.sleep(REDRAW_INTERVAL)


class _ConsoleLogHandler(logging.Handler):
    """Prints records through a rich console, formatted as `handler` would have."""

    def __init__(self, target: Console, handler: logging.Handler) -> None:
        super().__init__(handler.level)
        self.target = target
        self.setFormatter(handler.formatter)
        self.filters = list(handler.filters)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.target.print(Text(self.format(record)), soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging never raises into the caller
            self.handleError(record)


@contextlib.contextmanager
def _terminal_logs_through(target: Console) -> Iterator[None]:
    """Swaps every handler that writes to the terminal for one that prints via `target`."""
    terminal = {sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__}
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    swapped: list[tuple[logging.Logger, logging.Handler, logging.Handler]] = []
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and handler.stream in terminal:
                replacement = _ConsoleLogHandler(target, handler)
                logger.removeHandler(handler)
                logger.addHandler(replacement)
                swapped.append((logger, handler, replacement))
    try:
        yield
    finally:
        for logger, original, stand_in in swapped:
            logger.removeHandler(stand_in)
            logger.addHandler(original)
