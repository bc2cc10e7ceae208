"""`RayProcess`: every component a Prefect task run, its work on a Ray worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
import functools
import logging
import typing as _t
import uuid

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.connector.ray_connector import RayConnector
from prefect_plugboard.process.links import Links
from prefect_plugboard.process.process import ConnectorFactory, Process
from prefect_plugboard.process.ray.cluster import (
    RayConnection,
    check_resources,
    pickle_user_modules,
    reserve,
)
from prefect_plugboard.process.ray.coordinator_server import driver_coordinator
from prefect_plugboard.process.ray.placement import HostPlan, WorkerSharing, plan_hosts
from prefect_plugboard.process.ray.run import ComponentEnd, RayRun
from prefect_plugboard.process.supervision import ReportedError
from prefect_plugboard.process.tasks import (
    component_task,
    prepare_tag_concurrency,
    write_log_lines,
)
from prefect_plugboard.process.wiring import plan_wiring
from prefect_plugboard.schemas.connector import ConnectorSpec
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect import Task


__all__ = ["PLACEMENT_TIMEOUT", "STOP_GRACE", "RayProcess"]

_logger = logging.getLogger(__name__)

PLACEMENT_TIMEOUT = 30.0
"""Default deadline (s) for placing every component on the cluster at once."""
STOP_GRACE = 10.0
"""Default time (s) the components of a stopping run may take to end before they are killed."""


class RayProcess(Process):
    """Runs every component as a Prefect task run whose work is done on a Ray worker.

    Prefect stays on the driver: the driver creates, updates and ends every component's task
    run and writes its log lines (with the worker's timestamps); the workers run the
    components and nothing of Prefect, so they need neither the Prefect API nor its
    credentials. Each component is placed by its `resources` (Ray's `num_cpus`, `num_gpus`,
    `memory`, `resources`), all of them reserved at once in a placement group, so a graph
    that cannot run is refused in seconds instead of waiting forever. Components stream
    messages to each other directly (`RayConnector`); the first failure anywhere stops the
    rest at once.

    Components that ask for less than a whole CPU (and no GPU or custom resource) share a
    worker process, each in a thread of its own (see `worker_sharing`).

    `init()` (or `async with`) starts Ray if needed, places the components, starts their
    workers and runs every component's `init()`; `run()` then starts stepping at once.
    Ray is started on demand, or joined: `ray_address`, else `RAY_ADDRESS`, else Ray already
    initialised in this process (e.g. by a `@flow(task_runner=RayTaskRunner(...))`);
    without any of them a local instance is started, and shut down again by `destroy()`.

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
            cancellation) may take to end before their workers are killed.
        worker_sharing: How components share worker processes. `"small"` (the default):
            components asking for less than a CPU (and no GPU or custom resource) share,
            up to one CPU's worth per process, each in a thread of its own; they start in a
            fraction of the time, blocking calls still overlap, pure-Python computation takes
            turns. `"none"`: every component gets a worker process of its own. `"all"`: every
            component runs in one worker process, which asks for what they ask together.
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
        worker_sharing: WorkerSharing = "small",
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
        if worker_sharing not in _t.get_args(WorkerSharing):
            msg = (
                f"worker_sharing of process {self.name!r} must be one of "
                f"{', '.join(_t.get_args(WorkerSharing))}, got {worker_sharing!r}"
            )
            raise ValueError(msg)
        self.worker_sharing: WorkerSharing = worker_sharing
        self._ray = RayConnection(ray_address, ray_init_kwargs)
        self._run: RayRun | None = None

    @property
    def hosts(self) -> list[HostPlan]:
        """The worker processes of the run and the components each runs (after `init()`)."""
        return list(self._run.hosts) if self._run is not None else []

    @classmethod
    def connector_issue(cls, connector_cls: type[Connector]) -> str | None:
        """An asyncio connector's channels cannot leave one event loop, so not one worker."""
        if connector_cls.transport != "asyncio":
            return None
        return (
            f"{connector_cls.__name__} only works within one event loop; a {cls.__name__} "
            "needs a Ray channel: RayConnector (in YAML plugboard.connector.RayConnector or a "
            "plugboard-ray-channel block), or run the model on a LocalProcess"
        )

    async def _prepare(self) -> None:
        # Prefect's temporary server (where no API is set) starts while a new Ray does.
        from prefect_plugboard.process.temporary_api import temporary_api_starting_async

        async with temporary_api_starting_async(enabled=self._ray.starts_local_instance):
            self._ray.ensure()
            try:
                await self._start_run()
            except BaseException:
                await self._release()
                raise

    async def _start_run(self) -> None:
        order = Links(self.components, self.connectors.values()).upstream_first()
        components = [self.components[name] for name in order]
        check_resources(components)
        hosts = plan_hosts(components, self.worker_sharing)
        pickle_user_modules(components)
        group = await _reserve(
            [h.resources.to_bundle() for h in hosts], len(components), self.placement_timeout
        )
        self._run = RayRun(
            name=self.name,
            components=self.components,
            hosts=hosts,
            plans=plan_wiring(self.components, self.connectors.values()),
            coordinator=driver_coordinator(),
            group=group,
            stop_grace=self.stop_grace,
            log_level=logging.getLogger("prefect.task_runs").getEffectiveLevel(),
        )
        await self._run.start()

    async def _step_components(self) -> None:
        if self._run is None:  # pragma: no cover - `step()` checks the process is initialised
            msg = f"process {self.name!r} is not initialised"
            raise RuntimeError(msg)
        await self._run.step()

    def _stop(self, reason: str) -> None:
        if self._run is not None:
            self._run.stop(reason, graceful=True)

    async def _release(self) -> None:
        run, self._run = self._run, None
        try:
            if run is not None:
                if not run.finished:  # initialised, never run: the components' destroy() runs
                    run.stop(f"process {self.name!r} was destroyed before it ran", graceful=True)
                await asyncio.shield(_end(run))
                self._settle_components()
        finally:
            self._ray.release()

    async def _run_components(self) -> None:
        run = self._run
        if run is None:  # pragma: no cover - `run()` initialises first
            msg = f"process {self.name!r} is not initialised"
            raise RuntimeError(msg)
        try:
            await self._run_as_task_runs(run)
        finally:
            self._run = None
            await asyncio.shield(_end(run))
        if run.graceful and self.stop_reason is None:
            self.stop_reason = run.stop_reason
        failure = run.first_failure()
        if failure is not None:
            raise failure.to_error()

    async def _run_as_task_runs(self, run: RayRun) -> None:
        """One task run per component on this flow run; the components start together."""
        from prefect.client.schemas.objects import RunInput, TaskRunResult
        from prefect.task_engine import run_task_async

        if self.stop_reason is not None:  # stopped while the flow run was being created
            run.stop(self.stop_reason, graceful=True)
        await prepare_tag_concurrency(self.components.values())
        ids = {name: uuid.uuid4() for name in self.components}
        upstream = Links(self.components, self.connectors.values()).upstream_of()
        # The start goes out before the task-run engines are made: their first steps hold the
        # loop (0.1 s for five in a driver's first run, most of a second for fifty), and the
        # workers need nothing from them (the driver holds each component's log lines until
        # its task run takes them).
        run.go({"log_prints": _log_prints()})
        engines = []
        try:
            for name, component in self.components.items():
                drawn: set[RunInput] = {TaskRunResult(id=ids[u]) for u in upstream[name]}
                engines.append(
                    asyncio.ensure_future(
                        run_task_async(
                            _t.cast(
                                "Task[..., _t.Any]",
                                component_task(component, functools.partial(_follow, run, name)),
                            ),
                            task_run_id=ids[name],
                            parameters={"upstream": None},
                            dependencies={"upstream": drawn} if drawn else None,
                            return_type="state",
                        )
                    )
                )
            await asyncio.wait(engines)
        except BaseException:
            run.stop(f"process {self.name!r} was cancelled")
            if engines:
                await asyncio.shield(asyncio.wait(engines))
            raise


