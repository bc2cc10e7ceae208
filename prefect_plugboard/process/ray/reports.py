"""What a Ray worker tells the driver about its components, through the run's coordinator.

A worker runs components and nothing of Prefect; the driver turns these reports into task-run
logs and states. They travel in batches, in the order they were made, so a component's last
log lines always arrive before the report that it ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import typing as _t

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.component.log_lines import LogLine
from prefect_plugboard.schemas.status import Status


__all__ = [
    "Ended",
    "Failure",
    "HostGone",
    "HostReady",
    "Lines",
    "Progress",
    "Report",
    "Stepped",
    "StopAsked",
    "apply_final_state",
    "apply_progress",
]


@dataclass(frozen=True, slots=True)
class Lines:
    """Log lines of one component, oldest first."""

    component: str
    lines: tuple[LogLine, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    """A running component's status and figures."""

    component: str
    status: str
    stats: Mapping[str, float | int]


@dataclass(frozen=True, slots=True)
class Failure:
    """A component raised (in `init()`, a step or `destroy()`); its run must stop now.

    Sent before the exception itself (in `Ended`), which may take long to pickle or not
    pickle at all: the rest of the run stops without waiting for it.

    Attributes:
        component: The component.
        error: `"Type: message"` of what it raised.
    """

    component: str
    error: str


@dataclass(frozen=True, slots=True)
class Ended:
    """A component has ended; what it ended with.

    Attributes:
        component: The component.
        status: `completed`, `failed` or `stopped`.
        final: Its final state for the driver's copy (see `final_state`).
        error: What it raised, pickled, if it failed and the error could be pickled.
        reason: Why it stopped, if it was stopped.
    """

    component: str
    status: str
    final: Mapping[str, _t.Any]
    error: bytes | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StopAsked:
    """A component asked the whole run to stop (it published a `StopEvent`)."""

    component: str
    reason: str


@dataclass(frozen=True, slots=True)
class HostReady:
    """Every component of one worker is wired and initialised; it waits for the start."""

    host: int
    components: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Stepped:
    """A component has taken a step by hand (`Process.step()`); its state after it."""

    component: str
    step: int
    state: Mapping[str, _t.Any]


@dataclass(frozen=True, slots=True)
class HostGone:
    """Left by the driver once a worker's task has ended, after that worker's own reports.

    What of it has not reported an end by now never will.
    """

    host: int


Report = Lines | Progress | Failure | Ended | Stepped | StopAsked | HostReady | HostGone


def apply_progress(component: Component, status: str, stats: Mapping[str, _t.Any]) -> None:
    """Copies a worker's status and figures onto the driver's component object."""
    component.status = Status(status)
    component._run_stats = RunStats(**stats)


def apply_final_state(component: Component, final: Mapping[str, _t.Any]) -> None:
    """Copies a worker's final state onto the driver's component object."""
    apply_progress(component, final["status"], final["stats"])
    component.__dict__.update(final["fields"])
    for key, value in final["exports"].items():
        setattr(component, key, value)
