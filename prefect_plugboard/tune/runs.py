"""A trial's flow run: a child of the study's flow run, created without Prefect's slow retry.

Calling a flow inside a flow makes a subflow run: Prefect first creates a task run in the
parent that stands for it, then the child flow run. On the SQLite database of a default
Prefect server both requests read, then write; when another write lands in between (the
server recording the previous trial's task-run events, another trial starting) SQLite
refuses the write at once, the server answers 503, and Prefect's client waits 2 s (then 4,
8...) before asking again. Measured here: a trial started within ~2 s of another's end lost
2 s about half the time, and 2 trials starting together lost 2-7 s. A study starts a trial
every fraction of a second, so it creates the same two records itself, asking again after
50 ms while the database is busy, and runs the trial's flow in the run it created
(`run_flow_async`). The UI shows exactly what a subflow shows: the trial nested in the
study's run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
import contextvars
import typing as _t
import uuid

import httpx
from prefect import Flow, Task
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Pending


__all__ = ["TrialRuns", "quickly"]

T = _t.TypeVar("T")

BUSY_RETRY_AFTER = "0.05"
"""How soon (s) Prefect's client asks again when the API answers 503 (its database busy)."""
BUSY_ATTEMPTS = 20
"""How often a request is made again once the client's own retries are spent."""
_QUICK: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "plugboard_quick_retry", default=False
)


async def _ask_again_soon(response: httpx.Response) -> None:
    """Response hook: a 503 to a request made in `quickly` is retried after 50 ms, not 2 s."""
    if response.status_code == 503 and _QUICK.get() and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = BUSY_RETRY_AFTER


def _hook(client: PrefectClient) -> None:
    http = getattr(client, "_client", None)  # the client's httpx client
    hooks = getattr(http, "event_hooks", {}).get("response")
    if isinstance(hooks, list) and _ask_again_soon not in hooks:
        hooks.append(_ask_again_soon)


async def quickly(client: PrefectClient, call: Callable[[], Awaitable[T]]) -> T:
    """Makes an API request; while the API answers 503, asks again within tens of ms.

    Prefect's client retries a 503 itself (5 times); inside this call its pauses are 50 ms
    instead of 2, 4, 8... s. Should the API stay busy through them, the request is made
    again, with pauses growing to half a second, up to `BUSY_ATTEMPTS` times.
    """
    _hook(client)
    token = _QUICK.set(True)
    busy_backoff = 0.05
    try:
        for attempt in range(BUSY_ATTEMPTS):
            try:
                return await call()
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 503 or attempt == BUSY_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(busy_backoff)
            busy_backoff = min(busy_backoff * 2, 0.5)
    finally:
        _QUICK.reset(token)
    msg = "unreachable"  # pragma: no cover - the last attempt returns or raises
    raise AssertionError(msg)  # pragma: no cover


class TrialRuns:
    """Creates the flow runs of a study's trials, as children of the current flow run.

    Args:
        flow: The flow each trial is a run of.
    """

    def __init__(self, flow: Flow[..., _t.Any]) -> None:
        self.flow = flow
        # What a subflow's parent task run is a run of: a task named after the flow.
        self._tracking = Task(name=flow.name, fn=flow.fn, version=flow.version)

    async def create(
        self,
        parameters: Mapping[str, _t.Any],
        *,
        name: str,
        key: str,
        tags: Iterable[str],
    ) -> FlowRun:
        """Creates a trial's flow run (`Pending`), linked to the current flow run.

        Args:
            parameters: The flow's parameters.
            name: The flow run's name.
            key: Unique among the trials of the parent run.
            tags: The flow run's tags.

        Raises:
            RuntimeError: Not inside a flow run.
        """
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            msg = "a trial's flow run is created from inside the study's flow run"
            raise RuntimeError(msg)
        client = _t.cast(PrefectClient, context.client)  # a flow run on the event loop
        parent_id = context.flow_run.id
        tags = list(tags)
        task_run_id = uuid.uuid4()
        tracking = await quickly(
            client,
            lambda: client.create_task_run(
                task=self._tracking,
                flow_run_id=parent_id,
                dynamic_key=key,
                id=task_run_id,
                name=name,
                extra_tags=tags,
                state=Pending(),
            ),
        )
        serialized = self.flow.serialize_parameters(dict(parameters))
        flow_run = await quickly(
            client,
            lambda: client.create_flow_run(
                flow=self.flow,
                name=name,
                parameters=serialized,
                parent_task_run_id=tracking.id,
                tags=tags,
                state=Pending(),
            ),
        )
        flow_run.parameters = dict(parameters)
        return flow_run
