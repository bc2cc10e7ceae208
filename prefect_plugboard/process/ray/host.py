"""What runs on a Ray worker: some components of one run, each in a thread of its own.

A host is one Ray task. Nothing of Prefect runs here: no import of `prefect`, no connection
to its API, no setting or credential. The host connects to the run coordinator of its driver
(`link`: one authenticated connection, to the driver's process), wires its components to
their peers with direct streams, runs their `init()`, waits for the driver's start, runs
them, and reports everything the driver needs (log lines, progress, failures, endings) over
that link, in order and in batches. The driver turns those reports into the components'
Prefect task runs. If the link drops, the host stops its components: nobody would hear of
them any more.

Each component has a thread and an event loop of its own, so components that share a worker
process (see `placement`) still overlap whenever one of them blocks. The host's own loop only
talks to the driver and tells the threads what to do.
"""

from __future__ import annotations

import asyncio
import builtins
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
import contextlib
from dataclasses import dataclass
import io
import logging
import sys
import threading
import time
import traceback
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.component.runner import ComponentRunner, EventWiring
from prefect_plugboard.connector.channel import EndOfStream, Inbox, Sender
from prefect_plugboard.connector.ray_connector import DEFAULT_BATCH_SIZE, DEFAULT_MAX_FRAME_BYTES
from prefect_plugboard.log_lines import LogLine, capturing_logger
from prefect_plugboard.process.event_routes import EVENTS_FIELD
from prefect_plugboard.process.ray.auth import StreamSecurity
from prefect_plugboard.process.ray.link import DriverLink
from prefect_plugboard.process.ray.reports import (
    Ended,
    Failure,
    HostReady,
    Lines,
    Progress,
    Report,
    Stepped,
    StopAsked,
)
from prefect_plugboard.process.ray.sender import StreamSender
from prefect_plugboard.process.ray.stream import StreamAddress, StreamReceiver
from prefect_plugboard.process.wiring import WorkerPlan, event_senders
from prefect_plugboard.schemas.status import Status


__all__ = ["HostSettings", "final_state", "run_host"]

_T = _t.TypeVar("_T")


@dataclass(frozen=True)
class HostSettings:
    """What a host needs to know besides its components.

    Attributes:
        run_id: The run, as the driver's coordinator knows it.
        host: This host's number in the run.
        streams: The run's secret and how its streams listen and connect.
        log_level: The lowest level of log lines worth sending (the driver's task-run level).
    """

    run_id: str
    host: int
    streams: StreamSecurity
    log_level: int = logging.INFO


def run_host(
    settings: HostSettings,
    components: list[Component],
    plans: Mapping[str, WorkerPlan],
    driver: StreamAddress,
) -> None:
    """Runs `components` on this worker until each has ended: the body of a host's Ray task.

    Args:
        settings: The run and this host's place in it.
        components: The components (unpickled here).
        plans: Each component's wiring, by name.
        driver: Where the driver's run coordinator listens for this run's hosts.

    Raises:
        ConnectionError: The driver could not be reached (nothing ran).
    """
    asyncio.run(_Host(settings, components, plans, driver).run())


def final_state(component: Component) -> dict[str, _t.Any]:
    """The state the driver copies back: status, field values, exports and figures.

    Values that cannot be pickled are left out (with a warning in the component's log), so
    that one odd value does not lose the rest.
    """
    from ray import cloudpickle

    def picklable(kind: str, values: Mapping[str, _t.Any]) -> dict[str, _t.Any]:
        kept = {}
        for key, value in values.items():
            try:
                cloudpickle.dumps(value)
            except Exception as exc:  # noqa: BLE001 - any pickling failure means "leave it"
                component.logger.warning(
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


class _Reports:
    """Reports from any thread, handed to the driver in order, a batch at a time.

    While one batch is on its way the next one gathers, so a busy component's log lines
    travel together and a lone line leaves at once.
    """

    def __init__(self, send: Callable[[list[Report]], Awaitable[None]]) -> None:
        self._send = send
        self._items: deque[Report | tuple[str, LogLine]] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, item: Report | tuple[str, LogLine]) -> None:
        """Queues a report, or a (component, line) pair; callable from any thread."""
        self._items.append(item)
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._ready.set)

    def line_sink(self, component: str) -> Callable[[LogLine], None]:
        """Where a component's captured log lines go."""
        return lambda line: self.put((component, line))

    async def deliver(self) -> None:
        """Sends batches until `close()` is called and nothing is left."""
        while True:
            await self._ready.wait()
            with self._lock:
                self._ready.clear()
                self._wake_pending = False
            batch = self._drain()
            if batch:
                await self._send(batch)
            if self._closed and not self._items:
                return

    def close(self) -> None:
        """Sends what is queued, then lets `deliver` end."""
        self._closed = True
        self._ready.set()

    def _drain(self) -> list[Report]:
        batch: list[Report] = []
        items = self._items
        while items:
            item = items.popleft()
            if isinstance(item, tuple):
                component, line = item
                last = batch[-1] if batch else None
                if isinstance(last, Lines) and last.component == component:
                    batch[-1] = Lines(component, (*last.lines, line))
                else:
                    batch.append(Lines(component, (line,)))
            else:
                batch.append(item)
        return batch


