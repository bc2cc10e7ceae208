"""RayProcess on a real Ray instance and a real Prefect API."""

import asyncio
import csv
import datetime
import os
from pathlib import Path
import signal
import statistics
import time
import typing as _t

import pytest

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ComponentCrashedError,
    ComponentError,
    ConnectorSpec,
    RayConnector,
    RayProcess,
    Resource,
    ResourceError,
    Status,
    ValidationError,
)
from prefect_plugboard.process.ray.placement import WorkerSharing
from prefect_plugboard.process.supervision import ReportedError
from prefect_plugboard.testing import Collector, FailingComponent, ListSource, PassThrough
from tests import helpers
from tests.conftest import UNREACHABLE_API
from tests.helpers import Forever, load_seed, ray_leftovers
from tests.prefect_api import final_flow_run, final_task_runs, wait_for_log


pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


def connect(*pairs: str, **settings: _t.Any) -> list[RayConnector]:
    return helpers.connect(*pairs, kind=RayConnector, **settings)


@pytest.mark.timing
async def test_seed_model_on_ray_overlaps_the_sleeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.chdir(tmp_path)
    process = await load_seed().ray_main(6)
    assert ray.is_initialized(), "a Ray instance found running must be left running"
    with (tmp_path / "ray.csv").open() as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == 6
    stamps = [datetime.datetime.fromisoformat(r[0]) for r in rows]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    steady = [g for g in gaps if g > 0.2]  # the first rows may arrive together, at start-up
    # 1.5 s a row if the sleeps took turns; the median, as one row a busy machine held back
    # must not hide that the others came every second.
    assert steady and statistics.median(steady) < 1.25, gaps

    assert process.status is Status.COMPLETED
    assert process.components["very-slow-sleep"].run_stats.steps == 6
    runs = await final_task_runs(process.flow_run_id, 5)
    assert all(r.state is not None and r.state.is_completed() for r in runs.values())
    await wait_for_log(runs["input"].id, "`self.out_1`")  # a log line written on a worker
    assert not ray_leftovers()


class Introspect(PassThrough):
    """Notes what its worker holds of Prefect, logs a little, prints a little."""

    exports = ["api_url", "written"]

    async def init(self) -> None:
        self.api_url = os.environ.get("PREFECT_API_URL")
        self.written: dict[str, tuple[float, float]] = {}
        self._log("initialised")

    def _log(self, message: str) -> None:
        """Logs `message`, noting the worker's clock just before and just after."""
        before = time.time()
        self.logger.info(message)
        self.written[message] = (before, time.time())

    async def step(self) -> None:
        self._log(f"step {self.x}")
        print(f"printed {self.x}")
        if self.x == 1:
            try:
                raise ValueError("a handled error")
            except ValueError:
                self.logger.exception("with its traceback")
        await super().step()


async def test_workers_never_reach_prefect_and_their_logs_reach_the_task_runs() -> None:
    # (That a worker imports nothing of Prefect is checked on fresh workers, in
    # test_ray_clusters.py: the session's workers are reused, and tests' own code may.)
    from prefect import flow

    @flow(log_prints=True)
    async def run_it() -> RayProcess:
        process = RayProcess(
            components=[
                ListSource(name="src", items=[0, 1, 2]),
                Introspect(name="probe"),
                Collector(name="sink"),
            ],
            connectors=connect("src.x -> probe.x", "probe.y -> sink.x"),
        )
        async with process:
            await process.run()
        return process

    started = time.time()
    process = await run_it()
    assert process.components["probe"].api_url == UNREACHABLE_API  # told of one, never used it
    assert process.components["sink"].received == [0, 1, 2]

    runs = await final_task_runs(process.flow_run_id, 3)
    logs = await wait_for_log(runs["probe"].id, "finished")
    lines = [log.message for log in logs]
    expected = [
        "initialised",
        "step 0",
        "printed 0",
        "step 1",
        "printed 1",
        "with its traceback",
        "step 2",
        "printed 2",
    ]
    positions = [next(i for i, m in enumerate(lines) if m.startswith(e)) for e in expected]
    assert positions == sorted(positions), lines  # every line, in the order it was written
    traceback_line = lines[positions[5]]
    assert "Traceback" in traceback_line and "ValueError: a handled error" in traceback_line
    written = process.components["probe"].written
    assert sorted(written) == ["initialised", "step 0", "step 1", "step 2"]
    for log in logs:  # the worker's own timestamps, not when the driver got them
        if log.message in written:
            before, after = written[log.message]
            assert before - 1e-6 <= log.timestamp.timestamp() <= after + 1e-6, log.message
    assert all(started <= log.timestamp.timestamp() for log in logs)


