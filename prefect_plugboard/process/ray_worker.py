"""What runs on a Ray worker: one component, wired to its peers by direct streams."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
import logging
import typing as _t

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.component.runner import ComponentRunner, EventWiring
from prefect_plugboard.connector.channel import Inbox, Sender
from prefect_plugboard.connector.ray_connector import DEFAULT_BATCH_SIZE
from prefect_plugboard.connector.stream import StreamReceiver, StreamSender
from prefect_plugboard.process.event_routes import EVENTS_FIELD
from prefect_plugboard.process.supervision import Supervisor
from prefect_plugboard.process.tasks import run_with_task_logger
from prefect_plugboard.process.wiring import WorkerPlan, event_senders
from prefect_plugboard.schemas.status import Status


__all__ = [
    "apply_final_state",
    "apply_progress",
    "final_state",
    "progress_of",
    "run_on_worker",
]

_logger = logging.getLogger(__name__)


async def run_on_worker(
    component: Component, plan: WorkerPlan, coordinator: _t.Any, process_name: str
) -> RunStats | _t.Any:
    """Runs one component where this task runs; the body of its Prefect task on Ray.

    Listens for its inputs, registers the address with the run's coordinator, connects to the
    components it sends to, then runs the component. A stop from the coordinator cancels it
    (the task run ends `Cancelled`); its own failure is reported to the coordinator first, so
    the rest of the run stops at once. Its final state is left with the coordinator.

    Args:
        component: The component (unpickled on this worker).
        plan: Its wiring.
        coordinator: The run's `RunCoordinator` actor.
        process_name: For messages.

    Returns:
        The run's figures, or a `Cancelled` state if the run was stopped.
    """
    supervisor = Supervisor(process_name)
    name, kind = component.name, type(component).__name__

    async def watch_for_stop() -> None:
        supervisor.stop(await coordinator.wait_stop.remote())

    watcher = asyncio.ensure_future(watch_for_stop())
    try:
        return await supervisor.run_component(
            name, kind, lambda: _wire_and_run(component, plan, coordinator)
        )
    except BaseException as exc:
        if not isinstance(exc, asyncio.CancelledError):
            await _tell(coordinator.fail.remote(name, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        watcher.cancel()
        await _tell(coordinator.report_final.remote(name, final_state(component)))


async def _tell(call: Awaitable[_t.Any]) -> None:
    """Awaits a call to the coordinator; if it is gone, the component's own outcome stands."""
    try:
        await call
    except Exception as exc:  # noqa: BLE001 - never mask what the component raised
        _logger.warning("Could not reach the run's coordinator: %s", exc)


async def _wire_and_run(component: Component, plan: WorkerPlan, coordinator: _t.Any) -> RunStats:
    import ray

    inboxes = {
        f: Inbox(p.maxsize, p.senders, f"{component.name}.{f}") for f, p in plan.inputs.items()
    }
    events = EventWiring()
    if plan.events_in is not None:
        events.inbox = Inbox(
            plan.events_in.maxsize, plan.events_in.senders, f"{component.name}.{EVENTS_FIELD}"
        )
    receiver: StreamReceiver | None = None
    senders: dict[str, list[Sender]] = {}
    streams: list[StreamSender] = []
    try:
        if inboxes or events.inbox is not None:
            receivable = dict(inboxes)
            if events.inbox is not None:
                receivable[EVENTS_FIELD] = events.inbox
            receiver = StreamReceiver(receivable)
            address = await receiver.start(ray.util.get_node_ip_address())
            await coordinator.register.remote(component.name, address)
        for out_field, targets in plan.outputs.items():
            for target in targets:
                stream = StreamSender.to(
                    _locator(coordinator, target.component),
                    target.connector,
                    target.field,
                    target.batch_size,
                )
                streams.append(stream)
                senders.setdefault(out_field, []).append(stream)
        events.senders, event_streams = event_senders(
            plan,
            lambda subscriber: StreamSender.to(
                _locator(coordinator, subscriber),
                f"{component.name}->{subscriber} (events)",
                EVENTS_FIELD,
                DEFAULT_BATCH_SIZE,
            ),
        )
        streams += event_streams
        name = component.name

        def stop(event: object) -> None:
            coordinator.stop.remote(f"stopped by a StopEvent from component {name!r}", True)

        events.on_stop = stop
        await asyncio.gather(*(stream.connected() for stream in streams))

        def report(component: Component) -> None:
            coordinator.report_progress.remote(component.name, progress_of(component))

        report(component)
        runner = ComponentRunner(component, inboxes, senders, report, events)
        return await run_with_task_logger(runner)
    finally:
        if receiver is not None:
            await receiver.close()
        if component.status is not Status.COMPLETED:
            for stream in streams:
                stream.abort()


def _locator(coordinator: _t.Any, component: str) -> _t.Callable[[], _t.Awaitable[_t.Any]]:
    async def locate() -> _t.Any:
        return await coordinator.lookup.remote(component)

    return locate


def progress_of(component: Component) -> dict[str, _t.Any]:
    """A component's status and figures, as reported while it runs."""
    return {"status": str(component.status), "stats": component.run_stats.to_dict()}


def apply_progress(component: Component, progress: Mapping[str, _t.Any]) -> None:
    """Copies a running worker's status and figures onto the driver's component object."""
    component.status = Status(progress["status"])
    component._run_stats = RunStats(**progress["stats"])


def final_state(component: Component) -> dict[str, _t.Any]:
    """The state the driver copies back: status, field values, exports and figures.

    Values that cannot be pickled are left out (with a warning), so that one odd value does
    not lose the rest.
    """
    from ray import cloudpickle

    def picklable(kind: str, values: Mapping[str, _t.Any]) -> dict[str, _t.Any]:
        kept = {}
        for key, value in values.items():
            try:
                cloudpickle.dumps(value)
            except Exception as exc:  # noqa: BLE001 - any pickling failure means "leave it"
                _logger.warning(
                    "Component %r: %s %r cannot be sent back to the driver (%s); it is left out.",
                    component.name,
                    kind,
                    key,
                    exc,
                )
                continue
            kept[key] = value
        return kept

    state = component.__dict__
    return {
        "status": str(component.status),
        "fields": picklable(
            "field", {f: state.get(f) for f in (*component.io.inputs, *component.io.outputs)}
        ),
        "exports": picklable("export", component.exported_values()),
        "stats": component.run_stats.to_dict(),
    }


def apply_final_state(component: Component, state: Mapping[str, _t.Any]) -> None:
    """Copies a worker's final state onto the driver's component object."""
    apply_progress(component, state)
    component.__dict__.update(state["fields"])
    for key, value in state["exports"].items():
        setattr(component, key, value)
