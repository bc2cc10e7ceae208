"""`RayProcess`: every component a Prefect task run on a Ray worker, placed by its resources."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
import logging
import typing as _t
import uuid

from prefect.client.schemas.objects import State, TaskRunResult
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Cancelled, Completed, Crashed, Failed

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.connector.ray_connector import RayConnector
from prefect_plugboard.exceptions import Issue
from prefect_plugboard.process.links import Links
from prefect_plugboard.process.process import ConnectorFactory, Process
from prefect_plugboard.process.ray_cluster import (
    RayConnection,
    check_resources,
    pickle_user_modules,
    reserve,
)
from prefect_plugboard.process.ray_coordinator import RunCoordinator
from prefect_plugboard.process.ray_worker import apply_final_state, apply_progress, run_on_worker
from prefect_plugboard.process.supervision import ComponentFailure, ReportedError
from prefect_plugboard.process.tasks import (
    component_tags,
    component_task,
    end_task_run,
    prepare_tag_concurrency,
)
from prefect_plugboard.process.wiring import WorkerPlan, plan_wiring
from prefect_plugboard.schemas.connector import ConnectorSpec
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect import Task
    from prefect.task_runners import TaskRunner


__all__ = ["RayProcess"]

_logger = logging.getLogger(__name__)
_T = _t.TypeVar("_T")

PLACEMENT_TIMEOUT = 30.0
"""Default deadline (s) for placing every component on the cluster at once."""
STOP_GRACE = 10.0
"""Default time (s) the components of a stopping run may take to end before they are killed."""
REPORT_GRACE = 15.0
"""Time (s) a worker whose component has ended may take to report to Prefect before it is killed."""
COORDINATOR_TIMEOUT = 10.0
"""Deadline (s) for a call to a run's coordinator while the run ends."""