class Where(Component):
    """Reports the resources Ray assigned to it and where it ran."""

    io = IO(inputs=["x"], outputs=["y"])
    exports = ["assigned", "node"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.assigned: dict[str, float] = {}
        self.node = ""

    async def init(self) -> None:
        import ray

        context = ray.get_runtime_context()
        self.assigned = dict(context.get_assigned_resources())
        self.node = context.get_node_id()

    async def step(self) -> None:
        self.y = self.x


class GPUWhere(Where):
    resources = Resource(cpu="500m", gpu=1)


@pytest.mark.parametrize("sharing", ["small", "none", "all"])
async def test_each_worker_is_assigned_exactly_what_its_components_declared(
    sharing: WorkerSharing,
) -> None:
    components = [
        ListSource(name="src", items=[1, 2]),
        Where(name="default"),
        Where(name="override", resources=Resource(cpu=1.0, memory="512Mi")),
        GPUWhere(name="gpu"),
        GPUWhere(name="custom", resources={"cpu": "250m", "resources": {"custom_hardware": 2}}),
        Collector(name="sink"),
    ]
    process = RayProcess(
        components=components,
        connectors=connect(
            "src.x -> default.x",
            "default.y -> override.x",
            "override.y -> gpu.x",
            "gpu.y -> custom.x",
            "custom.y -> sink.x",
        ),
        worker_sharing=sharing,
    )
    async with process:
        hosts = [host.components for host in process.hosts]
        await process.run()
    assigned = {n: process.components[n].assigned for n in ("default", "override", "gpu", "custom")}
    own = {
        "default": {"CPU": 0.001},
        "override": {"CPU": 1.0, "memory": 536870912.0},
        "gpu": {"CPU": 0.5, "GPU": 1.0},
        "custom": {"CPU": 0.25, "custom_hardware": 2.0},
    }
    everyone = {"CPU": 1.753, "GPU": 1.0, "memory": 536870912.0, "custom_hardware": 2.0}
    if sharing == "small":
        # Components asking for less than a CPU share a worker, which gets their sum.
        assert assigned == {**own, "default": {"CPU": 0.003}}
        assert sorted(hosts) == sorted(
            [("src", "default", "sink"), ("override",), ("gpu",), ("custom",)]
        )
    elif sharing == "none":
        assert assigned == own
        assert len(hosts) == 6
    else:
        assert assigned == dict.fromkeys(own, everyone)
        assert len(hosts) == 1
    assert process.components["sink"].received == [1, 2]  # exports came back from the worker


async def test_impossible_requests_are_refused_in_seconds_naming_the_component() -> None:
    started = time.monotonic()
    process = RayProcess(
        components=[
            ListSource(name="src", items=[1]),
            Where(name="greedy", resources={"gpu": 2}),
            Where(name="exotic", resources={"resources": {"quantum": 1}}),
            Collector(name="sink"),
        ],
        connectors=connect("src.x -> greedy.x", "greedy.y -> exotic.x", "exotic.y -> sink.x"),
    )
    with pytest.raises(ResourceError) as info:
        await process.run()
    assert time.monotonic() - started < 10
    text = str(info.value)
    assert "'greedy' (Where) asks for CPU 0.001, GPU 2" in text and "no single node" in text
    assert "'exotic' (Where)" in text and "'quantum'" in text and "custom_hardware" in text
    assert isinstance(info.value, ValidationError)
    assert process.flow_run_id is None


async def test_a_graph_that_cannot_all_run_at_once_is_refused() -> None:
    process = RayProcess(
        components=[
            ListSource(name="src", items=[1], resources={"cpu": 2}),
            Where(name="a", resources={"cpu": 3}),
            Collector(name="sink"),
        ],
        connectors=connect("src.x -> a.x", "a.y -> sink.x"),
    )
    with pytest.raises(ResourceError, match=r"together ask for CPU 5.001.*whole cluster has CPU 4"):
        await process.init()


async def test_an_asyncio_connector_is_refused_on_ray() -> None:
    process = RayProcess(
        components=[ListSource(name="src", items=[1]), Collector(name="sink")],
        connectors=[AsyncioConnector(spec=ConnectorSpec(source="src.x", target="sink.x"))],
    )
    with pytest.raises(ValidationError, match=r"connectors\[0\].*needs a Ray channel: RayC"):
        await process.init()


class Raise(FailingComponent):
    """Fails once `ready` exists (so the others are surely running), recording when."""

    def __init__(self, ready: str, **kwargs: _t.Any) -> None:
        super().__init__(**kwargs)
        self._ready = Path(ready)

    async def step(self) -> None:
        if self._steps + 1 == self._fail_on_step:
            while not self._ready.exists():
                await asyncio.sleep(0.05)
            self._error = RuntimeError(f"raised at {time.time()}")
        await super().step()


def fails_beside(busy: Forever, **options: _t.Any) -> RayProcess:
    """`src -> bad -> sink`, `bad` failing on its third step once `busy` (`-> drain`) runs."""
    return RayProcess(
        components=[
            ListSource(name="src", items=range(20)),
            Raise(name="bad", fail_on_step=3, ready=f"{busy.marker}.started"),
            Collector(name="sink"),
            busy,
            Collector(name="drain"),
        ],
        connectors=connect("src.x -> bad.x", "bad.y -> sink.x", f"{busy.name}.x -> drain.x"),
        **options,
    )


@pytest.mark.timing
async def test_a_failure_on_ray_stops_the_run_within_two_seconds(tmp_path: Path) -> None:
    marker = tmp_path / "destroyed"
    process = fails_beside(Forever(name="busy", marker=str(marker)))
    with pytest.raises(ComponentError) as info:
        async with process:
            await process.run()
    noticed = time.time()
    cause = info.value.__cause__
    assert info.value.component == "bad" and isinstance(cause, RuntimeError)
    raised_at = float(str(cause).split()[-1])
    assert noticed - raised_at < 2.0
    assert marker.read_text() == "destroyed"
    assert process.components["busy"].status is Status.STOPPED
    assert process.components["bad"].status is Status.FAILED

    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_failed()
    runs = await final_task_runs(process.flow_run_id, 5)
    states = {name: run.state.type.value for name, run in runs.items() if run.state}
    assert states == {
        "src": "CANCELLED",
        "bad": "FAILED",
        "sink": "CANCELLED",
        "busy": "CANCELLED",
        "drain": "CANCELLED",
    } or (
        states["bad"] == "FAILED"
        and states["busy"] == "CANCELLED"
        and states["drain"] == "CANCELLED"
    )
    assert not ray_leftovers()


class Stubborn(Forever):
    """A source whose step blocks its worker's event loop: a stop cannot reach it."""

    async def step(self) -> None:
        # No await between the note and the block: once `bad` sees the note, a stop can no
        # longer reach this component.
        Path(self.marker + ".started").touch()
        time.sleep(3600)


async def test_a_component_that_does_not_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    marker = tmp_path / "stubborn"
    process = fails_beside(Stubborn(name="stuck", marker=str(marker)), stop_grace=1)
    with pytest.raises(ComponentError) as info:
        async with process:
            await asyncio.wait_for(process.run(), 60)
    assert info.value.component == "bad"
    assert process.components["stuck"].status is Status.STOPPED
    runs = await final_task_runs(process.flow_run_id, 5)
    stuck = runs["stuck"].state
    assert stuck is not None and stuck.type.value == "CANCELLED"
    assert "did not stop within 1 s" in (stuck.message or "")
    assert all(r.state and r.state.is_final() for r in runs.values())
    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_failed()
    assert not ray_leftovers()


async def test_a_failure_is_not_lost_when_the_grace_is_over_before_prefect_hears_of_it(
    tmp_path: Path,
) -> None:
    # With no grace at all, the stop and the kill come at once: the failed component's worker
    # is still reporting its failure to Prefect. It is let finish; the others are killed.
    marker = tmp_path / "busy"
    process = fails_beside(Forever(name="busy", marker=str(marker)), stop_grace=0)
    with pytest.raises(ComponentError, match="'bad' .* failed: RuntimeError: raised at") as info:
        async with process:
            await asyncio.wait_for(process.run(), 60)
    assert info.value.component == "bad"
    # Its own exception, or (on a machine so busy that it took REPORT_GRACE) what it reported.
    assert isinstance(info.value.__cause__, RuntimeError | ReportedError)
    runs = await final_task_runs(process.flow_run_id, 5)
    states = {name: run.state.type.value for name, run in runs.items() if run.state}
    assert states["bad"] == "FAILED"
    assert states["busy"] == "CANCELLED"
    assert all(r.state and r.state.is_final() for r in runs.values())
    assert not ray_leftovers()


class SlowToSend(RuntimeError):
    """An error its worker takes a minute to send back, as if swamped."""

    def __reduce__(self) -> str | tuple[_t.Any, ...]:
        time.sleep(60)
        return super().__reduce__()


class FailsSlowToReport(PassThrough):
    """Fails on its first step with an error its worker cannot send back in time."""

    async def step(self) -> None:
        raise SlowToSend(f"{self.name} failed")


async def test_a_failed_component_whose_error_never_arrives_still_fails_the_run() -> None:
    process = RayProcess(
        components=[
            ListSource(name="src", items=range(3)),
            FailsSlowToReport(name="bad"),
            Collector(name="sink"),
        ],
        connectors=connect("src.x -> bad.x", "bad.y -> sink.x"),
        stop_grace=1,
    )
    with pytest.raises(ComponentError) as info:
        async with process:
            await asyncio.wait_for(process.run(), 60)
    assert str(info.value) == "component 'bad' (FailsSlowToReport) failed: SlowToSend: bad failed"
    assert isinstance(info.value.__cause__, ReportedError)
    runs = await final_task_runs(process.flow_run_id, 3)
    bad = runs["bad"].state
    assert bad is not None and bad.type.value == "FAILED"
    assert (bad.message or "").startswith("SlowToSend: bad failed (")
    assert "did not stop within 1 s, so its worker was killed" in (bad.message or "")
    assert not ray_leftovers()


class Suicide(PassThrough):
    """Kills its own worker process on its second step; notes when in `note`, if given."""

    def __init__(self, note: str = "", **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._note = note

    async def step(self) -> None:
        if self.x == 1:
            if self._note:
                Path(self._note).write_text(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)
        await super().step()


async def test_a_killed_worker_is_a_crash_not_a_hang(tmp_path: Path) -> None:
    process = RayProcess(
        components=[
            ListSource(name="src", items=range(5)),
            Suicide(name="victim", note=str(tmp_path / "killed_at")),
            Collector(name="sink"),
            Forever(name="busy", marker=str(tmp_path / "busy")),
            Collector(name="drain"),
        ],
        connectors=connect("src.x -> victim.x", "victim.y -> sink.x", "busy.x -> drain.x"),
        worker_sharing="none",
    )
    with pytest.raises(ComponentCrashedError, match="'victim' .* crashed") as info:
        async with process:
            await asyncio.wait_for(process.run(), 60)
    # Not a hang: the run has ended, the others stopped, soon after the kill.
    assert time.time() - float((tmp_path / "killed_at").read_text()) < 20
    assert info.value.component == "victim"
    runs = await final_task_runs(process.flow_run_id, 5)
    assert runs["victim"].state is not None and runs["victim"].state.type.value == "CRASHED"
    assert all(r.state and r.state.is_final() for r in runs.values())
    assert not ray_leftovers()


async def test_when_two_workers_die_together_neither_task_run_is_left_running() -> None:
    process = RayProcess(
        components=[
            ListSource(name="src", items=range(5)),
            Suicide(name="first"),
            Suicide(name="second"),
            Collector(name="sink"),
        ],
        connectors=connect("src.x -> first.x", "src.x -> second.x", "first.y -> sink.x"),
        worker_sharing="none",
    )
    with pytest.raises(ComponentCrashedError) as info:
        async with process:
            await asyncio.wait_for(process.run(), 60)
    assert info.value.component in {"first", "second"}
    runs = await final_task_runs(process.flow_run_id, 4)
    assert runs[info.value.component].state.type.value == "CRASHED"  # type: ignore[union-attr]
    other = ({"first", "second"} - {info.value.component}).pop()
    # The other one died too, or was stopped first: either way its task run has ended.
    assert runs[other].state.type.value in {"CRASHED", "CANCELLED"}  # type: ignore[union-attr]


async def test_a_long_chain_delivers_everything_in_order_across_workers() -> None:
    sink = Collector(name="sink")
    process = RayProcess(
        components=[
            ListSource(name="src", items=range(5000)),
            PassThrough(name="a"),
            PassThrough(name="b"),
            sink,
        ],
        connectors=connect("src.x -> a.x", "a.y -> b.x", "b.y -> sink.x", maxsize=8, batch_size=16),
    )
    async with process:
        await process.run()
    assert process.components["sink"].received == list(range(5000))


async def test_inside_a_user_flow_on_a_ray_task_runner_it_joins_that_flow_run() -> None:
    from prefect import flow
    from prefect_ray import RayTaskRunner

    sink = Collector(name="sink")

    @flow(name="user-ray-flow", task_runner=RayTaskRunner())
    async def user_flow() -> _t.Any:
        from prefect.runtime import flow_run

        process = RayProcess(
            components=[ListSource(name="src", items="xyz"), PassThrough(name="relay"), sink],
            connectors=connect("src.x -> relay.x", "relay.y -> sink.x"),
        )
        async with process:
            await process.run()
        return flow_run.id, process.flow_run_id

    outer, joined = await user_flow()
    assert str(joined) == outer
    assert sink.received == ["x", "y", "z"]
    runs = await final_task_runs(joined, 3)
    assert all(r.state is not None and r.state.is_completed() for r in runs.values())


async def test_cancelling_a_run_stops_every_component_and_runs_destroy(tmp_path: Path) -> None:
    markers = [tmp_path / "a", tmp_path / "b"]
    process = RayProcess(
        components=[
            Forever(name="a", marker=str(markers[0])),
            Forever(name="b", marker=str(markers[1])),
            Collector(name="sink", fields=["x", "y"]),
        ],
        connectors=connect("a.x -> sink.x", "b.x -> sink.y"),
    )
    await process.init()
    running = asyncio.ensure_future(process.run())
    deadline = time.monotonic() + 60
    while not all(Path(f"{m}.started").exists() for m in markers):
        assert time.monotonic() < deadline and not running.done()
        await asyncio.sleep(0.1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 30)
    await process.destroy()
    assert all(m.read_text() == "destroyed" for m in markers)
    assert {c.status for c in process.components.values()} == {Status.STOPPED}
    runs = await final_task_runs(process.flow_run_id, 3)
    assert {r.state.type.value for r in runs.values() if r.state} == {"CANCELLED"}
    assert not ray_leftovers()
