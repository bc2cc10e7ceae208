"""Reading what a run left in the Prefect API.

Prefect records task-run states from events, so the API catches up shortly after a run ends;
these helpers poll until what they wait for is there or a deadline passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import time
import typing as _t
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.client.schemas.objects import FlowRun, Log, TaskRun


T = _t.TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float = 20.0,
    what: str = "condition",
) -> T:
    """Polls `probe()` until `done(result)`; fails with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        await asyncio.sleep(0.1)


async def read_flow_run(flow_run_id: UUID) -> FlowRun:
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


async def read_task_runs(flow_run_id: UUID) -> list[TaskRun]:
    async with get_client() as client:
        return await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )


async def settled_task_runs(flow_run_id: UUID, count: int, timeout: float = 20.0) -> list[TaskRun]:
    """Waits until the flow run has `count` task runs, all in a final state."""

    def settled(runs: list[TaskRun]) -> bool:
        return len(runs) == count and all(r.state is not None and r.state.is_final() for r in runs)

    return await eventually(
        lambda: read_task_runs(flow_run_id), settled, timeout, f"{count} final task runs"
    )


async def final_task_runs(
    flow_run_id: UUID | None, count: int, timeout: float = 20.0
) -> dict[str, TaskRun]:
    """Waits until the flow run has `count` task runs, all in a final state; by name."""
    assert flow_run_id is not None, "the process has no flow run"
    return {run.name: run for run in await settled_task_runs(flow_run_id, count, timeout)}


async def final_flow_run(flow_run_id: UUID | None, timeout: float = 20.0) -> FlowRun:
    assert flow_run_id is not None, "the process has no flow run"
    return await eventually(
        lambda: read_flow_run(flow_run_id),
        lambda run: run.state is not None and run.state.is_final(),
        timeout,
        "a final flow-run state",
    )


async def child_flow_runs(flow_run_id: UUID) -> list[FlowRun]:
    """The flow runs whose parent is `flow_run_id` (its subflow runs), oldest first."""
    from prefect.client.schemas.filters import FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )


async def flow_runs_of(flow_name: str) -> list[FlowRun]:
    """The flow runs of the flow `flow_name`: a test that must show that its process started
    none gives it a name of its own (the API is shared with the tests running beside it)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name]))
        )


async def task_run_logs(task_run_id: UUID) -> list[Log]:
    async with get_client() as client:
        return await client.read_logs(
            log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run_id]))
        )


async def wait_for_log(task_run_id: UUID, text: str, timeout: float = 20.0) -> list[Log]:
    return await eventually(
        lambda: task_run_logs(task_run_id),
        lambda logs: any(text in log.message for log in logs),
        timeout,
        f"a log line containing {text!r}",
    )


async def read_artifacts(flow_run_id: UUID) -> list[_t.Any]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


async def run_graph(flow_run_id: UUID) -> dict[str, set[str]]:
    """The flow run's graph (`/flow_runs/{id}/graph-v2`) as task-run name -> parent names."""
    async with get_client() as client:
        response = await client._client.get(f"/flow_runs/{flow_run_id}/graph-v2")
        response.raise_for_status()
        nodes = dict(response.json()["nodes"])
    names = {node_id: node["label"] for node_id, node in nodes.items()}
    return {
        names[node_id]: {names[p["id"]] for p in node["parents"] if p["id"] in names}
        for node_id, node in nodes.items()
    }
