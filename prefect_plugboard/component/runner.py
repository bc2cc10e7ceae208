"""`ComponentRunner`: drives one component through its lifecycle over its channels.

This is the hot loop of the library. Per step it takes one value per input field from its
inbox, awaits `step()`, and offers every output value to every connector leaving the
component. Waiting only happens when an inbox is empty or a receiver is full; everything else
runs without suspending, so the event loop hands work over in batches.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
import time
import typing as _t

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.connector.channel import EMPTY, EndOfStream, Inbox, Sender
from prefect_plugboard.schemas.status import Status


__all__ = ["ComponentRunner"]

# A component that has run this long (seconds) without waiting yields to the event loop, so
# that the other components, cancellation and I/O get a turn: cooperative time slicing.
TIME_SLICE = 0.005
PROGRESS_PERIOD = 1.0
"""Most often (s) a runner reports progress through its `on_progress` callback."""


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
    """

    def __init__(
        self,
        component: Component,
        inboxes: Mapping[str, Inbox],
        senders: Mapping[str, Sequence[Sender]],
        on_progress: _t.Callable[[Component], None] | None = None,
    ) -> None:
        self.component = component
        self.inboxes = dict(inboxes)
        self.senders = {field: list(s) for field, s in senders.items() if s}
        self.on_progress = on_progress
        self._waiting = 0.0
        self._last_progress = 0.0

    async def run(self) -> RunStats:
        """Runs the component to its end and returns its figures.

        On a clean end the component's outputs are closed, so the end flows downstream.
        `destroy()` runs whatever happens. An exception from the component propagates as is;
        cancellation leaves the component `STOPPED`.

        Returns:
            The run's figures (also kept on `component.run_stats`).
        """
        component = self.component
        stats = component._run_stats = RunStats()
        started = time.perf_counter()
        try:
            component.status = Status.INIT
            await component.init()
            component.status = Status.RUNNING
            await self._step_until_done(stats)
            await self._close_outputs()
            component.status = Status.COMPLETED
        except asyncio.CancelledError:
            component.status = Status.STOPPED
            raise
        except BaseException:
            component.status = Status.FAILED
            raise
        finally:
            for inbox in self.inboxes.values():
                inbox.receiver_gone()
            stats.waiting_seconds = self._waiting
            stats.busy_seconds = max(0.0, time.perf_counter() - started - self._waiting)
            await component.destroy()
        return stats

    async def _step_until_done(self, stats: RunStats) -> None:
        component = self.component
        state = component.__dict__
        io = component.io
        step = component.step
        initial = {f: deque(v) for f, v in component.initial_values.items() if v}
        inputs = tuple(
            (field, inbox.get_nowait, inbox, initial.get(field))
            for field, inbox in self.inboxes.items()
        )
        outputs = tuple(
            (field, tuple((sender.send_nowait, sender) for sender in senders))
            for field, senders in self.senders.items()
        )
        fan_out = sum(len(targets) for _, targets in outputs)
        initial_count = sum(len(v) for v in initial.values())
        clock = time.monotonic
        steps = 0
        known_attributes = len(state)
        slice_ends = clock() + TIME_SLICE

        def publish(sent: int) -> None:
            # Off the hot path: only before the component waits or yields.
            stats.steps = steps
            unused = sum(len(v) for v in initial.values())
            stats.messages_in = max(0, steps * len(inputs) - (initial_count - unused))
            stats.messages_out = sent * fan_out
            if self.on_progress is not None and clock() - self._last_progress >= PROGRESS_PERIOD:
                self._last_progress = clock()
                self.on_progress(component)

        try:
            while not io.is_closed:
                for field, get_nowait, inbox, pending in inputs:
                    if pending:
                        state[field] = pending.popleft()
                        continue
                    item = get_nowait()
                    if item is EMPTY:
                        publish(steps)
                        item = await self._wait_for_input(inbox)
                        slice_ends = clock() + TIME_SLICE
                    state[field] = item
                await step()
                steps += 1
                if io.is_closed:  # step() may have closed it (mypy keeps the loop's narrowing)
                    break  # type: ignore[unreachable]
                if len(state) != known_attributes:
                    known_attributes = self._report_new_attributes(state, known_attributes)
                for field, targets in outputs:
                    value = state[field]
                    for send_nowait, sender in targets:
                        if not send_nowait(value):
                            publish(steps - 1)
                            await self._wait_to_send(sender, value)
                            slice_ends = clock() + TIME_SLICE
                if clock() > slice_ends:
                    publish(steps)
                    await asyncio.sleep(0)
                    slice_ends = clock() + TIME_SLICE
        except EndOfStream:
            pass
        finally:
            publish(steps - 1 if io.is_closed and steps else steps)

    async def _wait_for_input(self, inbox: Inbox) -> _t.Any:
        component = self.component
        component.status = Status.WAITING
        began = time.perf_counter()
        try:
            return await inbox.get()
        finally:
            self._waiting += time.perf_counter() - began
            component.status = Status.RUNNING

    async def _wait_to_send(self, sender: Sender, value: _t.Any) -> None:
        began = time.perf_counter()
        try:
            await sender.send(value)
        finally:
            self._waiting += time.perf_counter() - began

    async def _close_outputs(self) -> None:
        for senders in self.senders.values():
            for sender in senders:
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
