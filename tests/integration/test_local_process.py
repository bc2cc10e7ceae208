"""LocalProcess against a real Prefect API: flow runs, task runs, states and logs."""

import asyncio
import csv
import os
from pathlib import Path
import signal
import typing as _t
import uuid

from prefect import flow
from prefect.client.orchestration import get_client
import pytest

from prefect_plugboard import (
    IO,
    Component,
    ComponentError,
    FileWriter,
    LocalProcess,
    Status,
    ValidationError,
)
from prefect_plugboard.testing import Collector, FailingComponent, ListSource, PassThrough
from tests import helpers
from tests.helpers import Forever, connect
from tests.prefect_api import (
    eventually,
    final_flow_run,
    final_task_runs,
    flow_runs_of,
    read_artifacts,
    wait_for_log,
)


class Chatty(Component):
    """Logs every value it sees."""

    io = IO(inputs=["x"])

    async def step(self) -> None:
        self.logger.info("chatty saw %r", self.x)


async def test_one_flow_run_with_one_completed_task_run_per_component() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[1, 2, 3]),
            PassThrough(name="relay"),
            sink,
            Chatty(name="chatty"),
        ],
        connectors=connect("src.x -> relay.x", "relay.y -> sink.x", "src.x -> chatty.x"),
        name="integration-chain",
    )
    async with process:
        await process.run()
    assert sink.received == [1, 2, 3]
    assert process.status is Status.COMPLETED
    assert process.flow_run_id is not None

    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_completed()
    async with get_client() as client:
        assert (await client.read_flow(flow_run.flow_id)).name == "integration-chain"
    runs = await final_task_runs(process.flow_run_id, 4)
    assert set(runs) == {"src", "relay", "sink", "chatty"}
    assert all(run.state is not None and run.state.is_completed() for run in runs.values())
    assert set(runs["relay"].tags) == {"plugboard", "PassThrough", "relay"}
    assert set(runs["src"].tags) == {"plugboard", "ListSource", "src"}

    logs = await wait_for_log(runs["chatty"].id, "chatty saw 3")
    assert [log.message for log in logs if "chatty saw" in log.message] == [
        "chatty saw 1",
        "chatty saw 2",
        "chatty saw 3",
    ]


async def test_inside_a_user_flow_the_task_runs_join_its_flow_run() -> None:
    sink = Collector(name="sink")

    @flow(name="user-flow")
    async def user_flow() -> _t.Any:
        from prefect.runtime import flow_run

        process = LocalProcess(
            components=[ListSource(name="src", items="abc"), sink],
            connectors=connect("src.x -> sink.x"),
        )
        await process.run()
        return flow_run.id, process.flow_run_id

    outer_id, joined_id = await user_flow()
    assert str(joined_id) == outer_id
    assert sink.received == ["a", "b", "c"]
    runs = await final_task_runs(joined_id, 2)
    assert set(runs) == {"src", "sink"}


async def test_a_failing_component_fails_the_run_and_cancels_the_others(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    boom = KeyError("no such key")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=range(100)),
            FailingComponent(name="bad", fail_on_step=5, error=boom),
            FileWriter(name="save", path=out, field_names=["x"]),
            Collector(name="idle"),
        ],
        connectors=connect("src.x -> bad.x", "bad.y -> save.x", "src.x -> idle.x", maxsize=1),
    )
    with pytest.raises(ComponentError) as info:
        async with process:
            await process.run()
    assert info.value.component == "bad"
    assert info.value.__cause__ is boom
    assert process.status is Status.FAILED

    with out.open() as f:
        rows = list(csv.reader(f))
    written = process.components["save"].run_stats.steps
    assert rows[0] == ["x"] and len(rows) - 1 == written >= 1
    assert [int(r[0]) for r in rows[1:]] == list(range(written))

    assert process.flow_run_id is not None
    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_failed()
    assert "'bad'" in (flow_run.state.message or "")
    runs = await final_task_runs(process.flow_run_id, 4)
    states = {name: run.state.type.value for name, run in runs.items() if run.state}
    assert states == {"src": "CANCELLED", "bad": "FAILED", "save": "CANCELLED", "idle": "CANCELLED"}
    assert "bad" in (runs["save"].state.message or "")  # type: ignore[union-attr]
    summary = await eventually(
        lambda: read_artifacts(process.flow_run_id),  # type: ignore[arg-type]
        lambda found: any(a.type == "table" for a in found),
        what="the summary artifact",
    )
    description = next(a.description for a in summary if a.type == "table")
    assert description.startswith(f"Process {process.name!r} failed: ")


async def test_an_invalid_graph_is_refused_before_any_flow_run() -> None:
    process = LocalProcess(
        name=f"invalid-graph-{uuid.uuid4().hex[:8]}",
        components=[ListSource(name="src", items=[1]), Collector(name="sink")],
        connectors=connect("src.x -> snk.x"),
    )
    with pytest.raises(ValidationError, match="; did you mean 'sink'"):
        await process.run()
    assert await flow_runs_of(process.flow_name) == []
    assert process.status is Status.CREATED


