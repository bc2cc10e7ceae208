"""`LocalProcess`: every component on one asyncio event loop, one Prefect task run each."""

from __future__ import annotations

from collections import defaultdict
import typing as _t
import uuid

from prefect.client.schemas.objects import RunInput, TaskRunResult
from prefect.task_engine import run_task_async

from prefect_plugboard.component.runner import ComponentRunner, EventWiring
from prefect_plugboard.connector.asyncio_connector import AsyncioConnector
from prefect_plugboard.connector.channel import DEFAULT_MAXSIZE, Inbox, LocalSender, Sender
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.process.event_routes import EVENTS_FIELD, EventRoutes
from prefect_plugboard.process.links import Links
from prefect_plugboard.process.process import Process
from prefect_plugboard.process.supervision import Supervisor
from prefect_plugboard.process.tasks import (
    component_task,
    prepare_tag_concurrency,
    run_with_task_logger,
)
from prefect_plugboard.schemas.connector import ConnectorMode


__all__ = ["LocalProcess"]


class LocalProcess(Process):
    """Runs every component on the caller's event loop, each as a Prefect task run.

    Messages move between components through in-memory channels without copying, so this is
    the fastest process for models whose components share a core well (asyncio I/O, short
    steps). Components that block (e.g. `time.sleep`) hold up the others; run those on Ray
    with `RayProcess`.

    Example:
        ```python
        process = LocalProcess(
            components=[Iterator(name="input", iters=20), Sink(name="sink")],
            connectors=[AsyncioConnector(spec=ConnectorSpec(source="input.x", target="sink.x"))],
        )
        async with process:
            await process.run()
        ```
    """

    flow_name_default: _t.ClassVar[str] = "plugboard-local-process"
    default_connector: _t.ClassVar[type[Connector]] = AsyncioConnector

    async def _prepare(self) -> None:
        self._runners = build_local_runners(self)

    async def _run_components(self) -> None:
        await prepare_tag_concurrency(self.components.values())
        await self._supervise(as_task_runs=True)

    async def _supervise(self, *, as_task_runs: bool) -> None:
        """Runs every component, each as a Prefect task run or (for tests) as it is."""
        supervisor = self._supervisor = Supervisor(self.name)
        runs: dict[str, _t.Awaitable[_t.Any]] = {}
        types = {}
        # Task run ids made up front, so Prefect's run graph can draw the links between
        # components (recorded, never waited on: they all run at once).
        ids = {name: uuid.uuid4() for name in self._runners}
        upstream = Links(self.components, self.connectors.values()).upstream_of()
        for name, runner in self._runners.items():
            component = runner.component
            kind = types[name] = type(component).__name__
            runner.events.on_stop = self._stop_event_callback(name)
            if not as_task_runs:
                runs[name] = supervisor.run_component(name, kind, runner.run)
                continue

            async def body(
                upstream: _t.Any = None,
                runner: ComponentRunner = runner,
                name: str = name,
                kind: str = kind,
            ) -> _t.Any:
                return await supervisor.run_component(
                    name, kind, lambda: run_with_task_logger(runner)
                )

            drawn: set[RunInput] = {TaskRunResult(id=ids[u]) for u in upstream[name]}
            runs[name] = run_task_async(
                component_task(component, body),
                task_run_id=ids[name],
                parameters={"upstream": None},
                dependencies={"upstream": drawn} if drawn else None,
                return_type="result",
            )
        await supervisor.wait(runs, types)

    def _stop(self, reason: str) -> None:
        supervisor = getattr(self, "_supervisor", None)
        if supervisor is not None:
            supervisor.stop(reason)


def build_local_runners(process: Process) -> dict[str, ComponentRunner]:
    """Wires a process's components with in-memory channels and returns their runners.

    Every input field gets one inbox; each connector into it is one sender. The inbox holds as
    many messages as the largest `maxsize` among those connectors (unbounded if any is 0).
    A component that handles events gets one event inbox, fed by one sender per publisher.
    """
    into: defaultdict[tuple[str, str], list[Connector]] = defaultdict(list)
    for connector in process.connectors.values():
        if connector.spec.mode is ConnectorMode.PIPELINE:
            into[(connector.spec.target.entity, connector.spec.target.descriptor)].append(connector)
    inboxes: dict[tuple[str, str], Inbox] = {}
    senders: defaultdict[tuple[str, str], list[Sender]] = defaultdict(list)
    for (entity, field), connectors in into.items():
        sizes = [c.maxsize for c in connectors]
        maxsize = 0 if 0 in sizes else max(sizes)
        inbox = inboxes[(entity, field)] = Inbox(maxsize, len(connectors), f"{entity}.{field}")
        for connector in connectors:
            source = (connector.spec.source.entity, connector.spec.source.descriptor)
            senders[source].append(LocalSender(inbox, connector.id))
    routes = EventRoutes.of(process.components.values())
    event_inboxes = {
        name: Inbox(DEFAULT_MAXSIZE, len(routes.feeds(name)), f"{name}.{EVENTS_FIELD}")
        for name, c in process.components.items()
        if c.io.input_events
    }
    return {
        name: ComponentRunner(
            component,
            {f: inboxes[(name, f)] for f in component.io.inputs if (name, f) in inboxes},
            {f: senders[(name, f)] for f in component.io.outputs},
            events=_event_wiring(name, routes, event_inboxes),
        )
        for name, component in process.components.items()
    }


def _event_wiring(name: str, routes: EventRoutes, inboxes: dict[str, Inbox]) -> EventWiring:
    to_subscriber: dict[str, LocalSender] = {}
    senders: dict[str, list[Sender]] = {}
    for event_type, subscribers in routes.targets(name).items():
        for subscriber in subscribers:
            if subscriber not in to_subscriber:
                to_subscriber[subscriber] = LocalSender(
                    inboxes[subscriber], f"{name}->{subscriber}"
                )
            senders.setdefault(event_type, []).append(to_subscriber[subscriber])
    return EventWiring(inbox=inboxes.get(name), senders=senders)
