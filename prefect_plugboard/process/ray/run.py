"""`RayRun`: one run of a graph on Ray, as the driver sees it, from start to wind-down.

The driver is the only one that decides how a component ended. It learns from three
sources, and the first word on a component is final:

- the reports its worker leaves in the run's room of the driver's coordinator, over its link
  to the driver (read in order by one follower): log lines, progress, a failure, how it
  ended;
- Ray, when a worker dies, and the coordinator, when a worker's link drops: the components of
  that worker that have not reported an end have crashed;
- its own clock: once the run stops, components that have not ended within the stop grace
  have their worker killed, and end as stopped (or as failed, if they had said so).

Nothing here talks to Prefect: `RayProcess` turns each component's end into its task run's
final state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import logging
import typing as _t
import uuid

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.log_lines import LogLine
from prefect_plugboard.process.ray.placement import HostPlan
from prefect_plugboard.process.ray.reports import (
    Ended,
    Failure,
    HostGone,
    HostLost,
    HostReady,
    Lines,
    Progress,
    Report,
    Stepped,
)
from prefect_plugboard.process.supervision import ComponentFailure, ReportedError
from prefect_plugboard.process.wiring import WorkerPlan
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.coordinator_server import CoordinatorServer


__all__ = ["HOST_EXIT_TIMEOUT", "LOST_GRACE", "ComponentEnd", "RayRun"]

_logger = logging.getLogger(__name__)

HOST_EXIT_TIMEOUT = 10.0
"""How long (s) a worker whose components have all ended may take to finish its task."""
LOST_GRACE = 5.0
"""How long (s) the driver waits for Ray's word on a worker whose link dropped (a death says
more than a dropped link) before it counts that worker's components crashed anyway."""
LINK_END_TIMEOUT = 5.0
"""How long (s), once a worker's task has ended, its link may take to deliver what is left."""
_WORKER_DEATHS = frozenset(
    {"WorkerCrashedError", "NodeDiedError", "ActorDiedError", "OutOfMemoryError", "ObjectLostError"}
)


@dataclass(frozen=True)
class ComponentEnd:
    """How a component's run ended.

    Attributes:
        status: `COMPLETED`, `FAILED` or `STOPPED`.
        message: Why, for its task run (empty when it completed).
        error: What it raised, when it failed and the error could be sent back.
        crashed: It did not end by itself: its worker died.
    """

    status: Status
    message: str = ""
    error: BaseException | None = None
    crashed: bool = False


