"""Work-pool deployments, the Prefect way: `prefect-plugboard deploy` and the repository's
`prefect.yaml` (a model and a study) on a `process` work pool, run by one `prefect worker
start` against the run's `prefect server start`, with `prefect deployment run --watch`.

Everything is started on loopback and stopped by the PID of what was started. The served
deployments are in `test_deployments_served.py`, which runs beside this module.
"""

from collections.abc import Iterator
import csv
from pathlib import Path
import shutil
import typing as _t

import pytest

from tests.deployments import (
    BIN,
    ROOT,
    SEED,
    api,
    flow_run_id_of,
    model_folder,
    run,
    watch_deployment,
    working,
)


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's Prefect project (`prefect.yaml`, `flows/`, the examples it
    names) and its work pool, `plugboard`."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "prefect.yaml", folder / "prefect.yaml")
    shutil.copytree(ROOT / "flows", folder / "flows")
    for example in ("events", "tuning"):
        shutil.copytree(ROOT / "examples" / example, folder / "examples" / example)
    pool = run(
        [str(BIN / "prefect"), "work-pool", "create", "plugboard", "--type", "process"],
        server,
        folder,
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    return folder


@pytest.fixture(scope="module")
def pool_worker(server: dict[str, str], project: Path, ray_address: str) -> Iterator[None]:
    """One `prefect worker start --pool plugboard`, in the project, for the module's tests.

    Its runs join the session's Ray cluster, as runs on a cluster's machines would.
    """
    env = {**server, "RAY_ADDRESS": ray_address, "RAY_AUTH_MODE": "token"}
    with working("plugboard", env, project):
        yield


@pytest.mark.usefixtures("pool_worker")
async def test_a_model_on_a_process_work_pool_runs_through_a_worker(
    server: dict[str, str], tmp_path: Path
) -> None:
    folder = model_folder(tmp_path, SEED / "model.yaml", SEED / "hello_ray.py")
    deployed = run(
        [
            str(BIN / "prefect-plugboard"),
            "deploy",
            str(folder / "model.yaml"),
            "--name",
            "pooled",
            "--pool",
            "plugboard",
            "-p",
            "component.input.arg.iters=2",
        ],
        server,
        tmp_path,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "prefect worker start --pool plugboard" in deployed.stdout
    result = watch_deployment("pooled", server, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with (folder / "ray.csv").open() as f:  # the worker runs in the model's folder
        assert len(list(csv.reader(f))) == 3


@pytest.mark.usefixtures("pool_worker")
async def test_the_example_deployments_of_prefect_yaml_deploy_and_run(
    server: dict[str, str], project: Path
) -> None:
    deployed = run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "clock-model"], server, project
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    result = watch_deployment("clock-model", server, project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with (project / "actions.csv").open() as f:
        assert len(list(csv.reader(f))) == 7


@pytest.mark.ray
@pytest.mark.usefixtures("pool_worker")
async def test_the_tuning_deployment_of_prefect_yaml_runs_a_study_of_child_runs(
    server: dict[str, str], project: Path
) -> None:
    deployed = run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "projectile"], server, project
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    command = [
        *("deployment", "run", "tune/projectile", "--watch", "--watch-interval", "1"),
        *("-p", "num_samples=3", "-p", "max_concurrent=2", "-p", "study_name=deployed"),
    ]
    result = run([str(BIN / "prefect"), *command], server, project, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study_id = flow_run_id_of(result.stdout)

    async def children(client: _t.Any) -> list[_t.Any]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

        return list(
            await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[study_id])
                )
            )
        )

    trials = await api(server, children)
    assert sorted(r.name for r in trials) == [f"deployed-trial-{n}" for n in range(3)]