async def _follow(run: RayRun, name: str, upstream: _t.Any = None) -> _t.Any:
    """The body of a component's task run: its log lines as they come, then its end.

    `upstream` carries nothing: Prefect draws the links between components from it.
    """
    from prefect.logging import get_run_logger

    logger = get_run_logger()
    run.attach(name, functools.partial(write_log_lines, logger))
    try:
        end = await run.ended(name)
    except asyncio.CancelledError:
        # The task run itself is being torn down: stop the run, and end it like the others.
        run.stop(f"component {name!r} was cancelled")
        end = await run.ended(name)
    return _state_of(end)


def _state_of(end: ComponentEnd) -> _t.Any:
    """The task run's end: a `State`, or the component's exception to fail it with."""
    from prefect.states import Cancelled, Crashed, Failed

    if end.crashed:
        return Crashed(message=end.message)
    if end.status is Status.FAILED:
        if end.error is not None and not isinstance(end.error, ReportedError):
            raise end.error
        return Failed(message=end.message)
    if end.status is Status.STOPPED:
        return Cancelled(message=end.message or "stopped")
    return None


def _log_prints() -> bool:
    """Whether prints become log lines in this flow run (its `log_prints`, else the setting)."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_LOGGING_LOG_PRINTS

    context = FlowRunContext.get()
    if context is not None and context.flow is not None and context.flow.log_prints is not None:
        return bool(context.flow.log_prints)
    return bool(PREFECT_LOGGING_LOG_PRINTS.value())


async def _end(run: RayRun) -> None:
    """Waits for every component of a run to end, then releases the run."""
    try:
        await run.finish()
    finally:
        await run.close()


async def _reserve(
    bundles: Sequence[Mapping[str, float]], components: int, timeout: float
) -> _t.Any:
    """Reserves the run's placement group; never leaks it if the caller is cancelled."""
    from ray.util.placement_group import remove_placement_group

    reserving = asyncio.ensure_future(asyncio.to_thread(reserve, bundles, components, timeout))
    try:
        return await asyncio.shield(reserving)
    except asyncio.CancelledError:

        def release(done: asyncio.Future[_t.Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                remove_placement_group(done.result())

        reserving.add_done_callback(release)
        raise
