"""`RunCoordinator`: the Ray actor where a driver's runs and their workers meet.

One per driver process (no CPU, on the driver's node), made on first use and kept while the
driver's Ray connection lasts, so consecutive runs start without a new worker process. Each
run has its own room in it, dropped when the run ends:

- workers register the addresses their components receive on, and look up where to send;
- the driver says when the components take a step (`Process.step()`), start running
  (`go`), and when they must stop;
  a failure reported by a worker stops the run at once, for every worker, without the
  driver in between;
- workers leave their reports (log lines, progress, endings) in order, and the driver reads
  them with one long call at a time (`updates`).

Nobody polls: every wait is an `asyncio.Event`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import typing as _t

from prefect_plugboard.process.ray.reports import Failure, Report, StopAsked


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.stream import StreamAddress


__all__ = ["RunCoordinator", "Updates"]


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
class _Run:
    addresses: dict[str, StreamAddress] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    first: int = 0  # the cursor of reports[0]; earlier ones were read
    started: dict[str, _t.Any] | None = None
    steps: int = 0
    stop_reason: str | None = None
    graceful: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def touch(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class RunCoordinator:
    """Addresses, start and stop signals, and reports of a driver's runs (a Ray actor)."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._forgotten: set[str] = set()

    def _run(self, run_id: str) -> _Run:
        if run_id in self._forgotten:  # a late call for a run that has ended: already stopped
            return _Run(stop_reason="the run has ended")
        return self._runs.setdefault(run_id, _Run())

    async def register(self, run_id: str, addresses: dict[str, StreamAddress]) -> None:
        """Records where components receive their inputs."""
        run = self._run(run_id)
        run.addresses.update(addresses)
        run.touch()

    async def addresses(self, run_id: str, names: list[str]) -> dict[str, StreamAddress] | None:
        """Waits until every component in `names` has registered; `None` if the run stops first."""
        run = self._run(run_id)
        while not all(name in run.addresses for name in names):
            if run.stop_reason is not None:
                return None
            await run.changed.wait()
        return {name: run.addresses[name] for name in names}

    async def go(self, run_id: str, settings: dict[str, _t.Any]) -> None:
        """Lets the run's components start stepping, with the driver's run `settings`."""
        run = self._run(run_id)
        run.started = settings
        run.touch()

    async def step(self, run_id: str) -> int:
        """Asks every component of the run to take one step (`Process.step()`).

        Returns:
            The step's number (1 for the first).
        """
        run = self._run(run_id)
        run.steps += 1
        run.touch()
        return run.steps

    async def next_command(self, run_id: str, steps_taken: int) -> tuple[str, _t.Any] | None:
        """What a worker that has taken `steps_taken` steps does next.

        Returns:
            `("step", number)` for a step it has not taken, `("go", settings)` once the run
            starts, or `None` if the run stops first.
        """
        run = self._run(run_id)
        while True:
            if run.stop_reason is not None:
                return None
            if run.steps > steps_taken:
                return "step", steps_taken + 1
            if run.started is not None:
                return "go", run.started
            await run.changed.wait()

    async def stop(self, run_id: str, reason: str, graceful: bool = False) -> None:
        """Tells every component of the run to stop; the first reason is kept.

        Args:
            run_id: The run.
            reason: Why, for the components' task runs.
            graceful: A stop asked for (a `StopEvent`, `process.stop()`), not a failure.
        """
        run = self._run(run_id)
        if run.stop_reason is None:
            run.stop_reason = reason
            run.graceful = graceful
            run.touch()

    async def wait_stop(self, run_id: str) -> str:
        """Returns the stop reason once the run is told to stop."""
        run = self._run(run_id)
        while run.stop_reason is None:
            await run.changed.wait()
        return run.stop_reason

    async def report(self, run_id: str, reports: list[Report]) -> None:
        """Keeps a worker's reports for the driver; a failure or a `StopEvent` stops the run."""
        run = self._run(run_id)
        run.reports.extend(reports)
        for report in reports:
            if isinstance(report, Failure):
                await self.stop(run_id, f"stopped because component {report.component!r} failed")
            elif isinstance(report, StopAsked):
                await self.stop(run_id, report.reason, graceful=True)
        run.touch()

    async def updates(self, run_id: str, cursor: int, stop_seen: bool) -> Updates:
        """Waits for reports after `cursor` (or a stop the caller has not seen) and returns them.

        Reports before `cursor` have been read and are dropped.
        """
        run = self._run(run_id)
        del run.reports[: max(0, cursor - run.first)]
        run.first = max(run.first, cursor)
        while not run.reports and (stop_seen or run.stop_reason is None):
            await run.changed.wait()
        reports = list(run.reports)
        return Updates(run.first + len(reports), reports, run.stop_reason, run.graceful)

    async def forget(self, run_id: str) -> None:
        """Drops what the coordinator holds of a run that has ended."""
        self._forgotten.add(run_id)
        run = self._runs.pop(run_id, None)
        if run is not None and run.stop_reason is None:
            run.stop_reason = "the run has ended"
            run.touch()  # nobody is left waiting on a run that is gone

    async def runs(self) -> list[str]:
        """The runs it holds something of (none, between runs)."""
        return list(self._runs)


_SHARED: tuple[tuple[str, str], _t.Any] | None = None


def shared_coordinator() -> _t.Any:
    """This driver's coordinator on the Ray it is connected to; made on first use.

    It asks for no CPU and lives on the driver's node, so it never keeps a run from being
    placed and dies with the driver. A new Ray connection (after `ray.shutdown()`) gets a new
    one.
    """
    global _SHARED  # one coordinator per driver and Ray connection
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    context = ray.get_runtime_context()
    key = (context.get_job_id(), context.get_node_id())
    if _SHARED is None or _SHARED[0] != key:
        handle = (
            ray.remote(RunCoordinator)
            .options(
                name=f"plugboard-coordinator-{key[0]}-{key[1][:8]}",
                num_cpus=0,
                max_concurrency=10_000,
                scheduling_strategy=NodeAffinitySchedulingStrategy(key[1], soft=True),
            )
            .remote()
        )
        _SHARED = (key, handle)
    return _SHARED[1]
