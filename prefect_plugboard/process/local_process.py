"""`LocalProcess`: every component on one asyncio event loop, one Prefect task run each."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import functools
import typing as _t
import uuid

from prefect_plugboard.component.runner import ComponentRunner, EventWiring
from prefect_plugboard.connector.asyncio_connector import AsyncioConnector
from prefect_plugboard.connector.channel import EndOfStream, Inbox, LocalSender, Sender
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.exceptions import ComponentError
from prefect_plugboard.log_lines import LogLine, capturing_logger
from prefect_plugboard.process.event_routes import EVENTS_FIELD
from prefect_plugboard.process.links import Links
from prefect_plugboard.process.process import Process
from prefect_plugboard.process.supervision import ComponentFailure, Supervisor
from prefect_plugboard.process.tasks import (
    component_task,
    prepare_tag_concurrency,
    run_with_task_logger,
)
from prefect_plugboard.process.wiring import event_senders, plan_wiring
from prefect_plugboard.schemas.status import Status


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
        self._held_lines = await init_components(self._runners)

    async def _release(self) -> None:
        # Initialised but never run: each component's destroy() runs now.
        for runner in getattr(self, "_runners", {}).values():
            await runner.discard()

    async def _run_components(self) -> None:
        await prepare_tag_concurrency(self.components.values())
        await self._supervise(as_task_runs=True)

    async def _supervise(self, *, as_task_runs: bool) -> None:
        """Runs every component, each as a Prefect task run or (for tests) as it is."""
        from prefect.client.schemas.objects import RunInput, TaskRunResult
        from prefect.task_engine import run_task_async

        supervisor = self._supervisor = Supervisor(self.name)
        if self.stop_reason is not None:  # stopped while the flow run was being created
            supervisor.stop(self.stop_reason)
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
                held = self._held_lines.pop(name, [])
                return await supervisor.run_component(
                    name, kind, lambda: run_with_task_logger(runner, held)
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

    async def _step_components(self) -> None:
        """One step of every component at once; the first failure stops the others."""
        steps = {
            asyncio.ensure_future(_step_once(runner)): name
            for name, runner in self._runners.items()
        }
        done, pending = await asyncio.wait(steps, return_when=asyncio.FIRST_EXCEPTION)
        failed = next((t for t in done if not t.cancelled() and t.exception() is not None), None)
        if failed is None:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(steps)
        for task, name in steps.items():
            if task in pending:
                self.components[name].status = Status.STOPPED
        name = steps[failed]
        component = self.components[name]
        component.status = Status.FAILED
        exc = _t.cast(BaseException, failed.exception())
        kind = type(component).__name__
        error = ComponentError(
            name, kind, f"component {name!r} ({kind}) failed: {type(exc).__name__}: {exc}"
        )
        raise error from exc

    def _stop(self, reason: str) -> None:
        supervisor = getattr(self, "_supervisor", None)
        if supervisor is not None:
            supervisor.stop(reason)


async def init_components(runners: Mapping[str, ComponentRunner]) -> dict[str, list[LogLine]]:
    """Runs every component's `init()`, all at once; returns what each logged meanwhile.

    The lines are held for the components' task runs, which do not exist yet.

    Raises:
        ComponentError: A component's `init()` raised (the first in order); the others'
            `destroy()` has run.
    """
    held: dict[str, list[LogLine]] = {name: [] for name in runners}
    for name, runner in runners.items():
        runner.component._run_logger = capturing_logger(name, held[name].append)
    try:
        outcomes = await asyncio.gather(
            *(runner.init() for runner in runners.values()), return_exceptions=True
        )
    finally:
        for runner in runners.values():
            runner.component._run_logger = None
    failed = [
        (n, o) for n, o in zip(runners, outcomes, strict=True) if isinstance(o, BaseException)
    ]
    if failed:
        for runner in runners.values():
            await runner.discard()
        name, error = failed[0]
        component = runners[name].component
        raise ComponentFailure(name, type(component).__name__, error).to_error()
    return held


async def _step_once(runner: ComponentRunner) -> None:
    try:
        await runner.step_once()
    except EndOfStream:
        runner.component.status = Status.WAITING  # its input has ended: `run()` ends it


def build_local_runners(process: Process) -> dict[str, ComponentRunner]:
    """Wires a process's components with in-memory channels and returns their runners.

    The wiring follows `plan_wiring`: one inbox per input field, one sender per connector,
    one event inbox per component that handles events, fed by one sender per publisher.
    """
    plans = plan_wiring(process.components, process.connectors.values())
    inboxes = {
        (name, f): Inbox(p.maxsize, p.senders, f"{name}.{f}")
        for name, plan in plans.items()
        for f, p in plan.inputs.items()
    }
    event_inboxes = {
        name: Inbox(plan.events_in.maxsize, plan.events_in.senders, f"{name}.{EVENTS_FIELD}")
        for name, plan in plans.items()
        if plan.events_in is not None
    }
    runners = {}
    for name, component in process.components.items():
        plan = plans[name]
        senders: dict[str, list[Sender]] = {
            f: [LocalSender(inboxes[(t.component, t.field)], t.connector) for t in targets]
            for f, targets in plan.outputs.items()
        }
        by_type, _ = event_senders(plan, functools.partial(_event_sender, name, event_inboxes))
        runners[name] = ComponentRunner(
            component,
            {f: inboxes[(name, f)] for f in plan.inputs},
            senders,
            events=EventWiring(inbox=event_inboxes.get(name), senders=by_type),
        )
    return runners


def _event_sender(publisher: str, inboxes: Mapping[str, Inbox], subscriber: str) -> LocalSender:
    return LocalSender(inboxes[subscriber], f"{publisher}->{subscriber}")
