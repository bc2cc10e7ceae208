"""Helpers of the deployment tests: the commands a user types against the run's `prefect
server start` (see `tests/shared_server.py`), processes started in sessions of their own and
stopped by PID, and the API read."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import time
import typing as _t
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.processes import stop_group


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = ROOT / "examples" / "running_in_parallel"
MODELS = ROOT / "tests" / "unit" / "models"


def client_env(api_url: str, home: Path) -> dict[str, str]:
    """The environment of a user's commands talking to `api_url`, with a Prefect home of
    their own; runners and workers look for work every second."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_ADDRESS"))}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="1",
        PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.5",
    )
    return env


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def watch_deployment(name: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`prefect deployment run run-process/NAME --watch`: returns once the run has ended."""
    command = ["deployment", "run", f"run-process/{name}", "--watch", "--watch-interval", "1"]
    return run([str(BIN / "prefect"), *command], env, cwd)


def flow_run_id_of(output: str) -> UUID:
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    return UUID(match.group(1))


async def api(env: dict[str, str], call: _t.Callable[[_t.Any], _t.Awaitable[_t.Any]]) -> _t.Any:
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        async with get_client() as client:
            return await call(client)


def model_folder(tmp_path: Path, model: Path, *modules: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(model, folder / model.name)
    for module in modules:
        shutil.copy(module, folder / module.name)
    return folder


@contextlib.contextmanager
def background(
    argv: list[str], env: dict[str, str], cwd: Path, *, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `argv` in a session of its own for the time of the block, then stops it.

    Its output goes to `log` (a file: a pipe nobody reads would stall it), else nowhere.
    """
    with open(log or os.devnull, "wb") as output:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process.pid, signal.SIGINT)
            process.wait()


def deployment_exists(name: str, env: dict[str, str]) -> bool:
    """Whether the API knows the deployment `name` (`flow/deployment`)."""
    from prefect.exceptions import ObjectNotFound

    with (
        temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


@contextlib.contextmanager
def serving(model: Path, name: str, env: dict[str, str], cwd: Path, *extra: str) -> Iterator[Path]:
    """`prefect-plugboard serve` of `model` for the time of the block; yields its log file."""
    argv = [str(BIN / "prefect-plugboard"), "serve", str(model), "--name", name, *extra]
    log = model.parent / f"serve-{name}.log"
    with background(argv, env, cwd, log=log) as process:
        deadline = time.monotonic() + 60
        while not deployment_exists(f"run-process/{name}", env):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the deployment never appeared"
            time.sleep(0.2)
        yield log


@contextlib.contextmanager
def working(pool: str, env: dict[str, str], cwd: Path) -> Iterator[None]:
    """A `prefect worker start --pool POOL` for the time of the block."""
    with background([str(BIN / "prefect"), "worker", "start", "--pool", pool], env, cwd):
        yield


async def flow_run_log(env: dict[str, str], flow_run_id: UUID) -> str:
    """The flow run's log lines, oldest first, as text: what a failed assertion shows."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read(client: _t.Any) -> list[_t.Any]:
        return list(
            await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
            )
        )

    logs = sorted(await api(env, read), key=lambda line: line.timestamp)
    return "\n".join(f"{line.timestamp:%H:%M:%S.%f} {line.name}: {line.message}" for line in logs)
