"""Driving a component by hand: `await component.init()`, `await component.step()`.

Processes run components through `ComponentRunner`, which calls the class's own `init()` and
`step()`. Called on an instance instead, as plugboard's users do in unit tests, `init()` and
`step()` go through the functions here: they keep `status` (`init`, `running`, `waiting`,
`failed`) and, once `component.io.connect(connectors)` has been called, a step reads one value
per connected input, handles the events that have arrived, and sends its outputs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
import types
import typing as _t

from prefect_plugboard.connector.memory_channel import Channel
from prefect_plugboard.events.event import Event, StopEvent
from prefect_plugboard.exceptions import ChannelClosedError, IOStreamClosedError
from prefect_plugboard.schemas.connector import ConnectorMode
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.component import Component
    from prefect_plugboard.connector.connector import Connector


__all__ = [
    "HandWiring",
    "connect",
    "handle_event",
    "handle_event_keeping",
    "install",
    "run_by_hand",
    "take_carried",
]


@dataclass
class HandWiring:
    """A component's channels when it is driven by hand, and what carries over between steps.

    Attributes:
        inputs: Per input field, the channels that feed it.
        outputs: Per output field, the channels it is sent on.
        events_in: The channels its events arrive on.
        events_out: Per event type (its `safe_type`), the channel it is published on.
        initial: Initial values still to be consumed, per input field.
        populated: Input fields an event handler has set since the last step.
        held: Events whose handler would set a field that already has its value for the
            coming step: they wait for the step after, as a second value on a channel would.
        carried: Values a handler set for a field that had its value for the coming step
            already, kept for the steps after, in order.
    """

    inputs: dict[str, list[Channel]] = field(default_factory=dict)
    outputs: dict[str, list[Channel]] = field(default_factory=dict)
    events_in: list[Channel] = field(default_factory=list)
    events_out: dict[str, Channel] = field(default_factory=dict)
    initial: dict[str, deque[_t.Any]] = field(default_factory=dict)
    populated: set[str] = field(default_factory=set)
    held: deque[Event] = field(default_factory=deque)
    carried: dict[str, deque[_t.Any]] = field(default_factory=dict)
    _receiving: dict[int, asyncio.Future[_t.Any]] = field(default_factory=dict)


def install(component: Component) -> None:
    """Gives the instance its hand-driven `init()` and `step()` (the class's stay as they are)."""
    state = component.__dict__
    state["init"] = types.MethodType(_init_by_hand, component)
    state["step"] = types.MethodType(_step_by_hand, component)


def _wiring(component: Component) -> HandWiring:
    io = component.io
    if io._hand is None:
        io._hand = HandWiring(
            initial={f: deque(v) for f, v in component.initial_values.items() if v}
        )
    return io._hand


async def connect(component: Component, connectors: Iterable[Connector]) -> None:
    """Connects a component to the channels of `connectors` (see `IO.connect`)."""
    wiring = _wiring(component)
    io = component.io
    name = component.name
    publishes = {e.safe_type() for e in io.output_events}
    handles = {e.safe_type() for e in io.input_events}
    for connector in connectors:
        spec = connector.spec
        source, target = spec.source, spec.target
        if spec.mode is ConnectorMode.PUBSUB:
            if source.entity in publishes and source.descriptor == "publishers":
                wiring.events_out[source.entity] = await connector.connect_send()
            if target.entity in handles and target.descriptor == "subscribers":
                wiring.events_in.append(await connector.connect_recv())
            continue
        if source.entity == name and source.descriptor in io.outputs:
            wiring.outputs.setdefault(source.descriptor, []).append(await connector.connect_send())
        if target.entity == name and target.descriptor in io.inputs:
            wiring.inputs.setdefault(target.descriptor, []).append(await connector.connect_recv())


async def _init_by_hand(component: Component) -> None:
    await type(component).init(component)
    component.status = Status.INIT


async def _step_by_hand(component: Component) -> None:
    io = component.io
    if io.is_closed:
        msg = f"component {component.name!r} has closed its output; it steps no more"
        raise IOStreamClosedError(msg)
    wiring = _wiring(component)
    component.status = Status.RUNNING
    try:
        ready = await _read(component, wiring)
        if ready:
            wiring.populated.clear()
            await type(component).step(component)
            take_carried(component.__dict__, wiring.populated, wiring.carried)
        await _write(component, wiring, sent_outputs=ready)
    except IOStreamClosedError:
        await _close_outputs(wiring)
        component.status = Status.COMPLETED
        raise
    except BaseException:
        component.status = Status.FAILED
        raise
    component.status = Status.WAITING


async def run_by_hand(component: Component) -> None:
    """Steps a hand-driven component until its input ends or it closes its output."""
    component.status = Status.RUNNING
    while True:
        try:
            await component.step()
        except IOStreamClosedError:
            break
    component.status = Status.COMPLETED


async def _read(component: Component, wiring: HandWiring) -> bool:
    """Takes this step's inputs and handles arrived events; returns whether to step."""
    io = component.io
    state = component.__dict__
    waiting = []
    for name in io.inputs:
        pending = wiring.initial.get(name)
        if pending:
            state[name] = pending.popleft()
        elif wiring.inputs.get(name):
            waiting.append(name)
    if waiting:
        values = await asyncio.gather(*(_receive(component, wiring, f) for f in waiting))
        state.update(zip(waiting, values, strict=True))
    listens = bool(wiring.events_in)
    waiting_events = list(wiring.held)
    wiring.held.clear()
    if listens and not waiting_events and not (io.inputs or io.outputs or io.output_events):
        waiting_events.append(await _next_event(component, wiring))
    while listens and (event := _event_nowait(component, wiring)) is not None:
        waiting_events.append(event)
    for event in waiting_events:
        await _offer(component, wiring, event)
    if io.inputs:
        by_events = {f for fields in io.event_field_coverage.values() for f in fields}
        needed = {f for f in by_events if f not in wiring.inputs} if listens else set()
        handlers = type(component)._event_handlers
        while not needed <= wiring.populated and any(
            (needed - wiring.populated).intersection(handlers[e.type][1]) for e in wiring.held
        ):
            # A waiting event may complete the step: handle the waiting ones in order.
            await handle_event_keeping(
                component, wiring.held.popleft(), wiring.populated, wiring.carried
            )
        return needed <= wiring.populated
    return type(component).step is not _base_step() and bool(io.outputs or io.output_events)


def _base_step() -> _t.Any:
    from prefect_plugboard.component.component import Component

    return Component.step


async def _receive(component: Component, wiring: HandWiring, name: str) -> _t.Any:
    """One value of an input field, from whichever of its channels delivers first."""
    channels = wiring.inputs[name]
    while channels:
        for channel in channels:
            if id(channel) not in wiring._receiving:
                wiring._receiving[id(channel)] = asyncio.ensure_future(channel.recv())
        futures = [wiring._receiving[id(c)] for c in channels]
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        for channel, future in zip(list(channels), futures, strict=True):
            if not future.done():
                continue
            del wiring._receiving[id(channel)]
            if isinstance(future.exception(), ChannelClosedError):
                channels.remove(channel)
                continue
            return future.result()
    msg = f"the input {name!r} of component {component.name!r} has ended"
    raise IOStreamClosedError(msg)


async def _next_event(component: Component, wiring: HandWiring) -> Event:
    futures = {asyncio.ensure_future(c.recv()): c for c in wiring.events_in}
    try:
        done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
    for future in done:
        if future.exception() is None:
            return _t.cast(Event, future.result())
        wiring.events_in.remove(futures[future])
    if wiring.events_in:
        return await _next_event(component, wiring)
    msg = f"every publisher of the events of component {component.name!r} has ended"
    raise IOStreamClosedError(msg)


def _event_nowait(component: Component, wiring: HandWiring) -> Event | None:
    for channel in list(wiring.events_in):
        try:
            arrived, event = channel.recv_nowait()
        except ChannelClosedError:
            wiring.events_in.remove(channel)
            continue
        if arrived:
            return _t.cast(Event, event)
    return None


async def _offer(component: Component, wiring: HandWiring, event: Event) -> None:
    handler = type(component)._event_handlers.get(event.type)
    sets = set(handler[1]) if handler is not None else set()
    if sets & wiring.populated or any(e.type == event.type for e in wiring.held):
        wiring.held.append(event)
    else:
        await handle_event_keeping(component, event, wiring.populated, wiring.carried)


async def handle_event(component: Component, event: Event) -> set[str]:
    """Runs the component's handler of `event`; returns the populated fields it set.

    A handler's returned event is queued for publishing. An event the component has no
    handler for is ignored.
    """
    handler = type(component)._event_handlers.get(event.type)
    if handler is None:
        return set()
    method, populates = handler
    state = component.__dict__
    assigned: set[str] = set()
    state["_assigned_fields"] = assigned
    try:
        reply = await getattr(component, method)(event)
    finally:
        del state["_assigned_fields"]
    if isinstance(reply, Event):
        component.io.queue_event(reply)
    return assigned.intersection(populates)


async def handle_event_keeping(
    component: Component, event: Event, filled: set[str], carried: dict[str, deque[_t.Any]]
) -> None:
    """Runs the handler of `event` without overwriting a value that no step has used yet.

    Args:
        component: The component handling the event.
        event: The event.
        filled: The input fields that have their value for the coming step; the fields the
            handler populates join them.
        carried: Per field, values kept for the steps after: a value the handler sets for a
            field in `filled` goes there, and the field keeps the value it had.
    """
    handler = type(component)._event_handlers.get(event.type)
    settable = filled.intersection(handler[1]) if handler is not None else set()
    state = component.__dict__
    unused = {name: state.get(name) for name in settable}
    populated = await handle_event(component, event)
    for name in populated & settable:
        carried.setdefault(name, deque()).append(state.get(name))
        state[name] = unused[name]
    filled |= populated


def take_carried(
    state: dict[str, _t.Any], filled: set[str], carried: dict[str, deque[_t.Any]]
) -> None:
    """After a step, gives each field with a carried value its next one (see above)."""
    for name, values in carried.items():
        if values:
            state[name] = values.popleft()
            filled.add(name)


async def _write(component: Component, wiring: HandWiring, *, sent_outputs: bool) -> None:
    io = component.io
    queue = io._event_queue
    while queue:
        event = queue.pop(0)
        channel = wiring.events_out.get(type(event).safe_type())
        if channel is not None and not isinstance(event, StopEvent):
            await channel.send(event)
    if io.is_closed:
        await _close_outputs(wiring)
        return
    if sent_outputs:
        state = component.__dict__
        for name, channels in wiring.outputs.items():
            for channel in channels:
                await channel.send(state.get(name))


async def _close_outputs(wiring: HandWiring) -> None:
    for channels in wiring.outputs.values():
        for channel in channels:
            await channel.close()
    for channel in wiring.events_out.values():
        await channel.close()
