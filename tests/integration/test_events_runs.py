"""Events on real processes: LocalProcess and RayProcess, with task runs in Prefect."""

import asyncio
import csv
from pathlib import Path
import time
import typing as _t

import pytest

from prefect_plugboard import (
    IO,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    FileWriter,
    LocalProcess,
    Process,
    RayConnector,
    RayProcess,
    Status,
)
from prefect_plugboard.events import StopEvent
from tests.helpers import Clock, Listener
from tests.prefect_api import final_flow_run, final_task_runs


class StopWhenWritten(Component):
    """Emits 0, 1, 2, ...; publishes a StopEvent once `rows` rows are in the file."""

    io = IO(outputs=["x"])

    def __init__(self, path: str, rows: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._path, self._rows, self._n = Path(path), rows, 0

    async def step(self) -> None:
        self.x = self._n
        self._n += 1
        if self._path.exists() and len(self._path.read_text().splitlines()) > self._rows:
            self.io.queue_event(StopEvent(source=self.name, data={}))
        await asyncio.sleep(0.001)


PROCESSES = [
    pytest.param(LocalProcess, id="local"),
    pytest.param(RayProcess, id="ray", marks=pytest.mark.ray),
]


@pytest.fixture(autouse=True)
def _ray_for_ray_processes(request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params.get("process_cls") is RayProcess:
        request.getfixturevalue("ray_cluster")


@pytest.mark.timing
@pytest.mark.parametrize("process_cls", PROCESSES)
async def test_three_ticks_reach_two_listeners_and_the_run_ends_at_once(
    process_cls: type[Process],
) -> None:
    process = process_cls(
        components=[Clock(name="clock", ticks=3), Listener(name="a"), Listener(name="b")],
        connectors=[],
    )
    async with process:
        await process.run()
        ended = time.time()
    assert process.components["a"].heard == process.components["b"].heard == [0, 1, 2]
    assert ended - process.components["clock"].last_at < 1.0
    runs = await final_task_runs(process.flow_run_id, 3)
    assert all(r.state is not None and r.state.is_completed() for r in runs.values())


@pytest.mark.parametrize("process_cls", PROCESSES)
async def test_a_stop_event_ends_the_run_with_every_component_stopped(
    process_cls: type[Process], tmp_path: Path
) -> None:
    out = tmp_path / "rows.csv"
    connector = {"maxsize": 1} if process_cls is LocalProcess else {"maxsize": 1, "batch_size": 1}
    connector_cls = RayConnector if process_cls is RayProcess else None
    spec = ConnectorSpec(source="pace.x", target="save.x")
    process = process_cls(
        components=[
            StopWhenWritten(name="pace", path=str(out), rows=5),
            FileWriter(name="save", path=out, field_names=["x"]),
        ],
        connectors=[connector_cls(spec=spec, **connector) if connector_cls else spec],
    )
    async with process:
        await process.run()
    assert process.status is Status.STOPPED
    assert "StopEvent from component 'pace'" in (process.stop_reason or "")
    assert {c.status for c in process.components.values()} == {Status.STOPPED}
    with out.open() as f:
        rows = [int(r[0]) for r in list(csv.reader(f))[1:]]
    assert rows == list(range(len(rows))) and len(rows) >= 5
    assert len(rows) == process.components["save"].run_stats.steps
    runs = await final_task_runs(process.flow_run_id, 2)
    assert {r.state.type.value for r in runs.values() if r.state} == {"CANCELLED"}
    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_completed()
