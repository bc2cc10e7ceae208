"""`RayProcess`: every component a Prefect task run on a Ray worker, placed by its resources."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
import logging
import typing as _t
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRunResult
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Crashed

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.channel import DEFAULT_MAXSIZE
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.connector.ray_connector import DEFAULT_BATCH_SIZE, RayConnector
from prefect_plugboard.exceptions import Issue
from prefect_plugboard.process.event_routes import EventRoutes
from prefect_plugboard.process.links import Links
from prefect_plugboard.process.process import ConnectorFactory, Process
from prefect_plugboard.process.ray_cluster import (
    RayConnection,
    check_resources,
    pickle_user_modules,
    reserve,
)
from prefect_plugboard.process.ray_coordinator import RunCoordinator
from prefect_plugboard.process.ray_worker import (
    InputPlan,
    OutputTarget,
    WorkerPlan,
    apply_final_state,
    apply_progress,
    run_on_worker,
)
from prefect_plugboard.process.supervision import ComponentFailure
from prefect_plugboard.process.tasks import component_tags, component_task, prepare_tag_concurrency
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSpec
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect.task_runners import TaskRunner


__all__ = ["RayProcess"]

_logger = logging.getLogger(__name__)

PLACEMENT_TIMEOUT = 30.0
"""Default deadline (s) for placing every component on the cluster at once."""
STOP_GRACE = 10.0
"""How long (s) stopped components may take to end before their workers are killed."""


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
        self._ray = RayConnection(ray_address, ray_init_kwargs)
        self._coordinator: _t.Any = None

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

        self._plans = _plan(self.components, self.connectors.values())
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
        coordinator = getattr(self, "_coordinator", None)
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
        group = await asyncio.to_thread(reserve, components, self.placement_timeout)
        coordinator = self._coordinator
        futures: dict[str, _t.Any] = {}
        try:
            for index, component in enumerate(components):
                task = component_task(
                    component,
                    _worker_body(component, self._plans[component.name], coordinator, self.name),
                )
                if not {f"tag:{t}" for t in component_tags(component)} & limited:
                    task._plugboard_skip_tag_leases = True  # type: ignore[attr-defined]
                options = {
                    **component.resources.to_ray_options(),
                    "max_retries": 0,
                    "scheduling_strategy": PlacementGroupSchedulingStrategy(group, index),
                }
                drawn = {TaskRunResult(id=futures[u].task_run_id) for u in upstream[component.name]}
                with remote_options(**options):
                    futures[component.name] = runner.submit(
                        task,
                        parameters={"upstream": None},
                        dependencies={"upstream": drawn} if drawn else None,
                    )
            following = asyncio.ensure_future(self._follow_progress(coordinator))
            try:
                await self._supervise(futures, coordinator)
            finally:
                following.cancel()
            reason = await coordinator.graceful_stop.remote()
            if reason is not None and self.stop_reason is None:
                self.stop_reason = reason
        finally:
            try:
                finals = await coordinator.finals.remote()
                for name, state in finals.items():
                    apply_final_state(self.components[name], state)
            except Exception:  # noqa: BLE001 - the run's own error matters more
                _logger.warning("Could not copy the components' final states back", exc_info=True)
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
        import ray

        waiters = {
            asyncio.ensure_future(_outcome(future.wrapped_future)): name
            for name, future in futures.items()
        }
        pending = set(waiters)
        failure: ComponentFailure | None = None
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for waiter in done:
                    name = waiters[waiter]
                    kind = type(self.components[name]).__name__
                    outcome = waiter.result()
                    if isinstance(outcome, BaseException):
                        await coordinator.stop.remote(f"stopped because component {name!r} crashed")
                        failure = failure or ComponentFailure(name, kind, outcome, crashed=True)
                        await _mark_crashed(futures[name].task_run_id, name, outcome)
                    elif outcome.is_failed() or outcome.is_crashed():
                        await coordinator.stop.remote(f"stopped because component {name!r} failed")
                        if failure is None:
                            error = await outcome.aresult(raise_on_failure=False)
                            if not isinstance(error, BaseException):
                                error = RuntimeError(outcome.message or "failed")
                            failure = ComponentFailure(
                                name, kind, error, crashed=outcome.is_crashed()
                            )
        except BaseException:
            await coordinator.stop.remote(f"process {self.name!r} was cancelled")
            if pending:
                _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
                for waiter in late:
                    ray.cancel(futures[waiters[waiter]].wrapped_future, force=True)
            raise
        if failure is not None:
            raise failure.to_error()


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


async def _mark_crashed(task_run_id: uuid.UUID, name: str, error: BaseException) -> None:
    """Ends a task run whose worker died (its engine can no longer say so itself)."""
    try:
        async with get_client() as client:
            await client.set_task_run_state(
                task_run_id,
                Crashed(message=f"Component {name!r} stopped running on Ray: {error}"),
                force=True,
            )
    except Exception as exc:  # noqa: BLE001 - best effort; the run's error is raised anyway
        # A 404: the task never got as far as creating its task run (e.g. its arguments could
        # not be rebuilt on the worker), so there is nothing left Running to end.
        _logger.debug("Task run of %r not marked crashed: %s", name, exc)


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


def _plan(
    components: Mapping[str, Component], connectors: Iterable[Connector]
) -> dict[str, WorkerPlan]:
    into: defaultdict[tuple[str, str], list[Connector]] = defaultdict(list)
    out: defaultdict[tuple[str, str], list[OutputTarget]] = defaultdict(list)
    for connector in connectors:
        spec = connector.spec
        if spec.mode is not ConnectorMode.PIPELINE:
            continue
        into[(spec.target.entity, spec.target.descriptor)].append(connector)
        out[(spec.source.entity, spec.source.descriptor)].append(
            OutputTarget(
                connector=connector.id,
                component=spec.target.entity,
                field=spec.target.descriptor,
                batch_size=getattr(connector, "batch_size", DEFAULT_BATCH_SIZE),
            )
        )
    routes = EventRoutes.of(components.values())
    plans = {}
    for name, component in components.items():
        inputs = {}
        for field in component.io.inputs:
            sizes = [c.maxsize for c in into[(name, field)]]
            if sizes:  # an input no connector feeds is populated by an event handler
                inputs[field] = InputPlan(0 if 0 in sizes else max(sizes), len(sizes))
        outputs = {f: tuple(out[(name, f)]) for f in component.io.outputs if out[(name, f)]}
        events_in = (
            InputPlan(DEFAULT_MAXSIZE, len(routes.feeds(name)))
            if component.io.input_events
            else None
        )
        event_targets = {t: tuple(s) for t, s in routes.targets(name).items() if s}
        plans[name] = WorkerPlan(inputs, outputs, events_in, event_targets)
    return plans
