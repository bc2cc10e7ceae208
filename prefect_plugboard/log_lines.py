"""Log lines a component writes where Prefect cannot take them yet, kept for its task run.

A component logs through `self.logger`. Inside its Prefect task run that logger writes to the
task run directly; elsewhere (in its `init()`, before the task run exists, or on a Ray worker,
which runs no Prefect at all) the lines are captured here, with their own timestamps, and
written into the task run later by whoever holds it (see `process.tasks.write_log_lines`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
import typing as _t


__all__ = ["LogLine", "capturing_logger"]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One captured log line: when, how severe, and the text (with any traceback).

    Attributes:
        created: When it was logged (seconds since the epoch, as `LogRecord.created`).
        level: The logging level, e.g. `logging.INFO`.
        message: The formatted message; an exception's traceback follows it.
    """

    created: float
    level: int
    message: str

    @classmethod
    def from_record(cls, record: logging.LogRecord) -> LogLine:
        """Captures a record: its arguments applied, its exception formatted."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{record.stack_info}"
        return cls(record.created, record.levelno, message)

    def to_record(
        self, name: str, extra: _t.Mapping[str, _t.Any] | None = None
    ) -> logging.LogRecord:
        """A `LogRecord` of this line for logger `name`, keeping the original timestamp."""
        record = logging.LogRecord(name, self.level, "", 0, self.message, None, None)
        record.created = self.created
        record.msecs = (self.created - int(self.created)) * 1000
        for key, value in (extra or {}).items():
            setattr(record, key, value)
        return record


class _Capture(logging.Handler):
    def __init__(self, sink: Callable[[LogLine], None]) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink(LogLine.from_record(record))
        except Exception:  # noqa: BLE001 - logging must never break the component
            self.handleError(record)


def capturing_logger(
    component: str, sink: Callable[[LogLine], None], level: int = logging.DEBUG
) -> logging.Logger:
    """A logger for one component whose lines go to `sink` and nowhere else.

    It is not registered with `logging` (two runs of a component do not share it) and does
    not propagate, so nothing reaches the process's own handlers.

    Args:
        component: The component's name (the logger is named after it).
        sink: Called with every line at or above `level`.
        level: The lowest level kept.
    """
    logger = logging.Logger(f"prefect_plugboard.component.{component}", level)
    logger.propagate = False
    logger.addHandler(_Capture(sink))
    return logger
