"""RayProcess on clusters it did not start: by address, through RAY_ADDRESS, and multi-node.

Each case drives its own Ray from a subprocess (a Python process joins one Ray at a time, and
this one holds the session's), against the session's Prefect API; clusters started here are
stopped by the PID of what started them.
"""

from collections.abc import Iterator
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time
import typing as _t

import pytest

from tests.helpers import free_port, write_tls_files
from tests.processes import stop_group


pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, *args: str, cwd: Path, env: dict[str, str]) -> dict[str, _t.Any]:
    result = subprocess.run(
        [sys.executable, str(cwd / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            return _t.cast(dict[str, _t.Any], json.loads(line[len("RESULT ") :]))
    output = f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    raise AssertionError(f"{script} {args} (exit {result.returncode}):\n{output}")


def base_env(prefect_api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PREFECT_API_URL"] = prefect_api
    env["RAY_AUTH_MODE"] = "token"  # Ray 2.60 clusters started by `ray start` ask for it
    return env


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A `ray start --head --block` cluster on free loopback ports, shared by this module's
    tests (none of them changes it); stopped by its PID."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray is not None
    port = free_port()
    temp_dir = Path("/tmp") / f"rayhead-{os.getpid()}-{port}"
    command = [
        ray,
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        f"--temp-dir={temp_dir}",
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
    ]
    head = subprocess.Popen(
        command, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert head.poll() is None, (
            head.stderr.read().decode() if head.stderr else "ray start exited"
        )
        assert time.monotonic() < deadline, "ray start did not come up"
        time.sleep(0.2)
    try:
        yield address
    finally:
        stop_group(head.pid, grace=5)  # the group holds everything `ray start` started
        head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A directory like a user's: a script and a module of components beside it."""
    for name in ("by_address.py", "user_components.py", "multinode.py"):
        shutil.copy(SCRIPTS / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("mode", ["address", "env"])
def test_joins_a_cluster_started_elsewhere_and_ships_user_modules(
    mode: str, ray_head: str, user_dir: Path, prefect_api: str
) -> None:
    env = base_env(prefect_api)
    env["CLUSTER"] = ray_head
    if mode == "env":
        env["RAY_ADDRESS"] = ray_head
    result = run_script("by_address.py", mode, cwd=user_dir, env=env)
    assert result["received"] == [2, 4, 6]
    assert result["cluster_cpus"] == 2.0  # the cluster started by `ray start`, not a new one
    assert result["disconnected_after"]
    assert result["worker_prefect_modules"] == []  # a fresh worker: nothing of Prefect ran there


def test_a_cluster_that_refuses_the_connection_says_what_to_do(
    ray_head: str, user_dir: Path, prefect_api: str
) -> None:
    env = base_env(prefect_api)
    env["CLUSTER"] = ray_head
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_gcs_server_port_wait_time_s"] = "2"  # Ray's own retries (20 s), shortened
    result = subprocess.run(
        [sys.executable, str(user_dir / "by_address.py"), "address"],
        cwd=user_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert f"could not join the Ray cluster at '{ray_head}'" in result.stderr
    assert "set RAY_AUTH_MODE=token" in result.stderr


def test_components_are_placed_by_resource_across_nodes_and_messages_cross_in_order(
    user_dir: Path, prefect_api: str
) -> None:
    result = run_script("multinode.py", cwd=user_dir, env=base_env(prefect_api))
    assert result["relay_node"] == result["special_node"]
    assert result["received"] == 3000 and result["in_order"]
    assert result["disconnected_after"]
    # Two nodes: receivers listen on the node's own address, not loopback, never everywhere.
    assert result["stream_hosts"] == [result["node_address"]]


def test_streams_use_tls_with_rays_certificates_when_ray_does(
    tmp_path: Path, prefect_api: str
) -> None:
    import ray

    env = base_env(prefect_api)
    env.update(
        write_tls_files(tmp_path / "tls", addresses=("127.0.0.1", ray.util.get_node_ip_address()))
    )
    env["RAY_USE_TLS"] = "1"
    env["PYTHONPATH"] = str(ROOT)  # the script's components come from tests/helpers.py
    env["PREFECT_API_KEY"] = "a-secret-the-workers-must-not-get"
    write_tls_files(tmp_path, name="other")  # a stranger's certificate, of another CA
    shutil.copy(SCRIPTS / "tls_streams.py", tmp_path / "tls_streams.py")
    result = run_script("tls_streams.py", str(tmp_path), cwd=tmp_path, env=env)
    knocks = result["knocks"]
    assert result["received"] and result["late_received"]  # the run itself went over TLS
    assert all(k["tls_follows"] for k in knocks.values())
    assert knocks["plain"].get("answer", "") == ""
    assert not knocks["other_ca"].get("answer")  # refused during or right after TLS
    cluster = knocks["cluster_certificate"]
    assert cluster["tls_established"] and cluster["answer"] == ""  # TLS is not the secret
    # The Ray the process started itself passed none of Prefect's settings to its workers,
    # and a fresh worker ran nothing of Prefect.
    assert result["worker_prefect_modules"] == []
    assert result["worker_prefect_settings"] == []
    assert result["disconnected_after"]
    assert result["autoscaler_monitors"] == []  # a local Ray has nothing to autoscale
