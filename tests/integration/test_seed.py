"""The seed tutorial's code, imports changed, on LocalProcess."""

import csv
from pathlib import Path

import pytest

from prefect_plugboard import Status
from tests.helpers import load_seed
from tests.prefect_api import final_flow_run, final_task_runs, wait_for_log


SEED = Path(__file__).resolve().parents[2] / "examples" / "running_in_parallel" / "hello_ray.py"


@pytest.mark.slow  # the seed's sleeps: 1.5 s an iteration
async def test_seed_model_writes_a_row_per_iteration_and_every_task_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    seed = load_seed()
    process = await seed.local_main(3)

    with (tmp_path / "ray.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["timestamp"] and len(rows) == 4
    assert process.status is Status.COMPLETED

    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_completed()
    runs = await final_task_runs(process.flow_run_id, 5)
    assert set(runs) == {"input", "slow-sleep", "very-slow-sleep", "timestamper", "save-results"}
    assert all(r.state is not None and r.state.is_completed() for r in runs.values())
    assert "Iterator" in runs["input"].tags
    await wait_for_log(runs["input"].id, "`self.out_1`")
