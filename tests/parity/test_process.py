"""Processes as plugboard documents them: step by step, Ctrl-C, constraints, warnings, state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import typing as _t

from parity_complex import Limit, Random, Save
from parity_hello import A, B, pow2
import pytest

from prefect_plugboard.connector import AsyncioConnector, Connector, RayConnector
from prefect_plugboard.exceptions import ComponentError, ConstraintError, NotInitialisedError
from prefect_plugboard.process import LocalProcess, Process, RayProcess
from prefect_plugboard.schemas import ConnectorSpec, Status
from prefect_plugboard.state import PrefectStateBackend
from prefect_plugboard.testing import Collector, FailingComponent, ListSource
from tests.helpers import status
from tests.prefect_api import eventually, final_flow_run, final_task_runs


SCRIPTS = Path(__file__).parent / "scripts"


def hello(kind: str = "local", iters: int = 3, unread: bool = False) -> Process:
    connector: type[Connector] = AsyncioConnector if kind == "local" else RayConnector
    components = [A(name="a", iters=iters), B(name="b", path=str(Path("b.txt").resolve()))]
    pairs = [("a.out_1", "b.in_1")]
    if unread:
        components.append(pow2.component(name="squares"))
        pairs.append(("a.out_1", "squares.in_1"))
    connectors = [connector(spec=ConnectorSpec(source=s, target=t)) for s, t in pairs]
    process_type = LocalProcess if kind == "local" else RayProcess
    return process_type(components=components, connectors=connectors, name="hello")


# ----- step by step -----------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_api", "in_tmp")
async def test_a_process_steps_then_runs_to_the_end(kind: str) -> None:
    process = hello(kind, iters=3)
    assert process.dict()["status"] == "created"
    with pytest.raises(NotInitialisedError, match="call `await process.init\\(\\)`"):
        await process.step()
    await process.init()
    assert status(process) is Status.INIT
    await process.step()
    assert status(process) is Status.WAITING
    assert {c.status for c in process.components.values()} == {Status.WAITING}
    assert Path("b.txt").read_text() == "0\n"
    assert process.components["a"].run_stats.steps == 1
    await process.step()
    assert Path("b.txt").read_text() == "0\n2\n"
    await process.run()
    await process.destroy()
    assert Path("b.txt").read_text() == "0\n2\n4\n"
    assert status(process) is Status.COMPLETED
    assert process.components["a"].out_1 == 2
    assert process.components["b"].run_stats.steps == 3


@pytest.mark.usefixtures("prefect_api", "in_tmp")
async def test_init_runs_every_components_init_before_any_step(kind: str) -> None:
    process = hello(kind, iters=2)
    await process.init()
    try:
        # B's init() opens its file (on Ray, on its worker): it is there before any step.
        assert Path("b.txt").exists()
        assert Path("b.txt").read_text() == ""
        assert status(process) is Status.INIT
        assert {c.status for c in process.components.values()} == {Status.INIT}
        assert process.components["a"].run_stats.steps == 0
    finally:
        await process.destroy()


@pytest.mark.usefixtures("prefect_api", "in_tmp")
async def test_a_step_that_fails_stops_the_process_naming_the_component(kind: str) -> None:
    connector: type[Connector] = AsyncioConnector if kind == "local" else RayConnector
    process_type = LocalProcess if kind == "local" else RayProcess
    process = process_type(
        components=[
            ListSource(name="src", items=[1, 2, 3]),
            FailingComponent(name="bad", fail_on_step=2, error=ValueError("second step")),
            Collector(name="sink"),
        ],
        connectors=[
            connector(spec=ConnectorSpec(source="src.x", target="bad.x")),
            connector(spec=ConnectorSpec(source="bad.y", target="sink.x")),
        ],
    )
    async with process:
        await process.step()
        assert process.components["sink"].received == [1]  # copied back from Ray's workers too
        with pytest.raises(ComponentError, match="component 'bad'") as info:
            await process.step()
        assert isinstance(info.value.__cause__, ValueError)
        assert status(process) is Status.FAILED
        assert process.components["bad"].status is Status.FAILED


# ----- warnings and constraints -----------------------------------------------------------


@pytest.mark.usefixtures("in_tmp")
async def test_an_output_that_nothing_reads_is_warned_about(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    warned: dict[bool, list[str]] = {}
    for unread in (True, False):
        process = hello(kind, unread=unread)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="prefect_plugboard"):
            await process.init()
        await process.destroy()
        warned[unread] = [
            r.getMessage() for r in caplog.records if "not connected" in r.getMessage()
        ]
    assert warned[True] == [
        "Process 'hello': output fields of component 'squares' (pow2) not connected, nothing "
        "reads them: out_1"
    ]
    assert warned[False] == []


@pytest.mark.usefixtures("prefect_api", "in_tmp")
async def test_a_constraint_ends_the_run_naming_it(kind: str) -> None:
    connector: type[Connector] = AsyncioConnector if kind == "local" else RayConnector
    process_type = LocalProcess if kind == "local" else RayProcess
    process = process_type(
        components=[
            Random(name="random", iters=50, seed=1),
            Limit(name="limit", maximum=9),
            Save(name="save", path=str(Path("kept.txt").resolve())),
        ],
        connectors=[
            connector(spec=ConnectorSpec(source="random.x", target="limit.a")),
            connector(spec=ConnectorSpec(source="limit.b", target="save.value_to_save")),
        ],
    )
    async with process:
        with pytest.raises(ConstraintError) as info:
            await process.run()
    error = info.value
    assert error.component == "limit"
    assert error.objective_value == -1.0
    assert str(error).startswith(
        "component 'limit' (Limit) found a constraint violated: a = 9."
    ) and str(error).endswith("is above 9")
    assert isinstance(error.__cause__, ConstraintError)
    assert status(process) is Status.FAILED
    assert status(process.components["limit"]) is Status.FAILED
    run = await final_flow_run(process.flow_run_id)
    assert run.state is not None and run.state.is_failed()
    assert "found a constraint violated" in (run.state.message or "")


# ----- Ctrl-C -----------------------------------------------------------------------------


def start_script(prefect_api: str, *args: str, ray_address: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    if ray_address:  # joins the session's Ray, as a user's script joins a running cluster
        env |= {"RAY_ADDRESS": ray_address, "RAY_AUTH_MODE": "token"}
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / "interrupt.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 90) -> None:
    """Reads the script's output until a line starts with `marker` (a handshake, not a sleep)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if line.startswith(marker):
            return
        assert time.monotonic() < deadline, f"no {marker!r} from the script in {timeout}s"
    error = process.stderr.read() if process.stderr else ""
    pytest.fail(f"the script ended before {marker!r}: {error[-2000:]}")