class _Printing:
    """`print` that, in a component's thread with `log_prints` on, writes an INFO log line."""

    def __init__(self, original: Callable[..., None]) -> None:
        self.original = original
        self.sinks: dict[int, Callable[[LogLine], None]] = {}

    def __call__(self, *args: _t.Any, **kwargs: _t.Any) -> None:
        sink = self.sinks.get(threading.get_ident())
        if sink is None or kwargs.get("file") not in (None, _stdout()):
            self.original(*args, **kwargs)
            return
        buffer = io.StringIO()
        self.original(*args, **{**kwargs, "file": buffer})
        sink(LogLine(time.time(), logging.INFO, buffer.getvalue().rstrip()))


def _stdout() -> _t.Any:
    return sys.stdout


class _Slot:
    """One component on this worker: its thread, its loop, its channels and its runner."""

    def __init__(
        self,
        component: Component,
        plan: WorkerPlan,
        reports: _Reports,
        log_level: int,
        security: StreamSecurity,
    ) -> None:
        self.component = component
        self.name = component.name
        self.plan = plan
        self._reports = reports
        self._log_level = log_level
        self._security = security
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=f"plugboard-{self.name}", daemon=True
        )
        self._thread.start()
        self._receiver: StreamReceiver | None = None
        self._inboxes: dict[str, Inbox] = {}
        self._events = EventWiring()
        self._streams: list[StreamSender] = []
        self._runner: ComponentRunner | None = None
        self._current: asyncio.Task[_t.Any] | None = None
        self._stop_reason = ""
        self.ended = False

    @property
    def thread_id(self) -> int | None:
        """The id of the component's thread."""
        return self._thread.ident

    def call(self, coroutine: Coroutine[_t.Any, _t.Any, _T]) -> asyncio.Future[_T]:
        """Runs `coroutine` on the component's loop; awaitable from the host's loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def stop(self, reason: str) -> None:
        """Stops the component where it is (callable from any thread)."""

        def cancel() -> None:
            self._stop_reason = self._stop_reason or reason
            if self._current is not None and not self._current.done():
                self._current.cancel()

        self.loop.call_soon_threadsafe(cancel)

    async def listen(self, host: str) -> StreamAddress | None:
        """Starts receiving the component's inputs and events; returns where (if it has any).

        The component's log lines are captured from here on: a connection its receiver
        refuses is a warning in its log.
        """
        component = self.component
        component._run_logger = capturing_logger(
            self.name, self._reports.line_sink(self.name), self._log_level
        )
        plan = self.plan
        self._inboxes = {
            f: Inbox(p.maxsize, p.senders, f"{component.name}.{f}") for f, p in plan.inputs.items()
        }
        if plan.events_in is not None:
            self._events.inbox = Inbox(
                plan.events_in.maxsize, plan.events_in.senders, f"{component.name}.{EVENTS_FIELD}"
            )
        receivable = dict(self._inboxes)
        if self._events.inbox is not None:
            receivable[EVENTS_FIELD] = self._events.inbox
        if not receivable:
            return None
        senders = sum(p.senders for p in plan.inputs.values())
        self._receiver = StreamReceiver(
            receivable,
            host,
            self._security,
            senders=senders + (plan.events_in.senders if plan.events_in is not None else 0),
            name=self.name,
            warn=lambda text: self.component.logger.warning("%s", text),
            # Its own limits, from the run's wiring: not what a sender claims.
            frame_limits={
                f: p.max_frame_bytes
                for f, p in plan.inputs.items()
                if p.max_frame_bytes is not None
            },
        )
        return await self._receiver.start()

    async def prepare(self, addresses: Mapping[str, StreamAddress]) -> None:
        """Connects to the components it sends to, then runs the component's `init()`."""
        self._current = asyncio.current_task()
        component = self.component
        senders: dict[str, list[Sender]] = {}
        for out_field, targets in self.plan.outputs.items():
            for target in targets:
                stream = StreamSender.to(
                    _known(addresses[target.component]),
                    target.connector,
                    target.field,
                    int(target.settings.get("batch_size", DEFAULT_BATCH_SIZE)),
                    self._security,
                    int(target.settings.get("max_frame_bytes", DEFAULT_MAX_FRAME_BYTES)),
                )
                self._streams.append(stream)
                senders.setdefault(out_field, []).append(stream)
        self._events.senders, event_streams = event_senders(
            self.plan,
            lambda subscriber: StreamSender.to(
                _known(addresses[subscriber]),
                f"{self.name}->{subscriber} (events)",
                EVENTS_FIELD,
                DEFAULT_BATCH_SIZE,
                self._security,
            ),
        )
        self._streams += event_streams
        self._events.on_stop = lambda event: self._reports.put(
            StopAsked(self.name, f"stopped by a StopEvent from component {self.name!r}")
        )
        await asyncio.gather(*(stream.connected() for stream in self._streams))
        self._runner = ComponentRunner(
            component, self._inboxes, senders, self._progress, self._events
        )
        try:
            await self._runner.init()
        except BaseException as exc:
            self._end(exc)
            raise

    async def run(self) -> None:
        """Runs the component to its end and reports how it ended."""
        self._current = asyncio.current_task()
        runner = _t.cast(ComponentRunner, self._runner)
        try:
            await runner.run()
        except BaseException as exc:  # noqa: BLE001 - reported; the host goes on with the others
            self._end(exc)
            return
        self._end(None)

    async def step(self, number: int) -> None:
        """Takes one step by hand (`Process.step()`) and reports the state it leaves."""
        self._current = asyncio.current_task()
        runner = _t.cast(ComponentRunner, self._runner)
        try:
            await runner.step_once()
        except EndOfStream:
            self.component.status = Status.WAITING  # its input has ended: `run()` ends it
        except asyncio.CancelledError:
            raise  # stopped: the host discards it
        except BaseException as exc:
            await runner.discard(exc)
            self._end(exc)
            raise
        self._reports.put(Stepped(self.name, number, final_state(self.component)))

    async def discard(self) -> None:
        """Ends a component that will not run (the run stopped first).

        Its `destroy()` runs if its `init()` did; it is reported `stopped`.
        """
        try:
            if self._runner is not None:
                await self._runner.discard()
        except BaseException as exc:  # noqa: BLE001 - reported: its destroy() raised
            self._end(exc)
            return
        self.component.status = Status.STOPPED
        self._end(asyncio.CancelledError())

    def _progress(self, component: Component) -> None:
        self._reports.put(Progress(self.name, str(component.status), component.run_stats.to_dict()))

    def _end(self, error: BaseException | None) -> None:
        """Reports how the component ended (once)."""
        if self.ended:
            return
        self.ended = True
        component = self.component
        if error is None:
            component.logger.info(
                "Component %r finished: %s.", self.name, component.run_stats.summary()
            )
            self._reports.put(Ended(self.name, str(Status.COMPLETED), final_state(component)))
        elif isinstance(error, asyncio.CancelledError):
            component.status = Status.STOPPED
            self._reports.put(
                Ended(
                    self.name, str(Status.STOPPED), final_state(component), reason=self._stop_reason
                )
            )
        else:
            # The failure first: the run stops without waiting for the error to be pickled.
            self._reports.put(Failure(self.name, f"{type(error).__name__}: {error}"))
            component.logger.error(
                "Component %r failed:\n%s",
                self.name,
                "".join(traceback.format_exception(error)).rstrip(),
            )
            component.status = Status.FAILED
            self._reports.put(
                Ended(self.name, str(Status.FAILED), final_state(component), error=_pickled(error))
            )

    async def close(self) -> None:
        """Stops receiving and drops connections that did not end cleanly."""
        if self._receiver is not None:
            await self._receiver.close()
        if self.component.status is not Status.COMPLETED:
            for stream in self._streams:
                stream.abort()
        self.component._run_logger = None

    def join(self) -> None:
        """Ends the component's loop and thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _known(address: StreamAddress) -> Callable[[], Awaitable[StreamAddress | None]]:
    async def locate() -> StreamAddress | None:
        return address

    return locate


def _pickled(error: BaseException) -> bytes | None:
    from ray import cloudpickle

    try:
        return _t.cast(bytes, cloudpickle.dumps(error))
    except Exception:  # noqa: BLE001 - the driver then raises what the Failure report said
        return None


class _Host:
    def __init__(
        self,
        settings: HostSettings,
        components: list[Component],
        plans: Mapping[str, WorkerPlan],
        driver: StreamAddress,
    ) -> None:
        self._settings = settings
        self._components = components
        self._plans = plans
        self._link = DriverLink(driver, settings.streams, settings.host)

    async def run(self) -> None:
        if not await self._link.connect():
            return  # the run ended before this host reached the driver: nothing to do
        try:
            await self._run()
        finally:
            await self._link.close()

    async def _run(self) -> None:
        reports = _Reports(self._link.report)
        delivering = asyncio.ensure_future(reports.deliver())
        slots = [
            _Slot(c, self._plans[c.name], reports, self._settings.log_level, self._settings.streams)
            for c in self._components
        ]
        printing: _Printing | None = None
        try:
            printing = await self._serve(slots, reports)
        finally:
            for slot in slots:
                with contextlib.suppress(Exception):
                    await slot.call(slot.close())
                slot.join()
            if printing is not None:
                builtins.print = printing.original  # this worker may run other work next
            reports.close()
            await delivering

    async def _serve(self, slots: list[_Slot], reports: _Reports) -> _Printing | None:
        import ray

        link = self._link
        stopping: asyncio.Future[_t.Any] = asyncio.ensure_future(link.wait_stop())
        try:
            # The node's own address, never every interface; loopback if the run is on one node.
            streams = self._settings.streams
            node = "127.0.0.1" if streams.loopback else ray.util.get_node_ip_address()
            listening = await asyncio.gather(*(slot.call(slot.listen(node)) for slot in slots))
            await link.register(
                {s.name: a for s, a in zip(slots, listening, strict=True) if a is not None}
            )
            peers = sorted(
                {t.component for s in slots for ts in s.plan.outputs.values() for t in ts}
                | {n for s in slots for names in s.plan.event_targets.values() for n in names}
            )
            addresses = await _first(link.addresses(peers), stopping)
            if addresses is None:
                await self._discard(slots)
                return None
            prepared = await asyncio.gather(
                *(slot.call(slot.prepare(addresses)) for slot in slots), return_exceptions=True
            )
            if any(isinstance(p, BaseException) for p in prepared):
                await stopping  # a failed init() stops the run (its Failure said so)
                await self._discard(slots)
                return None
            reports.put(HostReady(self._settings.host, tuple(s.name for s in slots)))
            started = await self._take_steps(slots, stopping)
            if started is None:
                await self._discard(slots)
                return None
            printing = self._capture_prints(slots, reports) if started.get("log_prints") else None
            running = [slot.call(slot.run()) for slot in slots]
            everything = asyncio.ensure_future(asyncio.gather(*running, return_exceptions=True))
            await asyncio.wait({everything, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not everything.done():
                reason = stopping.result()
                for slot in slots:
                    slot.stop(reason)
                await everything
            return printing
        finally:
            stopping.cancel()

    async def _take_steps(
        self, slots: list[_Slot], stopping: asyncio.Future[str]
    ) -> dict[str, _t.Any] | None:
        """Takes the steps asked for (`Process.step()`) until the run starts or stops.

        Returns:
            The run's settings once it starts; `None` if it stops first.
        """
        taken = 0
        while True:
            command = await _first(self._link.next_command(taken), stopping)
            if command is None:
                return None
            kind, value = command
            if kind == "go":
                return _t.cast(dict[str, _t.Any], value)
            stepping: asyncio.Future[_t.Any] = asyncio.ensure_future(
                asyncio.gather(
                    *(slot.call(slot.step(value)) for slot in slots), return_exceptions=True
                )
            )
            await asyncio.wait([stepping, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not stepping.done():  # a failure elsewhere: stop where they wait
                for slot in slots:
                    slot.stop(stopping.result())
                await stepping
            taken = value

    async def _discard(self, slots: list[_Slot]) -> None:
        await asyncio.gather(
            *(slot.call(slot.discard()) for slot in slots if not slot.ended),
            return_exceptions=True,
        )

    @staticmethod
    def _capture_prints(slots: list[_Slot], reports: _Reports) -> _Printing:
        printing = _Printing(builtins.print)
        for slot in slots:
            if slot.thread_id is not None:
                printing.sinks[slot.thread_id] = reports.line_sink(slot.name)
        builtins.print = printing
        return printing


async def _first(asked: Awaitable[_T], stopping: asyncio.Future[_t.Any]) -> _T | None:
    """What `asked` returns, or `None` if the run stops first."""
    waiting = asyncio.ensure_future(asked)
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        return waiting.result()
    waiting.cancel()
    return None
