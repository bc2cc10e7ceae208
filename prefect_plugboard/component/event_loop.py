"""`EventLoop`: how a component that handles events runs, events taken as they come.

Events are handled as they arrive, between steps. A component with input fields steps once
every field has a new value: from its channel, or set by a handler that declares it in
`populates_fields` (a handler's assignment counts, not its declaration); it ends when a
field's stream ends. An event whose handler declares a field that already has its value for
the coming step waits for that step, as a second value on a channel would. When only waiting
events can complete the step, they are handled in order; a value one of them sets for a field
that has its value already is carried to the following steps, in order, so that no value is
overwritten before a step uses it. A component without input fields steps after each event
(if it has a `step`), and ends when every publisher of its events has ended.
"""

from __future__ import annotations

import asyncio
from collections import deque
import types
import typing as _t

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.component.hand import handle_event_keeping, take_carried
from prefect_plugboard.component.runner import offer_outputs
from prefect_plugboard.connector.channel import EMPTY, EndOfStream, Inbox
from prefect_plugboard.events.event import Event
from prefect_plugboard.exceptions import IOStreamClosedError


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.runner import ComponentRunner


__all__ = ["EventLoop"]


class EventLoop:
    """Runs one component that handles events until its input ends or it closes.

    Args:
        runner: The component's runner (its channels, its figures, how it waits).
        stats: The run's figures, kept current.
    """

    def __init__(self, runner: ComponentRunner, stats: RunStats) -> None:
        component = runner.component
        self.runner = runner
        self.component = component
        self.state = component.__dict__
        self.io = component.io
        self.events = _t.cast(Inbox, runner.events.inbox)
        self.handlers = type(component)._event_handlers
        self.step = types.MethodType(type(component).step, component)  # not the hand-driven one
        self.steps_on_events = type(component).step is not Component.step
        self.inputs, self.outputs, initial = runner._plans()
        self.publish = runner._publisher(stats, self.inputs, self.outputs, initial)
        self.ready = runner._populated  # what `Process.step()` left counts: shared
        self.required = set(self.io.inputs)  # some may have no channel: handlers populate them
        self.events_open = True
        self.steps = runner._steps_done
        self.known_attributes = len(self.state)
        self.held: deque[Event] = deque()  # events waiting for the next step, in arrival order
        # Values handlers set for a field that had its value for the coming step already:
        # they are the field's values for the steps after, in the order they were set.
        self.carried = runner._carried

    async def run(self) -> None:
        """Handles events and steps until the component's input ends or it closes."""
        io = self.io
        try:
            while not io.is_closed:
                await self._take_waiting_events()
                if io.is_closed:  # a handler may close it (mypy keeps the loop's narrowing)
                    return  # type: ignore[unreachable]
                if not self.required:
                    if not await self._take_next_event():
                        return
                    continue
                await self._fill_fields()
                if self.ready.issuperset(self.required) and not io.is_closed:
                    self.ready.clear()
                    await self._step_and_send()
                    take_carried(self.state, self.ready, self.carried)
                    await self._release_held()
                    await asyncio.sleep(0)  # events and other components get a turn
                elif all(name in self.ready for name, *_ in self.inputs):
                    if not await self._complete_fields():
                        return
        except EndOfStream:
            pass
        finally:
            steps = self.steps
            self.publish(steps, steps - 1 if io.is_closed and steps else steps)

    async def _take_waiting_events(self) -> None:
        """Offers every event that has arrived, without waiting."""
        events = self.events
        while self.events_open and (event := events.get_nowait()) is not EMPTY:
            await self._offer(event)
            if self.io.is_closed:
                return

    async def _take_next_event(self) -> bool:
        """Waits for the next event of a component without fields; `False` once none come."""
        if not self.events_open:
            return False
        event = await self._wait_for_event()
        if event is not None:
            await self._on_event(event)
        return True

    async def _wait_for_event(self) -> Event | None:
        """The next event to arrive (progress published first); `None` when events end."""
        self.publish(self.steps, self.steps)
        arrived = await self.runner._next_input(None, self.events)
        if arrived.kind == "events-ended":
            self.events_open = False
            return None
        return _t.cast(Event, arrived.value)

    async def _fill_fields(self) -> None:
        """Gives each field that has no value for the coming step its next one.

        Stops early if an event (or the end of the events) comes first while it waits.
        """
        state = self.state
        for name, _get, inbox, pending in self.inputs:
            if name in self.ready:
                continue
            if pending:
                state[name] = pending.popleft()
                self.ready.add(name)
                continue
            item = inbox.get_nowait()
            if item is EMPTY:
                self.publish(self.steps, self.steps)
                events = self.events if self.events_open else None
                arrived = await self.runner._next_input(inbox, events)
                if arrived.kind == "events-ended":
                    self.events_open = False
                    return
                if arrived.kind == "event":
                    await self._offer(arrived.value)
                    return
                item = arrived.value
            state[name] = item
            self.ready.add(name)

    async def _complete_fields(self) -> bool:
        """The channels have delivered; waits for a handler to populate the remaining fields.

        Returns:
            `False` once no event can come to populate them.
        """
        missing = self.required - self.ready
        if any(missing.intersection(self.handlers[e.type][1]) for e in self.held):
            # A waiting event may complete the step: handle the waiting ones in order until
            # it comes (what they set for fields that have their value already is carried).
            await self._on_event(self.held.popleft())
            return True
        if not self.events_open:
            return False
        event = await self._wait_for_event()
        if event is not None:
            await self._offer(event)
        return True

    async def _handle(self, event: Event) -> None:
        await handle_event_keeping(self.component, event, self.ready, self.carried)
        if self.io._event_queue:
            await self.runner._publish_events()

    async def _on_event(self, event: Event) -> None:
        await self._handle(event)
        if not self.required and self.steps_on_events and not self.io.is_closed:
            await self._step_and_send()

    def _must_wait(self, event: Event) -> bool:
        """Whether the event's handler would set a field that has its value already."""
        handler = self.handlers.get(event.type)
        return bool(self.required and handler is not None and self.ready.intersection(handler[1]))

    async def _offer(self, event: Event) -> None:
        if self._must_wait(event) or any(e.type == event.type for e in self.held):
            self.held.append(event)
        else:
            await self._on_event(event)

    async def _release_held(self) -> None:
        """After a step, lets the events that waited for it go on, in order.

        It stops at one that must wait again, for the step after.
        """
        while self.held and not self.io.is_closed:
            if self._must_wait(self.held[0]):
                return
            await self._on_event(self.held.popleft())

    async def _step_and_send(self) -> None:
        io = self.io
        try:
            await self.step()
        except IOStreamClosedError:  # ends the stream, as in the runner's loop
            io._close_requested = True
        self.steps += 1
        if io._event_queue:
            await self.runner._publish_events()
        if io.is_closed:
            return
        if len(self.state) != self.known_attributes:
            self.known_attributes = self.runner._report_new_attributes(
                self.state, self.known_attributes
            )
        blocked = offer_outputs(self.outputs, self.state)
        if blocked:
            await self.runner._wait_to_send_all(blocked)