class RayRun:
    """A run of components on Ray workers: start, reports, stop, and the end of each one.

    Args:
        name: The process's name, for messages.
        components: The driver's component objects, by name (kept current from reports).
        hosts: The worker processes and the components each runs.
        plans: Each component's wiring.
        coordinator: The driver's run coordinator (for this event loop).
        group: The run's placement group (bundle `i` for host `i`).
        stop_grace: How long (s) components may take to stop before their workers are killed.
        log_level: The lowest level of log lines the workers send.
    """

    def __init__(
        self,
        *,
        name: str,
        components: Mapping[str, Component],
        hosts: Sequence[HostPlan],
        plans: Mapping[str, WorkerPlan],
        coordinator: CoordinatorServer,
        group: _t.Any,
        stop_grace: float,
        log_level: int = logging.INFO,
    ) -> None:
        self.run_id = f"{name}-{uuid.uuid4().hex[:12]}"
        self.name = name
        self.components = components
        self.hosts = list(hosts)
        self.plans = plans
        self.coordinator = coordinator
        self.group = group
        self.stop_grace = stop_grace
        self.log_level = log_level
        loop = asyncio.get_running_loop()
        self._ends: dict[str, asyncio.Future[ComponentEnd]] = {
            name: loop.create_future() for name in components
        }
        self._host_of = {c: i for i, host in enumerate(self.hosts) for c in host.components}
        self._sinks: dict[str, Callable[[Sequence[LogLine]], None]] = {}
        self._held_lines: dict[str, list[LogLine]] = {name: [] for name in components}
        self._reported: dict[str, str] = {}  # a component's failure, as reported
        self._failures: list[ComponentFailure] = []
        self._ready: set[int] = set()
        self._stepped: dict[int, set[str]] = {}
        self._changed = asyncio.Event()  # a worker is ready, a step taken, a component ended
        self._refs: list[_t.Any] = []
        self._gone: dict[int, BaseException | None] = {}
        self._watching: list[asyncio.Task[None]] = []
        self._lost: dict[int, str] = {}  # hosts whose link dropped, and how
        self._background: list[asyncio.Task[None]] = []
        self._winding_down: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None
        self.graceful = False

    # ----- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the workers and waits until every component is wired and initialised.

        Raises:
            ComponentError: A component's `init()` raised, or its worker could not run it
                (`ComponentCrashedError`); everything started has been stopped.
        """
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from prefect_plugboard.process.ray.auth import StreamSecurity
        from prefect_plugboard.process.ray.host import HostSettings
        from prefect_plugboard.process.ray.tls import ray_uses_tls

        # A fresh secret for this run's streams and links, handed to its workers with their
        # components; its room in the coordinator, and where its workers reach the driver.
        one_node, on_drivers_node = _where(self.group)
        streams = StreamSecurity.for_run(self.run_id, tls=ray_uses_tls(), loopback=one_node)
        try:
            driver = await self.coordinator.open(
                streams, len(self.hosts), loopback=one_node and on_drivers_node
            )
        except BaseException as exc:
            for name in self.components:  # nothing started: nothing to wait for
                self._settle(name, ComponentEnd(Status.FAILED, str(exc), exc))
            raise
        body = _host_task()
        for index, host in enumerate(self.hosts):
            options = {
                **host.resources.to_ray_options(),
                "max_retries": 0,
                "name": f"plugboard {self.name}: {', '.join(host.components)}",
                "scheduling_strategy": PlacementGroupSchedulingStrategy(self.group, index),
            }
            self._refs.append(
                body.options(**options).remote(
                    HostSettings(self.run_id, index, streams, self.log_level),
                    [self.components[c] for c in host.components],
                    {c: self.plans[c] for c in host.components},
                    driver,
                )
            )
        self._background.append(asyncio.ensure_future(self._follow()))
        self._watching = [
            asyncio.ensure_future(self._watch(index, ref)) for index, ref in enumerate(self._refs)
        ]
        self._background += self._watching
        while len(self._ready) < len(self.hosts) and not any(f.done() for f in self._ends.values()):
            await self._changed.wait()
            self._changed.clear()
        if len(self._ready) < len(self.hosts):
            self.stop(f"process {self.name!r} could not start every component")
            await self.finish()
            failure = self.first_failure()
            if failure is not None:
                raise failure.to_error()
            return
        for component in self.components.values():  # their init() has run on their workers
            component.status = Status.INIT

    def go(self, settings: Mapping[str, _t.Any]) -> None:
        """Lets every component start stepping."""
        self.coordinator.rooms.go(self.run_id, dict(settings))

    async def step(self) -> None:
        """Every component takes one step by hand (`Process.step()`), at once.

        Raises:
            ComponentError: A component raised (or its worker died); the run has stopped.
        """
        number = self.coordinator.rooms.step(self.run_id)
        while len(self._stepped.get(number, ())) < len(self.components) and not any(
            f.done() for f in self._ends.values()
        ):
            await self._changed.wait()
            self._changed.clear()
        if len(self._stepped.get(number, ())) < len(self.components):
            await self.finish()
            failure = self.first_failure()
            if failure is not None:
                raise failure.to_error()

    # ----- what the Prefect side reads ------------------------------------------------------

    def attach(self, component: str, sink: Callable[[Sequence[LogLine]], None]) -> None:
        """Sends a component's log lines to `sink` from now on, the held ones first."""
        held = self._held_lines.pop(component, [])
        if held:
            sink(held)
        self._sinks[component] = sink

    async def ended(self, component: str) -> ComponentEnd:
        """Waits for a component's end."""
        return await asyncio.shield(self._ends[component])

    def first_failure(self) -> ComponentFailure | None:
        """What the run raises: a worker's death if there was one, else the first failure."""
        crashes = [f for f in self._failures if f.crashed]
        return crashes[0] if crashes else (self._failures[0] if self._failures else None)

    @property
    def finished(self) -> bool:
        """Whether every component has ended."""
        return all(f.done() for f in self._ends.values())

    # ----- stopping -------------------------------------------------------------------------

    def stop(self, reason: str, *, graceful: bool = False) -> None:
        """Stops every component (the first reason is kept).

        Those that do not stop within the grace have their worker killed.
        """
        self.coordinator.rooms.stop(self.run_id, reason, graceful)
        self._stopping(reason, graceful)

    async def finish(self) -> None:
        """Waits until every component has ended (killing those that overstay a stop)."""
        await asyncio.wait(self._ends.values())
        if self._winding_down is not None:
            await self._winding_down

    async def close(self) -> None:
        """Releases the run: its workers' tasks, its placement group, its coordinator room.

        Call it once every component has ended.
        """
        from ray.util.placement_group import remove_placement_group

        # Killed workers and finished ones: a worker whose task ends goes back to Ray's pool.
        if self._refs:
            await asyncio.wait(
                [asyncio.ensure_future(_outcome(ref)) for ref in self._refs],
                timeout=HOST_EXIT_TIMEOUT,
            )
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.coordinator.forget(self.run_id)
        remove_placement_group(self.group)

    def _stopping(self, reason: str, graceful: bool) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.graceful = graceful
        if self._winding_down is None:
            self._winding_down = asyncio.ensure_future(self._wind_down())

    async def _wind_down(self) -> None:
        """Gives the components the grace to stop, then kills the workers of the rest."""
        pending = [f for f in self._ends.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.stop_grace)
        late = sorted(name for name, f in self._ends.items() if not f.done())
        if late:
            why = (
                f"{self.stop_reason}; it did not stop within {self.stop_grace:g} s, "
                "so its worker was killed"
            )
            self._kill({self._host_of[name] for name in late}, why)

    def _kill(self, hosts: set[int], why: str) -> None:
        import ray

        for index in sorted(hosts):
            for name in self.hosts[index].components:
                if self._ends[name].done():
                    continue
                _logger.warning("Component %r: %s", name, why)
                reported = self._reported.get(name)
                if reported is not None:
                    self._settle(name, ComponentEnd(Status.FAILED, f"{reported} ({why})"))
                else:
                    self._settle(name, ComponentEnd(Status.STOPPED, why))
            ray.cancel(self._refs[index], force=True)

    # ----- reports --------------------------------------------------------------------------

    async def _follow(self) -> None:
        """Reads the workers' reports from the run's room, in order, until the run ends."""
        cursor, stop_seen = 0, False
        rooms = self.coordinator.rooms
        while not self.finished:
            updates = await rooms.updates(self.run_id, cursor, stop_seen)
            cursor = updates.cursor
            for report in updates.reports:
                self._take(report)
            if updates.stop_reason is not None and not stop_seen:
                stop_seen = True
                self._stopping(updates.stop_reason, updates.graceful)

    def _take(self, report: Report) -> None:
        if isinstance(report, Lines):
            sink = self._sinks.get(report.component)
            if sink is not None:
                sink(report.lines)
            else:
                self._held_lines.setdefault(report.component, []).extend(report.lines)
        elif isinstance(report, Progress):
            if not self._ends[report.component].done():
                apply_progress(self.components[report.component], report.status, report.stats)
        elif isinstance(report, Failure):
            self._reported.setdefault(report.component, report.error)
            self._fail(report.component, ReportedError(report.error))
        elif isinstance(report, Ended):
            self._ended(report)
        elif isinstance(report, HostReady):
            self._ready.add(report.host)
            self._changed.set()
        elif isinstance(report, Stepped):
            apply_final_state(self.components[report.component], report.state)
            self._stepped.setdefault(report.step, set()).add(report.component)
            self._changed.set()
        elif isinstance(report, HostGone):
            self._host_gone(report.host)
        elif isinstance(report, HostLost):
            self._lost.setdefault(report.host, report.reason)
            self._background.append(asyncio.ensure_future(self._host_lost(report.host)))

    def _ended(self, report: Ended) -> None:
        name = report.component
        if self._ends[name].done():
            return
        apply_final_state(self.components[name], report.final)
        status = Status(report.status)
        if status is Status.FAILED:
            error: BaseException = ReportedError(self._reported.get(name, "failed"))
            if report.error is not None:
                try:
                    error = _unpickle(report.error)
                except Exception as exc:  # noqa: BLE001 - e.g. its class is unknown here
                    _logger.warning("Component %r: its error could not be unpickled: %r", name, exc)
            self._fail(name, error)
            self._settle(name, ComponentEnd(status, str(error), error))
        else:
            self._settle(name, ComponentEnd(status, report.reason))

    def _fail(self, name: str, error: BaseException) -> None:
        """Records a component's failure; its real exception replaces the reported text."""
        kind = type(self.components[name]).__name__
        for index, failure in enumerate(self._failures):
            if failure.component == name:
                if isinstance(failure.exception, ReportedError) and not failure.crashed:
                    self._failures[index] = ComponentFailure(name, kind, error)
                return
        self._failures.append(ComponentFailure(name, kind, error))

    # ----- workers that end or die ----------------------------------------------------------

    async def _watch(self, index: int, ref: _t.Any) -> None:
        """Waits for a worker's task; then tells the follower, after the worker's reports."""
        outcome = await _outcome(ref)
        self._gone[index] = outcome if isinstance(outcome, BaseException) else None
        # What the worker sent before its task ended is read before the word that it ended.
        await self.coordinator.link_ended(self.run_id, index, LINK_END_TIMEOUT)
        self.coordinator.rooms.report(self.run_id, [HostGone(index)])

    async def _host_lost(self, index: int) -> None:
        """A worker's link dropped: it stops its components, and its task should end soon.

        Ray's word on it is waited for (a dead worker says more than a dropped link), but not
        for long: then its components that have not ended are crashed, and its task killed.
        """
        watching = self._watching[index]
        await asyncio.wait([watching], timeout=LOST_GRACE)
        if not watching.done():
            self._host_gone(index)
            import ray

            ray.cancel(self._refs[index], force=True)

    def _host_gone(self, index: int) -> None:
        """A worker's task has ended (or its link is lost): what of it has not ended has crashed."""
        names = [c for c in self.hosts[index].components if not self._ends[c].done()]
        if not names:
            return
        lost = self._lost.get(index)
        outcome = self._gone.get(index)
        error: BaseException
        if outcome is not None and type(outcome).__name__ in _WORKER_DEATHS:
            error, what = outcome, "crashed (its worker died)"
        elif lost is not None:
            error = ConnectionError(f"its worker's link to the driver: {lost}")
            what = "crashed (its worker lost its link to the driver)"
        else:
            error = outcome or RuntimeError(
                "its worker ended without saying how its components ended"
            )
            what = "could not run on its worker"
        for name in names:
            self._crash(name, error, what)

    def _crash(self, name: str, error: BaseException, what: str) -> None:
        component = self.components[name]
        self._failures.append(
            ComponentFailure(name, type(component).__name__, error, crashed=True, what=what)
        )
        component.status = Status.FAILED
        message = f"Component {name!r} {what}: {error}"
        self._settle(name, ComponentEnd(Status.FAILED, message, error, crashed=True))
        self.stop(f"stopped because component {name!r} crashed")

    def _settle(self, name: str, end: ComponentEnd) -> None:
        future = self._ends[name]
        if future.done():
            return
        if not self.components[name].status.is_terminal:
            self.components[name].status = end.status
        future.set_result(end)
        self._changed.set()  # `start` also waits for a component that ends early


