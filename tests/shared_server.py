"""One `prefect server start` for the whole test run, shared by pytest-xdist's workers.

A Prefect server takes about 17 s of CPU to start (8 s from a database already migrated: see
`DATABASE_TEMPLATE`), so the run starts one, on a loopback port, the first time a test needs
the API: the first worker to ask starts it and notes its PID and URL in the run's folder
(under a lock), the others read them. The process that made the folder (the xdist
controller, or pytest itself without workers) stops the server by its PID when the run ends.

Its database is PostgreSQL where the machine has it (`tests/postgres.py` says why), started
the same way and stopped after the server; SQLite, Prefect's default, where it has not.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import fcntl
from importlib.metadata import version
import json
import os
from pathlib import Path
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

from tests.postgres import PostgresServer, keep_as_template, start_postgres, stop_postgres
from tests.processes import stop_group


__all__ = [
    "DATABASE_TEMPLATE",
    "POSTGRES_TEMPLATE",
    "RUN_FOLDER",
    "copy_database_template",
    "keep_database_template",
    "make_run_folder",
    "remove_run_folder",
    "shared_api",
    "start_server",
    "taking_turns",
]

RUN_FOLDER = "PLUGBOARD_TEST_RUN_FOLDER"
"""The environment variable naming the run's folder (inherited by pytest-xdist's workers)."""
_SERVER = "prefect-server.json"
_BIN = Path(sys.executable).parent
DATABASE_TEMPLATE = Path(sys.prefix) / f"prefect-test-database-{version('prefect')}.db"
"""A Prefect database as a new server leaves it once healthy, kept in the venv: a new
database first runs every migration (about 9 s of the 17 s a start takes here), so each
test run after the venv's first starts its server from a copy."""
POSTGRES_TEMPLATE = Path(sys.prefix) / f"prefect-test-postgres-{version('prefect')}"
"""The same for PostgreSQL: a copy of the data directory of a server whose Prefect database
is migrated (about 16 s on PostgreSQL)."""


def make_run_folder() -> bool:
    """Makes the run's folder unless an enclosing process did; whether this one made it."""
    if RUN_FOLDER in os.environ:
        return False
    os.environ[RUN_FOLDER] = tempfile.mkdtemp(prefix="plugboard-tests-")
    return True


def remove_run_folder() -> None:
    """Stops the shared server, if one was started, and removes the run's folder."""
    folder = Path(os.environ.pop(RUN_FOLDER))
    noted = folder / _SERVER
    if noted.exists():
        server = json.loads(noted.read_text())
        stop_group(server["pid"])
        if server.get("postgres"):
            stop_postgres(server["postgres"]["pid"], Path(server["postgres"]["folder"]))
    shutil.rmtree(folder, ignore_errors=True)


def shared_api() -> str:
    """The URL of the run's Prefect API, started by whichever process asks first."""
    folder = Path(os.environ[RUN_FOLDER])
    with (folder / "prefect-server.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        noted = folder / _SERVER
        if noted.exists():
            return str(json.loads(noted.read_text())["url"])
        home = folder / "prefect-home"
        home.mkdir()
        database = _start_database(home)
        try:
            pid, url = start_server(home, database.url if database else None)
        except BaseException:
            if database is not None:
                stop_postgres(database.pid, database.folder)
            raise
        postgres = database and {"pid": database.pid, "folder": str(database.folder)}
        noted.write_text(json.dumps({"pid": pid, "url": url, "postgres": postgres}))
    if database is not None:  # after the lock: the other workers need not wait for it
        try:
            keep_as_template(database, POSTGRES_TEMPLATE)
        except (OSError, subprocess.SubprocessError) as exc:
            (home / "database.txt").write_text(f"no template kept: {exc}\n")
    return url


def _start_database(home: Path) -> PostgresServer | None:
    """A PostgreSQL server for the shared Prefect server, or `None` (it then uses SQLite)."""
    try:
        return start_postgres(POSTGRES_TEMPLATE)
    except RuntimeError as exc:
        (home / "database.txt").write_text(f"SQLite, as PostgreSQL cannot start: {exc}\n")
        return None


@contextlib.contextmanager
def taking_turns(*, alone: bool) -> Iterator[None]:
    """Holds the run's turn for one test: shared with the other workers' tests, or, `alone`,
    with none of them (it waits until their running tests end; they wait until it ends).

    A test whose bound is close to what it measures (a second or two) runs alone, so that on a
    machine with as many cores as workers it measures the code, not another worker's load.
    Every test passes the door first, and one that must run alone holds it while it waits,
    so the others' next tests cannot keep it waiting for ever.
    """
    folder = Path(os.environ[RUN_FOLDER])
    with (folder / "turns.door").open("a") as door, (folder / "turns.lock").open("a") as turn:
        fcntl.flock(door, fcntl.LOCK_EX)
        fcntl.flock(turn, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(door, fcntl.LOCK_UN)
        yield


def copy_database_template(home: Path) -> None:
    """Gives a server whose `PREFECT_HOME` is `home` a copy of `DATABASE_TEMPLATE` as its
    SQLite database, where the template exists (else the server migrates a new one)."""
    if DATABASE_TEMPLATE.exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATABASE_TEMPLATE, home / "prefect.db")


def start_server(home: Path, database_url: str | None = None) -> tuple[int, str]:
    """`prefect server start` in a session of its own on a free loopback port, once healthy.

    Args:
        home: Its `PREFECT_HOME`.
        database_url: A PostgreSQL database (`postgresql://...`) it keeps its data in. Without
            one, its SQLite database starts as a copy of `DATABASE_TEMPLATE` when there is
            one, and is the template when there is not yet.

    Returns:
        Its PID (the session's) and its API URL.
    """
    from tests.helpers import free_port

    sqlite = home / "prefect.db"
    if database_url is None:
        copy_database_template(home)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_ADDRESS"))}
    # Retryable errors (a busy database, sent as 503) are logged, so a test that runs out of
    # the client's retries leaves the cause in server.log.
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_LOG_RETRYABLE_ERRORS="true",
    )
    if database_url is not None:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url.replace(
            "postgresql://", "postgresql+asyncpg://", 1
        )
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [str(_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.read() == b"true":
                    if database_url is None and not DATABASE_TEMPLATE.exists():
                        keep_database_template(sqlite)
                    return process.pid, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process.pid)
            raise RuntimeError(
                "prefect server start did not become healthy:\n"
                + (home / "server.log").read_text()[-3000:]
            )
        time.sleep(0.2)


def keep_database_template(database: Path) -> None:
    """Copies a server's database (SQLite's backup: a consistent copy, the server live or
    not) to `DATABASE_TEMPLATE`."""
    partial = DATABASE_TEMPLATE.with_name(f"{DATABASE_TEMPLATE.name}.{os.getpid()}.partial")
    with (
        contextlib.closing(sqlite3.connect(database)) as source,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        source.backup(copy)
    os.replace(partial, DATABASE_TEMPLATE)  # whole or not at all, whoever writes it


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Sets environment variables for the time of the block."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
