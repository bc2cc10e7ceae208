"""Prefect's temporary API server, started in the background while Ray starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, temporary_settings
import pytest

from prefect_plugboard.process.ray.cluster import RayConnection
from prefect_plugboard.process.temporary_api import temporary_api_starting
from tests.helpers import python_code
from tests.processes import alive
from tests.shared_server import (
    DATABASE_TEMPLATE,
    copy_database_template,
    keep_database_template,
)


def test_nothing_starts_where_an_api_is_set() -> None:
    before = dict(SubprocessASGIServer._instances)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with temporary_api_starting():
            assert SubprocessASGIServer._instances == before


def test_nothing_starts_where_no_new_ray_does() -> None:
    before = dict(SubprocessASGIServer._instances)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with temporary_api_starting(enabled=False):
            assert SubprocessASGIServer._instances == before


def test_only_a_new_local_ray_is_worth_starting_the_server_beside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert RayConnection(None, None).starts_local_instance is not ray.is_initialized()
    assert not RayConnection("127.0.0.1:6379", None).starts_local_instance
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert not RayConnection(None, None).starts_local_instance


# What `RayConnection.ensure` does around `ray.init`: inside the block, every `PREFECT_*`
# variable leaves `os.environ`. The server must have been spawned with them all the same.
_STARTED_BESIDE_RAY = """
import asyncio, json, os, sys, time
from prefect_plugboard.process.ray.cluster import _without_prefect_settings
from prefect_plugboard.process.ray.cluster import RayConnection
from prefect_plugboard.process.temporary_api import temporary_api_starting
from prefect.server.api.server import SubprocessASGIServer
from prefect.client.orchestration import get_client

with temporary_api_starting():
    server = SubprocessASGIServer()
    with _without_prefect_settings():  # `ray.init` runs here, for longer than a spawn takes
        deadline = time.monotonic() + 30
        while server.server_process is None and time.monotonic() < deadline:
            time.sleep(0.01)
with open(f"/proc/{server.server_process.pid}/environ", "rb") as f:
    env = dict(v.split("=", 1) for v in f.read().decode().split("\\0") if "=" in v)

async def hello():  # at once: the block's end waited until the server answered
    async with get_client() as client:
        return (await client.hello()).status_code, client.api_url.port

status, port = asyncio.run(hello())
print(json.dumps({"pid": server.server_process.pid, "server_port": server.port, "port": port,
                  "status": status, "mark": env.get("PREFECT_PLUGBOARD_TEST_MARK"),
                  "home": env.get("PREFECT_HOME")}))
"""


@pytest.mark.slow  # a fresh interpreter and Prefect's temporary server
def test_the_temporary_server_starts_with_the_users_prefect_environment(tmp_path: Path) -> None:
    copy_database_template(tmp_path / "home")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_KEY")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "home"),
        "PREFECT_PLUGBOARD_TEST_MARK": "kept",  # not a Prefect setting: only os.environ has it
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    }
    result = python_code(_STARTED_BESIDE_RAY, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    if not DATABASE_TEMPLATE.exists():  # the next run's server starts from it, migrated
        keep_database_template(tmp_path / "home" / "prefect.db")
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["mark"] == "kept"
    assert seen["home"] == str(tmp_path / "home")
    assert seen["status"] == 200
    assert seen["port"] == seen["server_port"]  # Prefect's client found the same server
    assert "Starting temporary server" in result.stdout + result.stderr
    assert not alive(seen["pid"])  # stopped at exit, as Prefect's own
