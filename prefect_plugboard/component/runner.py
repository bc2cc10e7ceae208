"""`ComponentRunner`: drives one component through its lifecycle over its channels.

This is the hot loop of the library. Per step it takes one value per input field from its
inbox, awaits `step()`, and offers every output value to every connector leaving the
component. Waiting only happens when an inbox is empty or a receiver is full; everything else
runs without suspending, so the event loop hands work over in batches.

Components that handle events run a second loop that also takes events as they come (see
`event_loop.EventLoop`); components without input events never pay for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
import contextlib
from dataclasses import dataclass, field
import time
import types
import typing as _t

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.component.hand import handle_event_keeping, take_carried
from prefect_plugboard.connector.channel import EMPTY, EndOfStream, Inbox, Sender
from prefect_plugboard.events.event import StopEvent
from prefect_plugboard.exceptions import IOStreamClosedError
from prefect_plugboard.schemas.status import Status


__all__ = [
    "PROGRESS_PERIOD",
    "TIME_SLICE",
    "ComponentRunner",
    "EventWiring",
    "Outputs",
    "offer_outputs",
]

TIME_SLICE = 0.005
"""A component that has run this long (s) without waiting yields to the event loop, so that
the other components, cancellation and I/O get a turn: cooperative time slicing."""
PROGRESS_PERIOD = 1.0
"""Most often (s) a runner reports progress through its `on_progress` callback."""


@dataclass
class EventWiring:
    """A component's events: where it receives them, where each type it publishes goes.

    Attributes:
        inbox: Where the events it handles arrive (from every publisher), if it handles any.
        senders: Per event type it publishes, one sender per subscribing component.
        on_stop: Called when the component publishes a `StopEvent`: stop the whole model.
    """

    inbox: Inbox | None = None
    senders: Mapping[str, Sequence[Sender]] = field(default_factory=dict)
    on_stop: Callable[[StopEvent], None] | None = None


class _Arrived(_t.NamedTuple):
    kind: _t.Literal["field", "event", "events-ended"]
    value: _t.Any


Outputs = tuple[tuple[str, tuple[tuple[Callable[[_t.Any], bool], Sender], ...]], ...]
"""Per output field, each connector leaving it as `(send_nowait, sender)`."""


def offer_outputs(outputs: Outputs, state: dict[str, _t.Any]) -> list[tuple[Sender, _t.Any]] | None:
    """Offers every output's current value to every connector leaving it, without waiting.

    Returns:
        The `(sender, value)` pairs a full receiver did not take, if any: the caller sends
        them, waiting. Each connector keeps its order; connectors do not wait on each other.
    """
    blocked: list[tuple[Sender, _t.Any]] | None = None
    for name, targets in outputs:
        value = state[name]
        for send_nowait, sender in targets:
            if not send_nowait(value):
                if blocked is None:
                    blocked = []
                blocked.append((sender, value))
    return blocked


class ComponentRunner:
    """Runs one component: `init()`, steps until its input ends or it closes, `destroy()`.

    `component.run_stats` is kept up to date whenever the component waits or yields (never
    on the hot path), so a process can show progress while it runs.

    Args:
        component: The component to run.
        inboxes: The inbox of each of the component's input fields.
        senders: The senders of each output field, one per connector leaving it.
        on_progress: Called with the component at most every `PROGRESS_PERIOD` seconds, when
            it waits or yields, after `run_stats` is updated.
        events: The component's event channels.
    """

    def __init__(
        self,
        component: Component,
        inboxes: Mapping[str, Inbox],
        senders: Mapping[str, Sequence[Sender]],
        on_progress: Callable[[Component], None] | None = None,
        events: EventWiring | None = None,
    ) -> None:
        self.component = component
        self.inboxes = dict(inboxes)
        self.senders = {f: list(s) for f, s in senders.items() if s}
        self.on_progress = on_progress
        self.events = events or EventWiring()
        self._waiting = 0.0
        self._started = 0.0
        self._last_progress = 0.0
        self._initial: dict[str, deque[_t.Any]] | None = None
        self._initialised = False
        self._steps_done = 0  # steps already taken by `step_once()`
        # Fields handlers set since the last step, and values carried to the steps after
        # (see `handle_event_keeping`): `step_once()` and the run that follows share them.
        self._populated: set[str] = set()
        self._carried: dict[str, deque[_t.Any]] = {}

    async def init(self) -> None:
        """Runs the component's `init()`; the component is then `INIT`, ready to step.

        Calling it again does nothing. If `init()` raises, `destroy()` runs (the component
        may have acquired something before failing) and the error propagates, with the
        component `FAILED` (or `STOPPED` if it was cancelled). The class's `init()` runs, not
        the instance's hand-driven one.
        """
        if self._initialised:
            return
        component = self.component
        component._run_stats = RunStats()
        component.status = Status.INIT
        try:
            await type(component).init(component)
        except BaseException as exc:
            component.status = (
                Status.STOPPED if isinstance(exc, asyncio.CancelledError) else Status.FAILED
            )
            self._release_inboxes()
            await self._destroy(exc)
            raise
        self._initialised = True

    async def run(self) -> RunStats:
        """Runs the component to its end and returns its figures.

        `init()` runs first unless it already has. On a clean end the component's outputs
        (fields and events) are closed, so the end flows downstream. `destroy()` runs whenever
        `init()` ran. An exception from the component propagates as is; cancellation leaves
        the component `STOPPED`.

        Returns:
            The run's figures (also kept on `component.run_stats`).
        """
        await self.init()
        component = self.component
        stats = component._run_stats
        self._started = time.perf_counter()
        ending: BaseException | None = None
        try:
            component.status = Status.RUNNING
            if self.events.inbox is not None:
                from prefect_plugboard.component.event_loop import EventLoop

                await EventLoop(self, stats).run()
            else:
                await self._step_until_done(stats)
            await self._close_outputs()
            component.status = Status.COMPLETED
        except asyncio.CancelledError as exc:
            component.status = Status.STOPPED
            ending = exc
            raise
        except BaseException as exc:
            component.status = Status.FAILED
            ending = exc
            raise
        finally:
            self._release_inboxes()
            self._update_times(stats)
            await self._destroy(ending)
        return stats

    async def discard(self, error: BaseException | None = None) -> None:
        """Ends a component that was initialised but will not run (on): `destroy()` runs.

        Args:
            error: What it raised (in a step taken by hand), if that is why: it ends
                `FAILED`, else `STOPPED`.
        """
        if not self._initialised or self.component.status.is_terminal:
            return
        self.component.status = Status.STOPPED if error is None else Status.FAILED
        self._release_inboxes()
        await self._destroy(error)

    def _release_inboxes(self) -> None:
        for inbox in (*self.inboxes.values(), self.events.inbox):
            if inbox is not None:
                inbox.receiver_gone()

    async def step_once(self) -> None:
        """Takes one step by hand, for `Process.step()`: `init()` first if it has not run.

        Takes one value per input field (initial values first, waiting for the rest), handles
        the events that have arrived, steps (a component with inputs only once they all have
        a value), and sends its outputs. A later `run()` goes on from there.

        Raises:
            EndOfStream: An input's stream has ended.
        """
        component = self.component
        await self.init()
        component.status = Status.RUNNING
        state = component.__dict__
        io = component.io
        inputs, outputs, _ = self._plans()
        for name, get_nowait, inbox, pending in inputs:
            if pending:
                state[name] = pending.popleft()
                continue
            item = get_nowait()
            state[name] = await self._wait_for_input(inbox) if item is EMPTY else item
        events = self.events.inbox
        while events is not None and (event := events.get_nowait()) is not EMPTY:
            await handle_event_keeping(component, event, self._populated, self._carried)
        handled_only = set(io.inputs) - set(self.inboxes)
        steps = type(component).step is not Component.step and (
            bool(io.inputs) or bool(io.outputs or io.output_events)
        )
        if steps and handled_only <= self._populated:
            self._populated.clear()
            await type(component).step(component)
            take_carried(state, self._populated, self._carried)
            self._steps_done += 1
            component._run_stats.steps = self._steps_done
            if not io.is_closed:
                for name, targets in outputs:
                    for _, sender in targets:
                        await self._wait_to_send(sender, state[name])
        if io._event_queue:
            await self._publish_events()
        component.status = Status.WAITING

    async def _destroy(self, ending: BaseException | None) -> None:
        """Runs `destroy()`, without letting its error hide the one the run is ending with.

        If the run is already ending with an error, that error goes on (the first problem is
        the one to fix) and this one is logged.
        """
        component = self.component
        try:
            await component.destroy()
        except Exception:
            if ending is None:
                component.status = Status.FAILED
                raise
            component.logger.warning(
                "Component %r: destroy() raised while the run was ending (%s: %s)",
                component.name,
                type(ending).__name__,
                ending,
                exc_info=True,
            )

    def _update_times(self, stats: RunStats) -> None:
        stats.waiting_seconds = self._waiting
        stats.busy_seconds = max(0.0, time.perf_counter() - self._started - self._waiting)

    def _plans(self) -> tuple[tuple[_t.Any, ...], tuple[_t.Any, ...], dict[str, deque[_t.Any]]]:
        if self._initial is None:  # shared by `step_once()` and the run that follows
            self._initial = {f: deque(v) for f, v in self.component.initial_values.items() if v}
        initial = self._initial
        inputs = tuple(
            (f, inbox.get_nowait, inbox, initial.get(f)) for f, inbox in self.inboxes.items()
        )
        outputs = tuple(
            (f, tuple((sender.send_nowait, sender) for sender in senders))
            for f, senders in self.senders.items()
        )
        return inputs, outputs, initial

    def _publisher(
        self,
        stats: RunStats,
        inputs: tuple[_t.Any, ...],
        outputs: tuple[_t.Any, ...],
        initial: dict[str, deque[_t.Any]],
    ) -> Callable[[int, int], None]:
        """Returns `publish(steps, sent_steps)`, which brings `run_stats` up to date."""
        fan_out = sum(len(targets) for _, targets in outputs)
        initial_count = sum(len(v) for v in initial.values())
        component = self.component

        def publish(steps: int, sent_steps: int) -> None:
            # Off the hot path: only before the component waits or yields, and at the end.
            stats.steps = steps
            unused = sum(len(v) for v in initial.values())
            stats.messages_in = max(0, steps * len(inputs) - (initial_count - unused))
            stats.messages_out = sent_steps * fan_out
            self._update_times(stats)
            now = time.monotonic()
            if self.on_progress is not None and now - self._last_progress >= PROGRESS_PERIOD:
                self._last_progress = now
                self.on_progress(component)

        return publish

    async def _step_until_done(self, stats: RunStats) -> None:
        component = self.component
        state = component.__dict__
        io = component.io
        step = types.MethodType(type(component).step, component)  # not the hand-driven one
        inputs, outputs, initial = self._plans()
        publish = self._publisher(stats, inputs, outputs, initial)
        offer = offer_outputs
        clock = time.monotonic
        steps = self._steps_done
        known_attributes = len(state)
        slice_ends = clock() + TIME_SLICE
        try:
            while not io.is_closed:
                for name, get_nowait, inbox, pending in inputs:
                    if pending:
                        state[name] = pending.popleft()
                        continue
                    item = get_nowait()
                    if item is EMPTY:
                        publish(steps, steps)
                        item = await self._wait_for_input(inbox)
                        slice_ends = clock() + TIME_SLICE
                    state[name] = item
                await step()
                steps += 1
                if io._event_queue:
                    await self._publish_events()
                if io.is_closed:  # step() may have closed it (mypy keeps the loop's narrowing)
                    break  # type: ignore[unreachable]
                if len(state) != known_attributes:
                    known_attributes = self._report_new_attributes(state, known_attributes)
                blocked = offer(outputs, state)
                if blocked:
                    publish(steps, steps - 1)
                    await self._wait_to_send_all(blocked)
                    slice_ends = clock() + TIME_SLICE
                if clock() > slice_ends:
                    publish(steps, steps)
                    await asyncio.sleep(0)
                    slice_ends = clock() + TIME_SLICE
        except EndOfStream:
            pass
        except IOStreamClosedError:
            # plugboard's rule: a step that raises it ends the stream, as `io.close()` does.
            steps += 1
            io._close_requested = True
        finally:
            publish(steps, steps - 1 if io.is_closed and steps else steps)

    async def _next_input(self, inbox: Inbox | None, events: Inbox | None) -> _Arrived:
        """Waits for a field value or an event, whichever comes first.

        Raises:
            EndOfStream: The field's stream ended (or, with no field, there is nothing left).
        """
        with self._waiting_time():
            if events is None:
                if inbox is None:
                    raise EndOfStream
                return _Arrived("field", await inbox.get())
            if inbox is None:
                try:
                    return _Arrived("event", await events.get())
                except EndOfStream:
                    return _Arrived("events-ended", None)
            field_get = asyncio.ensure_future(inbox.get())
            event_get = asyncio.ensure_future(events.get())
            try:
                await asyncio.wait({field_get, event_get}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in (field_get, event_get):
                    if not waiting.done():
                        waiting.cancel()
            if event_get.done() and not event_get.cancelled():
                if field_get.done() and not field_get.cancelled() and field_get.exception() is None:
                    # Both arrived: keep the field value for the next look at the fields.
                    inbox.put_back(field_get.result())
                if event_get.exception() is not None:
                    return _Arrived("events-ended", None)
                return _Arrived("event", event_get.result())
            return _Arrived("field", field_get.result())

    async def _publish_events(self) -> None:
        queue = self.component.io._event_queue
        while queue:
            event = queue.pop(0)
            if isinstance(event, StopEvent):
                if self.events.on_stop is not None:
                    self.events.on_stop(event)
                continue
            for sender in self.events.senders.get(event.type, ()):
                if not sender.send_nowait(event):
                    await self._wait_to_send(sender, event)

    async def _wait_for_input(self, inbox: Inbox) -> _t.Any:
        with self._waiting_time():
            return await inbox.get()

    async def _wait_to_send(self, sender: Sender, value: _t.Any) -> None:
        with self._waiting_time():
            await sender.send(value)

    async def _wait_to_send_all(self, blocked: list[tuple[Sender, _t.Any]]) -> None:
        """Sends what `offer_outputs` could not, waiting for room downstream."""
        with self._waiting_time():
            for sender, value in blocked:
                await sender.send(value)

    @contextlib.contextmanager
    def _waiting_time(self) -> Iterator[None]:
        """Marks the component `waiting` (for input or for room downstream) and times it."""
        component = self.component
        component.status = Status.WAITING
        began = time.perf_counter()
        try:
            yield
        finally:
            self._waiting += time.perf_counter() - began
            component.status = Status.RUNNING

    async def _close_outputs(self) -> None:
        closed: set[int] = set()
        for senders in (*self.senders.values(), *self.events.senders.values()):
            for sender in senders:
                if id(sender) not in closed:
                    closed.add(id(sender))
                    await sender.close()

    def _report_new_attributes(self, state: dict[str, _t.Any], known: int) -> int:
        """Warns once about public attributes first set in `step()` that are not outputs."""
        component = self.component
        outputs = component.io.outputs
        if outputs:
            declared = {*component.io.inputs, *outputs, *(component.exports or ())}
            for name in list(state)[known:]:
                if name.startswith("_") or name in declared:
                    continue
                component.logger.warning(
                    "Component %r (%s) set `self.%s` in step(), but %r is not a declared output, "
                    "so it is not sent. Declared outputs: %s.",
                    component.name,
                    type(component).__name__,
                    name,
                    name,
                    ", ".join(outputs),
                )
        return len(state)
