"""Served deployments, the Prefect way: `prefect-plugboard serve` against the run's `prefect
server start`, `prefect deployment run --watch`, artifacts, cancellation from Prefect (on
Local and Ray), and the heartbeats of a long run.

Everything is started on loopback and stopped by the PID of what was started. The work-pool
deployments are in `test_deployments_pool.py`, which runs beside this module.
"""

from collections.abc import Iterator
import csv
from pathlib import Path
import time
import typing as _t
from uuid import UUID

import pytest

from tests.deployments import (
    BIN,
    MODELS,
    SEED,
    api,
    flow_run_id_of,
    flow_run_log,
    model_folder,
    run,
    serving,
    watch_deployment,
)
from tests.helpers import ray_leftovers
from tests.prefect_api import eventually


# The long run starts before the first test and goes on beside the others (see `long_run`).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("long_run")]


@pytest.fixture(scope="module")
def long_run(
    server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[UUID, Path]]:
    """A served 34 s run, started when the module starts and left running beside the other
    tests (its components sleep, so it costs no CPU); its flow run id and folder."""
    folder = model_folder(
        tmp_path_factory.mktemp("long"), SEED / "model.yaml", SEED / "hello_ray.py"
    )
    env = {**server, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    iters = LONG_RUN_ITERATIONS
    with serving(
        folder / "model.yaml", "seed-long", env, folder, "-p", f"component.input.arg.iters={iters}"
    ):
        started = run(
            [str(BIN / "prefect"), "deployment", "run", "run-process/seed-long"], server, folder
        )
        assert started.returncode == 0, started.stdout + started.stderr
        yield flow_run_id_of(started.stdout), folder


LONG_RUN_ITERATIONS = 34


async def test_a_served_model_runs_with_prefect_deployment_run(
    server: dict[str, str], tmp_path: Path
) -> None:
    folder = model_folder(tmp_path, SEED / "model.yaml", SEED / "hello_ray.py")
    workdir = tmp_path / "here"
    workdir.mkdir()
    with serving(
        folder / "model.yaml", "seed-local", server, workdir, "-p", "component.input.arg.iters=3"
    ):
        result = watch_deployment("seed-local", server, workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Completed" in result.stdout
    with (workdir / "ray.csv").open() as f:  # relative paths: where `serve` was typed
        assert len(list(csv.reader(f))) == 4
    flow_run_id = flow_run_id_of(result.stdout)

    async def artifacts(client: _t.Any) -> list[_t.Any]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        return list(
            await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        )

    found = await eventually(
        lambda: api(server, artifacts), lambda a: len(a) == 2, what="artifacts"
    )
    assert {a.type for a in found} == {"markdown", "table"}
    assert any("```mermaid" in str(a.data) for a in found)


@pytest.mark.parametrize("process_type", ["local", pytest.param("ray", marks=pytest.mark.ray)])
async def test_cancelling_a_deployment_run_stops_everything_and_ends_cancelled(
    process_type: str, server: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # On Ray the served run joins the session's cluster, which must then hold nothing of it.
    env = server
    if process_type == "ray":
        address = request.getfixturevalue("ray_address")
        env = {**server, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    folder = model_folder(tmp_path, MODELS / "model.yaml", MODELS / "shapes.py")
    marker = tmp_path / "destroyed"
    (folder / "forever.yaml").write_text(
        "plugboard:\n  process:\n    args:\n      components:\n"
        f"      - {{type: shapes.Forever, args: {{name: forever, marker: {marker}}}}}\n"
        "      - {type: shapes.Scale, args: {name: scale}}\n"
        "      connectors:\n      - {source: forever.n, target: scale.n}\n"
    )
    name = f"forever-{process_type}"
    with serving(
        folder / "forever.yaml", name, env, tmp_path, "--process-type", process_type
    ) as served:
        started = run(
            [str(BIN / "prefect"), "deployment", "run", f"run-process/{name}"], server, tmp_path
        )
        assert started.returncode == 0, started.stdout + started.stderr
        flow_run_id = flow_run_id_of(started.stdout)
        deadline = time.monotonic() + 120
        while not Path(f"{marker}.started").exists():
            assert time.monotonic() < deadline, "the model never started"
            time.sleep(0.2)
        cancelled = run(
            [str(BIN / "prefect"), "flow-run", "cancel", str(flow_run_id)], server, tmp_path
        )
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr

        async def read(client: _t.Any) -> _t.Any:
            return await client.read_flow_run(flow_run_id)

        flow_run = await eventually(
            lambda: api(server, read),
            lambda r: r.state.is_final(),
            timeout=30,
            what="a final state",
        )
        # Within 10 s of the cancellation reaching Prefect (the `Cancelling` state the command
        # set; the command's own start-up is not the run's), by the API's clock.
        states = await api(server, lambda client: client.read_flow_run_states(flow_run_id))
        cancelling = next(s.timestamp for s in states if s.type.value == "CANCELLING")
        assert (flow_run.state.timestamp - cancelling).total_seconds() < 10, states
        assert flow_run.state.type.value == "CANCELLED", (
            f"{flow_run.state}\n{await flow_run_log(server, flow_run_id)}\n"
            f"{served.read_text()[-6000:]}"
        )

        async def task_runs(client: _t.Any) -> list[_t.Any]:
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

            return list(
                await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
            )

        runs = await eventually(
            lambda: api(server, task_runs),
            lambda rs: len(rs) == 2 and all(r.state and r.state.is_final() for r in rs),
            timeout=30,
            what="two final task runs",
        )
        assert {r.state.type.value for r in runs} == {"CANCELLED"}
        assert marker.read_text() == "destroyed"
    if process_type == "ray":
        import ray

        def held() -> dict[str, float]:
            free = ray.available_resources()
            return {
                k: total - free.get(k, 0.0)
                for k, total in ray.cluster_resources().items()
                if "memory" not in k and free.get(k, 0.0) < total
            }

        deadline = time.monotonic() + 30
        while ray_leftovers() or held():
            assert time.monotonic() < deadline, (ray_leftovers(), held())
            time.sleep(0.5)


async def test_a_long_run_keeps_sending_heartbeats_while_its_components_work(
    server: dict[str, str], long_run: tuple[UUID, Path]
) -> None:
    # Prefect's shortest heartbeat period is 30 s: a 34 s run must send one at its start and
    # one 30 s later, from a flow run whose components are busy all along. (The run started
    # with the module; this test comes last and waits for its end.)
    from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter

    flow_run_id, folder = long_run

    async def read(client: _t.Any) -> _t.Any:
        return await client.read_flow_run(flow_run_id)

    flow_run = await eventually(
        lambda: api(server, read),
        lambda r: r.state is not None and r.state.is_final(),
        timeout=120,
        what="the end of the long run",
    )
    assert flow_run.state.is_completed(), flow_run.state
    with (folder / "ray.csv").open() as f:
        assert len(list(csv.reader(f))) == LONG_RUN_ITERATIONS + 1

    async def heartbeats(client: _t.Any) -> list[_t.Any]:
        page = await client.read_events(
            EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            ),
            limit=50,  # the client's default (100) is more than the server accepts
        )
        return sorted(page.events, key=lambda e: e.occurred)

    beats = await eventually(
        lambda: api(server, heartbeats), lambda found: len(found) >= 2, what="two heartbeats"
    )
    assert (beats[-1].occurred - beats[0].occurred).total_seconds() >= 29
    assert flow_run.start_time < beats[-1].occurred < flow_run.end_time
