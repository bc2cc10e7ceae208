"""`LocalProcess`: every component on one asyncio event loop, one Prefect task run each."""

from __future__ import annotations

from collections import defaultdict
import typing as _t

from prefect_plugboard.component.runner import ComponentRunner
from prefect_plugboard.connector.asyncio_connector import AsyncioConnector
from prefect_plugboard.connector.channel import Inbox, LocalSender, Sender
from prefect_plugboard.connector.connector import Connector
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
        supervisor = Supervisor(self.name)
        runs = {}
        types = {}
        for name, runner in self._runners.items():
            component = runner.component

            async def body(runner: ComponentRunner = runner) -> _t.Any:
                return await supervisor.run_component(
                    runner.component.name,
                    type(runner.component).__name__,
                    lambda: run_with_task_logger(runner),
                )

            runs[name] = component_task(component, body)()
            types[name] = type(component).__name__
        await supervisor.wait(runs, types)


def build_local_runners(process: Process) -> dict[str, ComponentRunner]:
    """Wires a process's components with in-memory channels and returns their runners.

    Every input field gets one inbox; each connector into it is one sender. The inbox holds as
    many messages as the largest `maxsize` among those connectors (unbounded if any is 0).
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
    return {
        name: ComponentRunner(
            component,
            {f: inboxes[(name, f)] for f in component.io.inputs},
            {f: senders[(name, f)] for f in component.io.outputs},
        )
        for name, component in process.components.items()
    }
