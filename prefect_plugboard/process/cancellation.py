"""Noticing that a flow run is being cancelled from Prefect (the UI, the CLI, the API).

Prefect delivers a cancellation to a deployment's run by signalling its process; a run
started from a script or a notebook gets no signal at all. `watch_for_cancellation` notices
either way: it listens for the flow run's `Cancelling` event, and, for an API whose events
it cannot hear (another process's temporary server writing to the same database), reads the
run's state every `CANCEL_POLL_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter


__all__ = ["CANCEL_POLL_INTERVAL", "watch_for_cancellation"]

_logger = logging.getLogger(__name__)

CANCEL_POLL_INTERVAL = 2.0
"""How often (s) the run's state is read, besides listening for its events."""
_CANCELLING = {StateType.CANCELLING, StateType.CANCELLED}


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


async def _hear(flow_run_id: UUID) -> None:
    """Returns once the run's `Cancelling` event is heard; if it cannot listen, never."""
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
    async with get_client() as client:
        while True:
            try:
                run = await client.read_flow_run(flow_run_id)
            except Exception as exc:  # noqa: BLE001 - try again at the next period
                _logger.debug("Could not read flow run %s: %s", flow_run_id, exc)
            else:
                if run.state is not None and run.state.type in _CANCELLING:
                    return
            await asyncio.sleep(CANCEL_POLL_INTERVAL)
