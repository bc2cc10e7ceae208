"""Helpers shared by the tests: connectors, ports, components, Ray checks, errors, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
import contextlib
import math
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as _t

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    Connector,
    ConnectorSpec,
)
from prefect_plugboard.schemas.status import Status


def connect(
    *pairs: str, kind: type[Connector] = AsyncioConnector, **settings: _t.Any
) -> list[_t.Any]:
    """Connectors from `"a.x -> b.y"` arrows, of `kind`, with the same settings."""
    return [
        kind(spec=ConnectorSpec(source=s, target=t), **settings)
        for s, t in (p.split(" -> ") for p in pairs)
    ]


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Forever(Component):
    """A busy source that never closes; notes in files that it started and was destroyed.

    `<marker>.started` appears at its first step, `<marker>` holds `destroyed` once its
    `destroy()` ran: the files tell, also from a Ray worker, what happened to it.
    """

    io = IO(outputs=["x"])

    def __init__(
        self, marker: str, pause: float = 0.01, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self.marker = marker
        self._pause = pause

    async def step(self) -> None:
        Path(self.marker + ".started").touch()
        self.x = 1
        await asyncio.sleep(self._pause)

    async def destroy(self) -> None:
        Path(self.marker).write_text("destroyed")


def ray_leftovers() -> list[str]:
    """What runs left behind on the session's Ray: it should be nothing.

    Live actors of plugboard other than this driver's coordinator, placement groups not
    removed, and runs the coordinator still holds.
    """
    import ray
    from ray._private import state

    from prefect_plugboard.process.ray.coordinator import shared_coordinator

    left = [
        f"actor {a['Name']}"
        for a in state.actors().values()
        if a["State"] == "ALIVE"
        and a["Name"].startswith("plugboard")
        and not a["Name"].startswith("plugboard-coordinator")
    ]
    left += [
        f"placement group {group_id}"
        for group_id, group in ray.util.placement_group_table().items()
        if group["state"] != "REMOVED"
    ]
    left += [f"run {run}" for run in ray.get(shared_coordinator().runs.remote())]
    return left


def wire(source: str, target: str, fields: Iterable[str], **settings: _t.Any) -> list[_t.Any]:
    """Connectors from each of `fields` of component `source` to the same field of `target`."""
    return connect(*(f"{source}.{f} -> {target}.{f}" for f in fields), **settings)


def error_text(exc: BaseException) -> str:
    """The messages of an exception and of every exception behind it, one per line."""
    lines = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(lines)


PG_BIN_DIRS = [
    Path("/usr/lib/postgresql/15/bin"),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
]


def postgres_binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (`initdb`, `postgres`), if installed."""
    for folder in PG_BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Starts a throwaway PostgreSQL server on a free loopback port; yields its URL.

    The server runs as the unprivileged `postgres` user (initdb refuses root) in a temporary
    folder, and is stopped by its PID when the block ends.

    Raises:
        RuntimeError: The server could not be started (the reason is in the message).
    """
    binaries = postgres_binaries()
    if binaries is None:
        msg = "PostgreSQL's server programs are not installed (Debian package `postgresql`)"
        raise RuntimeError(msg)
    run_as: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            msg = "running as root without a `postgres` user and `runuser` to run the server as"
            raise RuntimeError(msg)
        run_as = [runuser, "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="plugboard-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if run_as:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    postmaster: int | None = None
    try:
        subprocess.run(
            [*run_as, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
             "-w", "-t", "60", "-o",
             f"-p {port} -h 127.0.0.1 -k {sockets} -c fsync=off -c full_page_writes=off",
             "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        postmaster = int((data / "postmaster.pid").read_text().splitlines()[0])
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        msg = f"PostgreSQL did not start: {exc.stderr.decode(errors='replace').strip()}"
        raise RuntimeError(msg) from None
    finally:
        if postmaster is not None:
            _stop(postmaster)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(pid: int, timeout: float = 30.0) -> None:
    """Stops the server by its PID (a fast shutdown), waiting for it to go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class _HasStatus(_t.Protocol):
    status: Status


def status(subject: _HasStatus) -> Status:
    """`subject.status` as it is now (a call, so type checkers do not narrow it across awaits)."""
    return subject.status


def most_in_transit(payload_bytes: int, batch_size: int) -> int:
    """How many messages the path between two Ray workers can hold besides the inbox.

    The receiver only reads while its inbox has room; until then messages wait in the
    sender's outbox (`batch_size`), its socket buffer (up to `HIGH_WATER` plus one frame), the
    kernel's send and receive buffers (at most their sysctl maxima), the receiver's stream
    buffer (a frame and a read), the rest of the frame being unpacked (`batch_size`), and the
    item the sink has taken but not yet counted (1).
    """
    from prefect_plugboard.process.ray.stream import HIGH_WATER

    kernel = sum(
        int(Path(f"/proc/sys/net/ipv4/tcp_{kind}").read_text().split()[2])
        for kind in ("wmem", "rmem")
    )
    frame = payload_bytes * batch_size
    buffered = HIGH_WATER + frame + kernel + frame + (256 << 10)
    return batch_size + math.ceil(buffered / frame) * batch_size + batch_size + 1
