"""Noticing that a flow run is being cancelled from Prefect (the UI, the CLI, the API).

Prefect delivers a cancellation to a deployment's run by sending its process SIGTERM; a run
started from a script or a notebook gets no signal at all. `signals_stop` turns the signal
(and a Ctrl-C, SIGINT) into a graceful stop, and `watch_for_cancellation` notices the
cancellation itself: it
listens for the flow run's `Cancelling` event, and, for an API whose events it cannot hear
(another process's temporary server writing to the same database), reads the run's state
every `CANCEL_POLL_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import contextlib
import logging
import signal
import threading
import types
import typing as _t
from uuid import UUID


__all__ = ["CANCEL_POLL_INTERVAL", "signals_stop", "sigterm_stops", "watch_for_cancellation"]

_logger = logging.getLogger(__name__)

CANCEL_POLL_INTERVAL = 2.0
"""How often (s) the run's state is read, besides listening for its events."""


async def watch_for_cancellation(flow_run_id: UUID, on_cancel: Callable[[], None]) -> None:
    """Calls `on_cancel()` once the flow run is being cancelled; runs until cancelled itself."""
    listening = asyncio.ensure_future(_hear(flow_run_id))
    reading = asyncio.ensure_future(_read(flow_run_id))
    try:
        done, _ = await asyncio.wait({listening, reading}, return_when=asyncio.FIRST_COMPLETED)
        if any(not t.cancelled() and t.exception() is None for t in done):
            on_cancel()
    finally:
        for watcher in (listening, reading):
            watcher.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(listening, reading, return_exceptions=True)


@contextlib.contextmanager
def sigterm_stops(on_sigterm: Callable[[], None], *, keep: bool = False) -> Iterator[None]:
    """While inside, a SIGTERM calls `on_sigterm()` on the running event loop.

    Prefect's own handler raises wherever the program happens to be, which may be inside a
    component, whose task run then ends `Crashed`; a stop requested on the loop ends every
    component the same way, `Cancelled`. A second SIGTERM gets the handler that was there
    before (the hard way out). Outside the main thread signals cannot be handled, and this
    does nothing.

    Args:
        on_sigterm: Called on the running event loop with the first SIGTERM.
        keep: Leave the handler in place on the way out, for the function of a flow that is
            the whole run. The runner's SIGTERM for a cancellation the run has already acted
            on can land after the function has returned, while the flow engine records the
            final state: Prefect's handler would turn it into a `Crashed` run, this one
            absorbs it. The engine puts back the handler it found once the run has ended.
    """
    with signals_stop(lambda signum: on_sigterm(), interrupt=False, restore=not keep):
        yield


@contextlib.contextmanager
def signals_stop(
    on_signal: Callable[[signal.Signals], None], *, interrupt: bool = True, restore: bool = True
) -> Iterator[None]:
    """While inside, a SIGTERM or a Ctrl-C (SIGINT) calls `on_signal(signum)` on the loop.

    The first signal asks for a graceful stop. A second SIGTERM gets the handler that was
    there before (Prefect's hard way out); a second Ctrl-C raises `KeyboardInterrupt` at
    once, wherever the program is. The handlers that were there before come back on the way
    out. Outside the main thread signals cannot be handled, and this does nothing.

    Args:
        on_signal: Called on the running event loop with the first signal received.
        interrupt: Whether to handle SIGINT too (else only SIGTERM).
        restore: Whether to put back the SIGTERM handler on the way out (SIGINT's always
            is); see `sigterm_stops`.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    handled = [signal.SIGTERM, signal.SIGINT] if interrupt else [signal.SIGTERM]
    previous = {signum: signal.getsignal(signum) for signum in handled}
    received = False

    def handle(signum: int, frame: types.FrameType | None) -> None:
        nonlocal received
        if not received:
            received = True
            with contextlib.suppress(RuntimeError):  # kept past its loop (`restore=False`)
                loop.call_soon_threadsafe(on_signal, signal.Signals(signum))
            return
        if signum == signal.SIGINT:
            # Raised here it interrupts even a blocking call; but code that catches it (a
            # component's task run turns it into a graceful stop) would make it wait, so it
            # is raised from the event loop itself as well, where nothing catches it.
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(_interrupt)
            raise KeyboardInterrupt
        signal.signal(signum, previous[signal.Signals(signum)])
        signal.raise_signal(signum)

    for signum in handled:
        signal.signal(signum, handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if signum == signal.SIGTERM and not restore:
                continue
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def _interrupt() -> _t.NoReturn:
    raise KeyboardInterrupt


async def _hear(flow_run_id: UUID) -> None:
    """Returns once the run's `Cancelling` event is heard; if it cannot listen, never."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    event_filter = EventFilter(
        event=EventNameFilter(name=["prefect.flow-run.Cancelling"]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    try:
        async with get_events_subscriber(filter=event_filter) as subscriber:
            async for _ in subscriber:
                return
    except Exception as exc:  # noqa: BLE001 - the state reader still watches
        _logger.debug("Not listening for the cancellation of %s: %s", flow_run_id, exc)
    await asyncio.Event().wait()  # the subscription ended: leave the watching to `_read`


async def _read(flow_run_id: UUID) -> None:
    """Returns once the run's state is `Cancelling` or `Cancelled`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    cancelling = {StateType.CANCELLING, StateType.CANCELLED}
    async with get_client() as client:
        while True:
            try:
                run = await client.read_flow_run(flow_run_id)
            except Exception as exc:  # noqa: BLE001 - try again at the next period
                _logger.debug("Could not read flow run %s: %s", flow_run_id, exc)
            else:
                if run.state is not None and run.state.type in cancelling:
                    return
            await asyncio.sleep(CANCEL_POLL_INTERVAL)
