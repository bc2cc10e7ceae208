"""Ending, from the driver, the task run of a component whose worker died.

A killed worker leaves its task run in whatever its engine managed to report; these tests put
the API in each of those situations and check that the component ends up under its own name,
in the state the driver gave it.
"""

from __future__ import annotations

import uuid

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.states import Crashed, Running

from prefect_plugboard.process.tasks import component_task, end_task_run
from prefect_plugboard.testing import PassThrough


@flow(name="plugboard-end-task-run-test")
def _owner() -> None:
    """Only gives the task runs below a flow run to belong to."""


async def _flow_run_id() -> uuid.UUID:
    async with get_client() as client:
        return (await client.create_flow_run(_owner)).id


async def _read(task_run_id: uuid.UUID) -> TaskRun:
    async with get_client() as client:
        return await client.read_task_run(task_run_id)


async def test_a_task_run_prefect_never_heard_of_is_created_in_its_final_state() -> None:
    task = component_task(PassThrough(name="victim"), _noop)
    flow_run_id, task_run_id = await _flow_run_id(), uuid.uuid4()

    await end_task_run(task, flow_run_id, task_run_id, Crashed(message="worker died"))

    run = await _read(task_run_id)
    assert run.flow_run_id == flow_run_id
    assert run.name == "victim"
    assert run.state is not None and run.state.is_crashed()
    assert run.state.message == "worker died"


async def test_a_task_run_left_with_its_provisional_name_gets_the_components_name() -> None:
    # What a worker killed between its engine's first and second event leaves behind: the
    # task run exists, still named `<task>-<key>`, not yet renamed to the component's name.
    task = component_task(PassThrough(name="victim"), _noop)
    flow_run_id, task_run_id = await _flow_run_id(), uuid.uuid4()
    async with get_client() as client:
        await client.create_task_run(
            task, flow_run_id, dynamic_key="0a1", id=task_run_id, name="victim-0a1", state=Running()
        )

    await end_task_run(task, flow_run_id, task_run_id, Crashed(message="worker died"))

    run = await _read(task_run_id)
    assert run.name == "victim"
    assert run.state is not None and run.state.is_crashed()


async def _noop(upstream: object = None) -> None:
    """A task body never run: these tests only create and end task runs."""
