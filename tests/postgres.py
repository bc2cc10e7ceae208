"""Throwaway PostgreSQL servers for the tests, from Debian's `postgresql` programs.

Two users: the SQL library's tests (`postgres_url` in `tests/conftest.py`), and the run's
shared Prefect server (`tests/shared_server.py`), which keeps its database here rather than in
SQLite: under two pytest-xdist workers, SQLite refused hundreds of the server's writes with
"database is locked" (sent to clients as 503), and a request that ran out of the client's five
retries failed its test.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import signal
import subprocess
import tempfile

from tests.processes import stop_group


__all__ = [
    "PostgresServer",
    "keep_as_template",
    "postgres_binaries",
    "postgres_server",
    "start_postgres",
    "stop_postgres",
]

_BIN_DIRS = [
    Path("/usr/lib/postgresql/15/bin"),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
]


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its postmaster's PID, its loopback port and the folder it lives in."""

    pid: int
    port: int
    folder: Path

    @property
    def url(self) -> str:
        """Its `postgres` database, as the `postgres` user (trusted on loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def postgres_binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (`initdb`, `postgres`), if installed."""
    for folder in _BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


def start_postgres(template: Path | None = None) -> PostgresServer:
    """Starts a server on a free loopback port, in a temporary folder of its own.

    The server runs as the unprivileged `postgres` user when this runs as root (initdb refuses
    root), with `fsync` off: its data lives only as long as the test run.

    Args:
        template: A data directory `keep_as_template` made: the new server starts from a copy
            of it, skipping initdb and whatever the template already holds. Ignored if absent.

    Raises:
        RuntimeError: The server could not be started (the reason is in the message).
    """
    from tests.helpers import free_port

    binaries = postgres_binaries()
    if binaries is None:
        msg = "PostgreSQL's server programs are not installed (Debian package `postgresql`)"
        raise RuntimeError(msg)
    run_as = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="plugboard-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if run_as:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    try:
        if template is not None and template.is_dir():
            subprocess.run(["cp", "-a", str(template), str(data)], check=True, capture_output=True)
        else:
            subprocess.run(
                [*run_as, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                 "--auth=trust", "--no-sync", "-E", "UTF8"],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        subprocess.run(
            [*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
             "-w", "-t", "60", "-o",
             f"-p {port} -h 127.0.0.1 -k {sockets} -c fsync=off -c full_page_writes=off"
             " -c max_connections=200",
             "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        msg = f"PostgreSQL did not start: {exc.stderr.decode(errors='replace').strip()}"
        raise RuntimeError(msg) from None
    return PostgresServer(pid, port, folder)


def stop_postgres(pid: int, folder: Path, timeout: float = 30.0) -> None:
    """Stops a server by its postmaster's PID (SIGINT: a fast shutdown; it leads its own
    process group) and removes its folder."""
    stop_group(pid, signal.SIGINT, timeout)
    shutil.rmtree(folder, ignore_errors=True)


def keep_as_template(server: PostgresServer, template: Path) -> None:
    """Copies a running server's data directory (`pg_basebackup`: a consistent copy) to
    `template`, unless one is there already; whole or not at all, whoever writes it."""
    if template.exists():
        return
    binaries = postgres_binaries()
    assert binaries is not None  # a server is running
    backup = server.folder / "template"
    subprocess.run(
        [*_run_as(), str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(server.port),
         "-U", "postgres", "-D", str(backup), "-X", "stream", "-c", "fast"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    subprocess.run(["cp", "-a", str(backup), str(partial)], check=True, capture_output=True)
    try:
        os.rename(partial, template)
    except OSError:  # another run kept its copy first
        shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway server for the block (see `start_postgres`); yields its URL.

    Raises:
        RuntimeError: The server could not be started (the reason is in the message).
    """
    server = start_postgres()
    try:
        yield server.url
    finally:
        stop_postgres(server.pid, server.folder)


def _run_as() -> list[str]:
    """The command prefix that runs a server program as `postgres` when this runs as root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        runuser = None
    if runuser is None:
        msg = "running as root without a `postgres` user and `runuser` to run the server as"
        raise RuntimeError(msg)
    return [runuser, "-u", "postgres", "--"]