@contextlib.contextmanager
def script(
    prefect_api: str, *args: str, ray_address: str = ""
) -> _t.Iterator[subprocess.Popen[str]]:
    process = start_script(prefect_api, *args, ray_address=ray_address)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.slow
async def test_ctrl_c_stops_the_model_gracefully(
    prefect_api: str, kind: str, request: pytest.FixtureRequest
) -> None:
    ray_address = request.getfixturevalue("ray_address") if kind == "ray" else ""
    with script(prefect_api, kind, ray_address=ray_address) as running:
        read_until(running, "RUNNING")
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=60)
    assert running.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped"
    assert result["stop_reason"] == "the run was interrupted (Ctrl-C)"
    assert result["components"] == {"source": "stopped", "sink": "stopped"}
    assert result["destroyed"] == {"source": True, "sink": True}
    assert "press Ctrl-C again to stop at once" in err
    from uuid import UUID

    flow_run = await final_flow_run(UUID(result["flow_run_id"]))
    assert flow_run.state is not None and flow_run.state.is_cancelled()
    tasks = await final_task_runs(flow_run.id, 2)
    assert {t.state.type.value for t in tasks.values() if t.state} == {"CANCELLED"}


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(prefect_api: str) -> None:
    with script(prefect_api, "slow") as running:
        read_until(running, "RUNNING")
        running.send_signal(signal.SIGINT)
        read_until(running, "DESTROYING")  # the graceful stop has begun: destroy() takes 60 s
        running.send_signal(signal.SIGINT)
        _, err = running.communicate(timeout=30)  # not the minute destroy() would take
    assert running.returncode != 0
    assert "KeyboardInterrupt" in err


# ----- state ------------------------------------------------------------------------------


@pytest.mark.slow  # reads the state from a process of its own
@pytest.mark.usefixtures("in_tmp")
async def test_state_is_read_from_the_flow_and_task_runs(prefect_api: str, kind: str) -> None:
    process = hello(kind, iters=3)
    assert process.state.job_id is None
    async with process:
        await process.run()
    state = process.state
    assert state.job_id == str(process.flow_run_id)
    await final_task_runs(process.flow_run_id, 2)
    assert await state.get_process_status() is Status.COMPLETED
    component = await state.get_component("b")
    assert component["status"] == "completed" and component["state_name"] == "Completed"
    # The same, from another Python process that only knows the job id.
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, json, sys\n"
            "from prefect_plugboard.state import PrefectStateBackend\n"
            "state = PrefectStateBackend(job_id=sys.argv[1])\n"
            "print(json.dumps(asyncio.run(state.get_process())))\n",
            state.job_id,
        ],
        env={**os.environ, "PREFECT_API_URL": prefect_api},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reader.returncode == 0, reader.stderr[-2000:]
    record = json.loads(reader.stdout.strip().splitlines()[-1])
    assert record["job_id"] == state.job_id
    assert record["status"] == "completed"
    assert {n: c["status"] for n, c in record["components"].items()} == {
        "a": "completed",
        "b": "completed",
    }


@pytest.mark.usefixtures("prefect_api", "in_tmp")
async def test_state_follows_a_run_while_it_runs() -> None:
    process = LocalProcess(
        components=[Ticker(name="random"), Save(name="save", path="out.txt")],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="random.x", target="save.value_to_save"))
        ],
    )
    async with process:
        running = asyncio.ensure_future(process.run())
        await eventually(lambda: _flow_run_id(process), lambda found: found is not None)
        state = process.state
        components = await eventually(
            state.get_components,
            lambda found: (
                {n: c.status for n, c in found.items()}
                == {"random": Status.RUNNING, "save": Status.RUNNING}
            ),
            what="both components running",
        )
        assert set(components) == {"random", "save"}
        assert await state.get_process_status() is Status.RUNNING
        await process.stop()
        await running
    assert status(process) is Status.STOPPED
    await final_task_runs(process.flow_run_id, 2)
    # A stop is not a cancellation: the flow run completes, its components' task runs are
    # Cancelled (README, "Differences from plugboard").
    assert await state.get_process_status() is Status.COMPLETED
    stopped = await state.get_components()
    assert {n: c.status for n, c in stopped.items()} == {
        "random": Status.STOPPED,
        "save": Status.STOPPED,
    }
    with pytest.raises(Exception, match="has no component 'nope'"):
        await PrefectStateBackend(state.job_id).get_component("nope")


async def _flow_run_id(process: Process) -> _t.Any:
    return process.flow_run_id


class Ticker(Random):
    """A random source that takes its time and never ends."""

    async def step(self) -> None:
        self.x = self._random.random()
        await asyncio.sleep(0.01)
