"""Noticing cancellations of a study's flow run and of its trials', with one watcher for all.

A run of a model watches its own flow run (an event subscription and a poll every 2 s). A
study runs trials by the hundred, so its trials do not: the study listens once for every
flow run's `Cancelling` event and reads the states of its own run and of its running
trials in one request per poll. Cancelling the study's run stops the study; cancelling a
trial's run stops that trial only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
import contextlib
import logging
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from prefect_plugboard.process.cancellation import CANCEL_POLL_INTERVAL


__all__ = ["watch_study"]

_logger = logging.getLogger(__name__)

_CANCELLING = {StateType.CANCELLING, StateType.CANCELLED}
_PREFIX = "prefect.flow-run."


async def watch_study(
    study: UUID,
    trials: Callable[[], Collection[UUID]],
    on_cancel: Callable[[UUID], None],
) -> None:
    """Calls `on_cancel(id)` once for the study's run or a running trial's being cancelled.

    Runs until cancelled itself.

    Args:
        study: The study's flow run.
        trials: The flow runs of the trials running now.
        on_cancel: Called with the flow run being cancelled (the study's, or a trial's).
    """
    told: set[UUID] = set()

    def cancelling(flow_run: UUID) -> None:
        if flow_run not in told and (flow_run == study or flow_run in trials()):
            told.add(flow_run)
            on_cancel(flow_run)

    watchers = [
        asyncio.ensure_future(_hear(cancelling)),
        asyncio.ensure_future(_read(study, trials, cancelling)),
    ]
    try:
        await asyncio.gather(*watchers)
    finally:
        for watcher in watchers:
            watcher.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*watchers, return_exceptions=True)


async def _hear(cancelling: Callable[[UUID], None]) -> None:
    """Hears every flow run's `Cancelling` event; if it cannot listen, leaves it to `_read`."""
    event_filter = EventFilter(
        event=EventNameFilter(name=["prefect.flow-run.Cancelling"]),
        resource=EventResourceFilter(id_prefix=[_PREFIX]),
    )
    try:
        async with get_events_subscriber(filter=event_filter) as subscriber:
            async for event in subscriber:
                resource = event.resource.id
                with contextlib.suppress(ValueError):
                    cancelling(UUID(resource.removeprefix(_PREFIX)))
    except Exception as exc:  # noqa: BLE001 - the state reader still watches
        _logger.debug("Not listening for cancellations: %s", exc)
    await asyncio.Event().wait()


async def _read(
    study: UUID, trials: Callable[[], Collection[UUID]], cancelling: Callable[[UUID], None]
) -> None:
    """Reads the states of the study's run and its running trials', one request a period."""
    async with get_client() as client:
        while True:
            await asyncio.sleep(CANCEL_POLL_INTERVAL)
            ids = [study, *trials()]
            try:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
                )
            except Exception as exc:  # noqa: BLE001 - try again at the next period
                _logger.debug("Could not read the study's flow runs: %s", exc)
                continue
            for run in runs:
                if run.state is not None and run.state.type in _CANCELLING:
                    cancelling(run.id)