async def test_a_process_runs_once() -> None:
    process = LocalProcess(
        components=[ListSource(name="src", items=[1]), Collector(name="sink")],
        connectors=connect("src.x -> sink.x"),
    )
    await process.run()
    with pytest.raises(RuntimeError, match="runs once"):
        await process.run()


async def test_the_run_shows_its_graph_its_links_and_a_summary() -> None:
    from tests.prefect_api import run_graph

    sink = Collector(name="sink")
    process = LocalProcess(
        components=[ListSource(name="src", items=[1, 2]), PassThrough(name="relay"), sink],
        connectors=connect("src.x -> relay.x", "relay.y -> sink.x"),
        name="shown-process",
    )
    await process.run()
    assert process.flow_run_id is not None
    artifacts = await eventually(
        lambda: read_artifacts(process.flow_run_id),  # type: ignore[arg-type]
        lambda found: len(found) == 2,
        what="two artifacts",
    )
    by_key = {a.key: a for a in artifacts}
    graph = by_key["shown-process-graph"]
    assert graph.type == "markdown" and "```mermaid\nflowchart LR" in str(graph.data)
    assert "src@{ shape: rounded, label: ListSource<br>**src** } --> relay@{" in str(graph.data)
    table = by_key["shown-process-components"]
    assert table.type == "table"
    assert table.description == "Process 'shown-process' completed"
    rows = {row["component"]: row for row in __import__("json").loads(table.data)}
    assert rows["sink"]["steps"] == 2 and rows["sink"]["status"] == "completed"
    assert rows["sink"]["exports"] == "received=[1, 2]"
    await final_task_runs(process.flow_run_id, 3)
    parents = await run_graph(process.flow_run_id)
    assert parents == {"src": set(), "relay": {"src"}, "sink": {"relay"}}


_LATE_SIGTERM = """
import asyncio, os, signal, sys
from prefect import flow
from prefect_plugboard.flows import run_process

async def run_then_get_sigterm(config: str):
    state = await run_process.fn(config)
    # Where a runner's SIGTERM for a run that has already stopped lands: after the flow's
    # function, before the engine has recorded the final state.
    os.kill(os.getpid(), signal.SIGTERM)
    return state

late = flow(run_then_get_sigterm, name="late-sigterm", persist_result=False)
print(asyncio.run(late(sys.argv[1], return_state=True)).type.value)
"""


@pytest.mark.slow  # the run is a process of its own
def test_a_sigterm_after_the_run_process_flow_has_stopped_does_not_crash_it(
    tmp_path: Path, prefect_api: str
) -> None:
    # The cause of served runs cancelled from the UI ending `Crashed`: Prefect's handler,
    # back in place once the run had stopped, turned the runner's SIGTERM into a crash.
    model = tmp_path / "model.yaml"
    model.write_text(
        "plugboard:\n  process:\n    args:\n      name: late\n      components:\n"
        "      - {type: prefect_plugboard.testing.ListSource, args: {name: src, items: [1, 2]}}\n"
        "      - {type: prefect_plugboard.testing.Collector, args: {name: sink}}\n"
        "      connectors:\n      - {source: src.x, target: sink.x}\n"
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    done = helpers.python_code(_LATE_SIGTERM, str(model), cwd=tmp_path, env=env, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "COMPLETED"), done.stderr[-3000:]


async def _cancel_from_prefect(process: LocalProcess) -> None:
    from prefect.states import Cancelling

    assert process.flow_run_id is not None
    async with get_client() as client:
        await client.set_flow_run_state(process.flow_run_id, Cancelling(), force=True)
    # The run notices by itself: nothing signals a run started from a script.


async def _send_sigterm(process: LocalProcess) -> None:
    # SIGTERM is how Prefect cancels a served or pooled run. Prefect's own handler raises
    # wherever the program is, inside a component too (a Crashed task run); here it is a stop.
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize(
    ("cancel", "reason"),
    [
        (_cancel_from_prefect, "the flow run was cancelled from Prefect"),
        (_send_sigterm, "the run received SIGTERM"),
    ],
    ids=["from-prefect", "sigterm"],
)
async def test_a_cancelled_script_run_stops_and_every_task_run_ends_cancelled(
    cancel: _t.Callable[[LocalProcess], _t.Awaitable[None]], reason: str, tmp_path: Path
) -> None:
    process = LocalProcess(
        components=[Forever(name="forever", marker=str(tmp_path / "m")), Collector(name="sink")],
        connectors=connect("forever.x -> sink.x"),
    )
    running = asyncio.ensure_future(process.run())
    while not process.components["sink"].received:
        await asyncio.sleep(0.05)
    await cancel(process)
    await asyncio.wait_for(running, 10)
    assert process.status is Status.STOPPED
    assert process.stop_reason == reason
    assert (tmp_path / "m").read_text() == "destroyed"
    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.type.value == "CANCELLED"
    runs = await final_task_runs(process.flow_run_id, 2)
    assert {r.state.type.value for r in runs.values() if r.state} == {"CANCELLED"}