class RayProcess(Process):
    """Runs every component as a Prefect task run on a Ray worker, placed by its `Resource`.

    One flow run, whose task runner is prefect-ray's `RayTaskRunner` (a subclass that never
    loses a task's last logs). Each component is submitted with its `resources` as Ray
    options, all of them reserved at once in a placement group, so a graph that cannot run is
    refused in seconds instead of waiting forever. Components stream messages to each other
    directly (`RayConnector`); the first failure anywhere stops the rest at once.

    Ray is started on demand, or joined: `ray_address`, else `RAY_ADDRESS`, else Ray already
    initialised in this process; without any of them a local instance is started, and shut
    down again by `destroy()`. Inside a `@flow` that uses a `RayTaskRunner`, the components
    run on that runner's cluster.

    After the run the component objects hold what the workers ended with: `status`, field
    values, `exports` and `run_stats`.

    Example:
        ```python
        process = RayProcess(
            components=[Iterator(name="input", iters=20), Sleep(name="slow", sleep_seconds=1)],
            connectors=[RayConnector(spec=ConnectorSpec(source="input.x", target="slow.x"))],
        )
        async with process:
            await process.run()
        ```

    Args:
        components: The components. Names must be unique.
        connectors: The connections between them (`RayConnector`s).
        name: A name for the process; it also names the Prefect flow.
        parameters: Parameters shared by every component.
        connector_builder: Builds connectors from specs (a `ConnectorBuilder` or a channel
            block); by default `RayConnector`s.
        ray_address: The Ray cluster to join (`"auto"`, `"host:port"`, `"ray://..."`).
        ray_init_kwargs: Extra keyword arguments for `ray.init`.
        placement_timeout: Deadline (s) for placing every component at once.
        stop_grace: How long (s) the components of a stopping run (a failure, a stop, a
            cancellation) may take to end before their workers are killed. A worker whose
            component has ended gets `REPORT_GRACE` more seconds to report to Prefect.
    """

    flow_name_default: _t.ClassVar[str] = "plugboard-ray-process"
    default_connector: _t.ClassVar[type[Connector]] = RayConnector

    def __init__(
        self,
        components: Iterable[Component],
        connectors: Iterable[Connector | ConnectorSpec | Mapping[str, _t.Any]],
        name: str | None = None,
        parameters: Mapping[str, _t.Any] | None = None,
        *,
        connector_builder: ConnectorFactory | None = None,
        ray_address: str | None = None,
        ray_init_kwargs: Mapping[str, _t.Any] | None = None,
        placement_timeout: float = PLACEMENT_TIMEOUT,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        super().__init__(
            components,
            connectors,
            name=name,
            parameters=parameters,
            connector_builder=connector_builder,
        )
        self.ray_address = ray_address
        self.ray_init_kwargs = dict(ray_init_kwargs or {})
        self.placement_timeout = placement_timeout
        self.stop_grace = stop_grace
        self._ray = RayConnection(ray_address, ray_init_kwargs)
        self._coordinator: _t.Any = None
        self._tasks: dict[str, Task[..., _t.Any]] = {}

    def _check_connectors(self) -> list[Issue]:
        return [
            Issue(
                f"{type(c).__name__} {c.spec} only works within one event loop; a RayProcess "
                "needs RayConnector (or ConnectorBuilder(RayConnector))",
                f"connectors[{i}]",
            )
            for i, c in enumerate(self._connector_list)
            if isinstance(c, Connector) and c.transport == "asyncio"
        ]

    async def _prepare(self) -> None:
        import ray

        self._plans = plan_wiring(self.components, self.connectors.values())
        self._api_url = await api_url_for_workers()
        # Workers of a Ray started here learn the API's address from their environment; on a
        # cluster started elsewhere, from the Prefect settings each task run carries.
        self._ray.ensure()
        try:
            check_resources(list(self.components.values()))
            # Started now, its worker comes up while the flow run is being created.
            self._coordinator = (
                ray.remote(RunCoordinator)
                .options(name=f"plugboard-{self.name}-{uuid.uuid4().hex[:8]}", num_cpus=0)
                .remote()
            )
        except BaseException:
            self._ray.release()
            raise

    async def run(self) -> None:
        """Runs every component on Ray until all have finished; one Prefect flow run.

        Raises:
            ValidationError: The graph is invalid (nothing was started).
            ResourceError: The cluster cannot run the whole graph at once.
            ComponentError: A component raised (`ComponentCrashedError`: its worker died).
        """
        if self.status is Status.CREATED:
            await self.init()
        with temporary_settings({PREFECT_API_URL: self._api_url}):
            await super().run()

    def _task_runner(self) -> TaskRunner[_t.Any]:
        from prefect_plugboard.process.ray_task_runner import PlugboardRayTaskRunner

        return PlugboardRayTaskRunner(address=self.ray_address, init_kwargs=self.ray_init_kwargs)

    def _stop(self, reason: str) -> None:
        if self._coordinator is not None:
            self._coordinator.stop.remote(reason, True)

    async def _release(self) -> None:
        coordinator = self._coordinator
        if coordinator is not None:
            import ray

            if ray.is_initialized():
                ray.kill(coordinator)
            self._coordinator = None
        self._ray.release()

    async def _run_components(self) -> None:
        from prefect_plugboard.process.ray_task_runner import PlugboardRayTaskRunner

        context = FlowRunContext.get()
        runner = context.task_runner if context is not None else None
        own_runner = None
        if not isinstance(runner, PlugboardRayTaskRunner):
            # A runner of ours on the flow's cluster (Ray is up already): it is the one that
            # hands every log line and state of the workers to Prefect.
            own_runner = runner = self._task_runner()
            own_runner.__enter__()
        try:
            await self._run_on(runner)
        finally:
            if own_runner is not None:
                own_runner.__exit__(None, None, None)

    async def _run_on(self, runner: _t.Any) -> None:
        from prefect_ray.context import remote_options
        import ray
        from ray.util.placement_group import remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        links = Links(self.components, self.connectors.values())
        components = [self.components[name] for name in links.upstream_first()]
        upstream = links.upstream_of()
        limited = await prepare_tag_concurrency(components)
        pickle_user_modules(components)
        group = await _reserve(components, self.placement_timeout)
        coordinator = self._coordinator
        futures: dict[str, _t.Any] = {}
        self._tasks.clear()
        try:
            try:
                for index, component in enumerate(components):
                    task = component_task(
                        component,
                        _worker_body(
                            component, self._plans[component.name], coordinator, self.name
                        ),
                    )
                    self._tasks[component.name] = task
                    if not {f"tag:{t}" for t in component_tags(component)} & limited:
                        task._plugboard_skip_tag_leases = True  # type: ignore[attr-defined]
                    options = {
                        **component.resources.to_ray_options(),
                        "max_retries": 0,
                        "scheduling_strategy": PlacementGroupSchedulingStrategy(group, index),
                    }
                    drawn = {
                        TaskRunResult(id=futures[u].task_run_id) for u in upstream[component.name]
                    }
                    with remote_options(**options):
                        futures[component.name] = runner.submit(
                            task,
                            parameters={"upstream": None},
                            dependencies={"upstream": drawn} if drawn else None,
                        )
            except BaseException:
                reason = f"process {self.name!r} could not start every component"
                await _ask(coordinator.stop, reason, default=None)

                async def end(name: str, outcome: _t.Any) -> None:
                    await self._failure_of(name, outcome, futures, coordinator)

                await self._let_end(futures, set(), coordinator, reason, end, self.stop_grace)
                raise
            following = asyncio.ensure_future(self._follow_progress(coordinator))
            try:
                await self._supervise(futures, coordinator)
            finally:
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
            asked: str | None = await _ask(coordinator.graceful_stop, default=None)
            if asked is not None and self.stop_reason is None:
                self.stop_reason = asked
        finally:
            try:
                finals = await coordinator.finals.remote()
                for name, state in finals.items():
                    apply_final_state(self.components[name], state)
            except Exception:  # noqa: BLE001 - the run's own error matters more
                _logger.warning("Could not copy the components' final states back", exc_info=True)
            finally:
                ray.kill(coordinator)
                self._coordinator = None
                remove_placement_group(group)

    async def _follow_progress(self, coordinator: _t.Any) -> None:
        """Keeps the driver's components' status and figures current while the run lasts."""
        version = 0
        while True:
            latest, reports = await coordinator.progress_after.remote(version)
            for name, progress in reports.items():
                apply_progress(self.components[name], progress)
            if latest == version:  # the run is stopping: no more reports will come
                return
            version = latest

    async def _supervise(self, futures: Mapping[str, _t.Any], coordinator: _t.Any) -> None:
        """Waits for every component; the first failure stops the rest and is raised.

        Once the run is stopping (a failure, a stop, a cancellation), the components still
        running are let end as `_let_end` says.
        """
        failures: list[ComponentFailure] = []
        settled: set[str] = set()  # ended, or killed

        async def look_at(name: str, outcome: _t.Any) -> None:
            # Every end is looked at (a crashed worker's task run must be ended).
            settled.add(name)
            failure = await self._failure_of(name, outcome, futures, coordinator)
            if failure is not None:
                failures.append(failure)

        waiting = {
            asyncio.ensure_future(_outcome(f.wrapped_future)): name for name, f in futures.items()
        }
        stopping = asyncio.ensure_future(_stop_reason(coordinator))
        killed: set[str] = set()
        try:
            while waiting and not stopping.done():
                done, _ = await asyncio.wait(
                    [*waiting, stopping], return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in done - {stopping}:
                    await look_at(waiting.pop(waiter), waiter.result())
            if waiting:
                killed = await self._let_end(
                    futures, settled, coordinator, stopping.result(), look_at, self.stop_grace
                )
        except BaseException:
            reason = f"process {self.name!r} was cancelled"
            await _ask(coordinator.stop, reason, default=None)
            # Cancelled while already letting components end: they have had their grace.
            grace = 0.0 if stopping.done() else self.stop_grace
            await self._let_end(futures, settled, coordinator, reason, look_at, grace)
            raise
        finally:
            stopping.cancel()
            for waiter in waiting:
                waiter.cancel()
        first = await self._first_failure(coordinator, failures, killed)
        if first is not None:
            raise first.to_error()

    async def _failure_of(
        self, name: str, outcome: _t.Any, futures: Mapping[str, _t.Any], coordinator: _t.Any
    ) -> ComponentFailure | None:
        """What a component's end means for the run: a failure (others are told), or not."""
        kind = type(self.components[name]).__name__
        if isinstance(outcome, BaseException):
            await _ask(
                coordinator.stop, f"stopped because component {name!r} crashed", default=None
            )
            message = f"Component {name!r} stopped running on Ray: {outcome}"
            await self._end_task_run(futures[name].task_run_id, name, Crashed(message=message))
            return ComponentFailure(name, kind, outcome, crashed=True)
        if outcome.is_failed() or outcome.is_crashed():
            await _ask(coordinator.stop, f"stopped because component {name!r} failed", default=None)
            error = await outcome.aresult(raise_on_failure=False)
            if not isinstance(error, BaseException):
                error = RuntimeError(outcome.message or "failed")
            return ComponentFailure(name, kind, error, crashed=outcome.is_crashed())
        return None

    async def _first_failure(
        self, coordinator: _t.Any, seen: list[ComponentFailure], killed: set[str]
    ) -> ComponentFailure | None:
        """The failure the run raises.

        A worker that died is the root cause when there is one. Otherwise it is the component
        the coordinator heard fail first, with its own exception if its task run handed it
        back, or the error it reported if its worker had to be killed first.
        """
        crashes = [f for f in seen if f.crashed]
        if crashes:
            return crashes[0]
        if not seen and not killed:
            return None
        reported: tuple[str, str] | None = await _ask(coordinator.failure, default=None)
        if reported is not None:
            name, error = reported
            for failure in seen:
                if failure.component == name:
                    return failure
            if name in killed:
                kind = type(self.components[name]).__name__
                return ComponentFailure(name, kind, ReportedError(error))
        return seen[0] if seen else None

    async def _let_end(
        self,
        futures: Mapping[str, _t.Any],
        settled: set[str],
        coordinator: _t.Any,
        reason: str,
        on_end: _t.Callable[[str, _t.Any], _t.Awaitable[None]],
        grace: float,
    ) -> set[str]:
        """Lets the components of a stopping run end; kills the workers of those that do not.

        A component has `grace` seconds to end its own code. Its worker then has
        `REPORT_GRACE` more seconds to hand the task run's final state to Prefect (on a busy
        machine that takes a while, and killing it then would lose a failure). A killed
        worker's task run is ended from here, in the state its component ended in (see
        `_kill`).

        Args:
            futures: Every component's Prefect future.
            settled: The components already seen to end or killed; updated here.
            coordinator: The run's `RunCoordinator`.
            reason: Why the run stops, for the task runs' messages.
            on_end: Called with each component that ends and its outcome.
            grace: How long components may take to end their own code.

        Returns:
            The components whose workers were killed.
        """
        waiters = {
            asyncio.ensure_future(_outcome(f.wrapped_future)): name
            for name, f in futures.items()
            if name not in settled
        }
        loop = asyncio.get_running_loop()
        killed: set[str] = set()
        ended: dict[str, str] = {}  # asked once the grace is over; the second phase reuses it
        try:
            for phase, limit in enumerate((grace, REPORT_GRACE)):
                deadline = loop.time() + limit
                while waiters:
                    done, _ = await asyncio.wait(
                        waiters,
                        timeout=max(0.0, deadline - loop.time()),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if not done:
                        break
                    for waiter in done:
                        await on_end(waiters.pop(waiter), waiter.result())
                late = set(waiters.values())
                if not late:
                    break
                if phase == 0:
                    ended = await _ask(coordinator.ended, default={})
                    late -= set(ended)
                    why = f"{reason}; it did not stop within {limit:g} s, so its worker was killed"
                else:
                    why = (
                        f"{reason}; it ended, but its worker did not report to Prefect within "
                        f"{limit:g} s, so it was killed"
                    )
                await self._kill(futures, late, settled, coordinator, ended, why)
                killed |= late
                waiters = {w: n for w, n in waiters.items() if n not in late}
        finally:
            for waiter in waiters:
                waiter.cancel()
        return killed

    async def _kill(
        self,
        futures: Mapping[str, _t.Any],
        names: set[str],
        settled: set[str],
        coordinator: _t.Any,
        ended: Mapping[str, str],
        why: str,
    ) -> None:
        """Kills the workers of `names` and ends their task runs.

        A task run ends `Failed` if its component failed, `Completed` if it completed (only
        its worker's report was late), else `Cancelled`; the message says why it was killed.
        `ended` is the coordinator's `ended()`.
        """
        import ray

        reported: tuple[str, str] | None = None
        if any(ended.get(name) == Status.FAILED for name in names):
            reported = await _ask(coordinator.failure, default=None)
        for name in sorted(names):
            _logger.warning("Component %r: %s", name, why)
            ray.cancel(futures[name].wrapped_future, force=True)
            settled.add(name)
            state: State
            if ended.get(name) == Status.FAILED:
                error = reported[1] if reported is not None and reported[0] == name else None
                state = Failed(message=f"{error} ({why})" if error else why)
            elif ended.get(name) == Status.COMPLETED:
                state = Completed(message=why)
            else:
                state = Cancelled(message=why)
            # Shielded: a cancellation arriving now must not leave the task run Running.
            await asyncio.shield(self._end_task_run(futures[name].task_run_id, name, state))

    async def _end_task_run(self, task_run_id: uuid.UUID, name: str, state: State) -> None:
        """Ends the task run of a component whose worker is gone (it cannot say so itself)."""
        try:
            await end_task_run(self._tasks[name], self.flow_run_id, task_run_id, state)
        except Exception as exc:  # noqa: BLE001 - best effort; the run's outcome is raised anyway
            _logger.warning("Could not end the task run of %r as %s: %s", name, state.name, exc)


def _worker_body(
    component: Component, plan: WorkerPlan, coordinator: _t.Any, process_name: str
) -> _t.Callable[[], _t.Awaitable[_t.Any]]:
    # A module-level factory, so the task function pickles without the process object.
    # `upstream` is where Prefect records the links it draws in the run graph.
    async def run_component(upstream: _t.Any = None) -> _t.Any:
        return await run_on_worker(component, plan, coordinator, process_name)

    return run_component


async def _outcome(ref: _t.Any) -> _t.Any:
    """The task run's final `State`, or the exception if its worker died."""
    try:
        return await ref
    except Exception as exc:  # noqa: BLE001 - a Ray error means the worker is gone
        return exc


async def _ask(method: _t.Any, *args: _t.Any, default: _T) -> _T:
    """Calls a coordinator method; `default` if the coordinator is gone (its node died)."""
    try:
        return _t.cast(_T, await asyncio.wait_for(method.remote(*args), COORDINATOR_TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - the run is ending anyway; decide without it
        _logger.warning("Could not reach the run's coordinator: %r", exc)
        return default


async def _stop_reason(coordinator: _t.Any) -> str:
    """Returns why the run stops, once it does (a failure, a stop, a cancellation)."""
    try:
        return _t.cast(str, await coordinator.wait_stop.remote())
    except Exception as exc:  # noqa: BLE001 - without a coordinator the run cannot go on
        return f"the run's coordinator is gone ({type(exc).__name__})"


async def _reserve(components: list[Component], timeout: float) -> _t.Any:
    """Reserves the components' placement group; never leaks it if the caller is cancelled."""
    from ray.util.placement_group import remove_placement_group

    reserving = asyncio.ensure_future(asyncio.to_thread(reserve, components, timeout))
    try:
        return await asyncio.shield(reserving)
    except asyncio.CancelledError:

        def release(done: asyncio.Future[_t.Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                remove_placement_group(done.result())

        reserving.add_done_callback(release)
        raise


async def api_url_for_workers() -> str:
    """The Prefect API URL to hand to workers: the configured one, or the ephemeral server's.

    Without `PREFECT_API_URL`, Prefect runs a temporary server for this process; workers told
    nothing would each start their own (design §4), so its URL is made explicit.
    """
    configured = PREFECT_API_URL.value()
    if configured:
        return str(configured)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    await asyncio.to_thread(server.start)
    return str(server.api_url)
