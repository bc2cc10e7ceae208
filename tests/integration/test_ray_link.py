"""A worker's link to its driver, on a real Ray: what happens when it drops mid-run."""

from __future__ import annotations

import asyncio
from pathlib import Path
import time

import pytest

from prefect_plugboard import ComponentCrashedError, RayConnector, RayProcess
from prefect_plugboard.process.ray.coordinator_server import driver_coordinator
from prefect_plugboard.testing import Collector
from tests import helpers
from tests.helpers import Forever, ray_leftovers
from tests.prefect_api import final_task_runs


pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


async def test_a_dropped_link_ends_its_workers_components_crashed_never_a_hang(
    tmp_path: Path,
) -> None:
    busy = tmp_path / "busy"
    process = RayProcess(
        components=[Forever(name="busy", marker=str(busy)), Collector(name="sink")],
        connectors=helpers.connect("busy.x -> sink.x", kind=RayConnector),
        worker_sharing="none",
    )
    async with process:
        running = asyncio.ensure_future(process.run())
        deadline = time.monotonic() + 60
        while not Path(f"{busy}.started").exists():  # the model is running
            assert time.monotonic() < deadline and not running.done()
            await asyncio.sleep(0.05)
        (run_id,) = driver_coordinator().rooms.runs()
        (host,) = [i for i, plan in enumerate(process.hosts) if "busy" in plan.components]
        # The driver's end of busy's link goes away, as when the network between them fails.
        driver_coordinator()._runs[run_id].links[host].transport.abort()
        dropped = time.monotonic()
        with pytest.raises(ComponentCrashedError, match="'busy' .* lost its link") as info:
            await asyncio.wait_for(running, 60)

    # Not a hang: the run ended soon after; the worker stopped busy on its own (its destroy()
    # ran), and the driver counted it crashed, since nothing of its end could reach it.
    assert time.monotonic() - dropped < 20
    assert info.value.component == "busy"
    assert busy.read_text() == "destroyed"
    runs = await final_task_runs(process.flow_run_id, 2)
    assert runs["busy"].state is not None and runs["busy"].state.type.value == "CRASHED"
    assert runs["sink"].state is not None and runs["sink"].state.type.value == "CANCELLED"
    assert not ray_leftovers()
