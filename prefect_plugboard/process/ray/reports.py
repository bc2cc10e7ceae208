"""What a Ray worker tells the driver about its components, through the run's coordinator.

A worker runs components and nothing of Prefect; the driver turns these reports into task-run
logs and states. They travel in batches over the worker's link to the driver (`link`), in the
order they were made, so a component's last log lines always arrive before the report that it
ended. The driver adds two of its own to a run's reports, after the worker's: `HostLost` when
a worker's link drops, `HostGone` when its task has ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import typing as _t

from prefect_plugboard.log_lines import LogLine


__all__ = [
    "Ended",
    "Failure",
    "HostGone",
    "HostLost",
    "HostReady",
    "Lines",
    "Progress",
    "Report",
    "Stepped",
    "StopAsked",
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


@dataclass(frozen=True, slots=True)
class HostLost:
    """Left by the driver when a worker's link to it dropped before the worker ended it.

    The worker stops its components when it notices; what of it has not reported an end by
    now never will (its reports cannot reach the driver any more).

    Attributes:
        host: The worker's number in the run.
        reason: What happened to the link.
    """

    host: int
    reason: str


Report = Lines | Progress | Failure | Ended | Stepped | StopAsked | HostReady | HostGone | HostLost
