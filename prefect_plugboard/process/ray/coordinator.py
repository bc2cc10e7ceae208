"""`RunCoordinator`: where a driver's runs and their workers meet, inside the driver.

The rooms live in the driver process, on its event loop (one coordinator per loop, see
`coordinator_server.driver_coordinator`); the driver calls them directly, and workers reach
them over their link to the driver (`link`, served by `coordinator_server`). Each run has its
own room, dropped when the run ends:

- workers register the addresses their components receive on, and learn where to send;
- the driver says when the components take a step (`Process.step()`), start running
  (`go`), and when they must stop; a failure reported by a worker stops the run at once, for
  every worker of the run;
- workers leave their reports (log lines, progress, endings) in order, and the driver reads
  them with one waiting call at a time (`updates`).

A worker keeps a `Room` of its own, the mirror of its run's room that the driver's pushes
keep current, and waits on it as the driver waits on the original. Nobody polls: every wait
is an `asyncio.Event`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import typing as _t

from prefect_plugboard.process.ray.reports import Failure, Report, StopAsked


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.stream import StreamAddress


__all__ = ["Room", "RunCoordinator", "Updates"]

ENDED = "the run has ended"
"""The stop reason of a run whose room has been dropped."""


@dataclass(frozen=True)
class Updates:
    """What `updates` returns.

    Attributes:
        cursor: Pass it to the next call.
        reports: The reports since the last call, oldest first.
        stop_reason: Why the run stops, once it does.
        graceful: Whether the stop was asked for (`process.stop()`, a `StopEvent`) rather
            than caused by a failure.
    """

    cursor: int
    reports: list[Report]
    stop_reason: str | None
    graceful: bool


@dataclass
class Room:
    """One run's room: what its workers are told, and what they reported.

    Attributes:
        addresses: Where each component receives its inputs.
        reports: Reports not yet read by the driver, oldest first.
        first: The cursor of `reports[0]`; earlier ones were read.
        started: The run's settings, once it starts.
        steps: How many steps by hand (`Process.step()`) were asked for.
        stop_reason: Why the run stops, once it does (the first reason is kept).
        graceful: Whether the stop was asked for rather than caused by a failure.
        changed: Set (and replaced) on every change.
    """

    addresses: dict[str, StreamAddress] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    first: int = 0
    started: dict[str, _t.Any] | None = None
    steps: int = 0
    stop_reason: str | None = None
    graceful: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def touch(self) -> None:
        """Wakes everyone waiting for a change."""
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def stop(self, reason: str, graceful: bool = False) -> None:
        """Stops the run, unless it is stopping already (the first reason is kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.graceful = graceful
            self.touch()

    async def wait_for_addresses(self, names: list[str]) -> dict[str, StreamAddress] | None:
        """Waits until every component in `names` has registered; `None` if the run stops first."""
        while not all(name in self.addresses for name in names):
            if self.stop_reason is not None:
                return None
            await self.changed.wait()
        return {name: self.addresses[name] for name in names}

    async def next_command(self, steps_taken: int) -> tuple[str, _t.Any] | None:
        """What a worker that has taken `steps_taken` steps does next.

        Returns:
            `("step", number)` for a step it has not taken, `("go", settings)` once the run
            starts, or `None` if the run stops first.
        """
        while True:
            if self.stop_reason is not None:
                return None
            if self.steps > steps_taken:
                return "step", steps_taken + 1
            if self.started is not None:
                return "go", self.started
            await self.changed.wait()

    async def wait_stop(self) -> str:
        """Returns the stop reason once the run is told to stop."""
        while self.stop_reason is None:
            await self.changed.wait()
        return self.stop_reason


class RunCoordinator:
    """Addresses, start and stop signals, and reports of a driver's runs: one room per run."""

    def __init__(self) -> None:
        self._runs: dict[str, Room] = {}
        self._forgotten: set[str] = set()

    def room(self, run_id: str) -> Room:
        """The run's room, made on first use; a stopped stand-in once the run is forgotten."""
        if run_id in self._forgotten:  # a late call for a run that has ended: already stopped
            return Room(stop_reason=ENDED)
        return self._runs.setdefault(run_id, Room())

    def holds(self, run_id: str) -> bool:
        """Whether the run has a room (it has started and not been forgotten)."""
        return run_id in self._runs

    def register(self, run_id: str, addresses: dict[str, StreamAddress]) -> None:
        """Records where components receive their inputs."""
        room = self.room(run_id)
        room.addresses.update(addresses)
        room.touch()

    async def addresses(self, run_id: str, names: list[str]) -> dict[str, StreamAddress] | None:
        """Waits until every component in `names` has registered; `None` if the run stops first."""
        return await self.room(run_id).wait_for_addresses(names)

    def go(self, run_id: str, settings: dict[str, _t.Any]) -> None:
        """Lets the run's components start stepping, with the driver's run `settings`."""
        room = self.room(run_id)
        room.started = settings
        room.touch()

    def step(self, run_id: str) -> int:
        """Asks every component of the run to take one step (`Process.step()`).

        Returns:
            The step's number (1 for the first).
        """
        room = self.room(run_id)
        room.steps += 1
        room.touch()
        return room.steps

    async def next_command(self, run_id: str, steps_taken: int) -> tuple[str, _t.Any] | None:
        """What a worker that has taken `steps_taken` steps does next (see `Room`)."""
        return await self.room(run_id).next_command(steps_taken)

    def stop(self, run_id: str, reason: str, graceful: bool = False) -> None:
        """Tells every component of the run to stop; the first reason is kept.

        Args:
            run_id: The run.
            reason: Why, for the components' task runs.
            graceful: A stop asked for (a `StopEvent`, `process.stop()`), not a failure.
        """
        self.room(run_id).stop(reason, graceful)

    async def wait_stop(self, run_id: str) -> str:
        """Returns the stop reason once the run is told to stop."""
        return await self.room(run_id).wait_stop()

    def report(self, run_id: str, reports: list[Report]) -> None:
        """Keeps a worker's reports for the driver; a failure or a `StopEvent` stops the run."""
        room = self.room(run_id)
        room.reports.extend(reports)
        for report in reports:
            if isinstance(report, Failure):
                room.stop(f"stopped because component {report.component!r} failed")
            elif isinstance(report, StopAsked):
                room.stop(report.reason, graceful=True)
        room.touch()

    async def updates(self, run_id: str, cursor: int, stop_seen: bool) -> Updates:
        """Waits for reports after `cursor` (or a stop the caller has not seen) and returns them.

        Reports before `cursor` have been read and are dropped.
        """
        room = self.room(run_id)
        del room.reports[: max(0, cursor - room.first)]
        room.first = max(room.first, cursor)
        while not room.reports and (stop_seen or room.stop_reason is None):
            await room.changed.wait()
        reports = list(room.reports)
        return Updates(room.first + len(reports), reports, room.stop_reason, room.graceful)

    def forget(self, run_id: str) -> None:
        """Drops what the coordinator holds of a run that has ended."""
        self._forgotten.add(run_id)
        room = self._runs.pop(run_id, None)
        if room is not None:
            room.stop(ENDED)  # nobody is left waiting on a run that is gone
            room.touch()

    def runs(self) -> list[str]:
        """The runs it holds something of (none, between runs)."""
        return list(self._runs)