def _host_task() -> _t.Any:
    """The Ray remote function of a host (made once per process)."""
    global _HOST_TASK  # one remote function, exported to Ray once
    if _HOST_TASK is None:
        import ray

        from prefect_plugboard.process.ray.host import run_host

        _HOST_TASK = ray.remote(run_host)
    return _HOST_TASK


_HOST_TASK: _t.Any = None


def _where(group: _t.Any) -> tuple[bool, bool]:
    """Whether every bundle of the run's placement group is on one node; and on the driver's.

    A driver connected through Ray Client (`ray://`) is on no node of the cluster.
    """
    import ray
    from ray.util.placement_group import placement_group_table

    try:
        nodes = set(placement_group_table(group)["bundles_to_node_id"].values())
        if len(nodes) != 1:
            return False, False
        if ray.util.client.ray.is_connected():
            return True, False
        return True, nodes == {ray.get_runtime_context().get_node_id()}
    except Exception as exc:  # noqa: BLE001 - then the node's own address serves as well
        _logger.debug("Could not tell where the run's workers are: %r", exc)
        return False, False


async def _outcome(ref: _t.Any) -> _t.Any:
    """What a worker's task returned, or the exception if it raised or its worker died."""
    try:
        return await ref
    except Exception as exc:  # noqa: BLE001 - a Ray error means the task or its worker is gone
        return exc


def _unpickle(data: bytes) -> BaseException:
    from ray import cloudpickle

    error = cloudpickle.loads(data)
    if not isinstance(error, BaseException):
        msg = f"expected an exception, got {type(error).__name__}"
        raise TypeError(msg)
    return error


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
