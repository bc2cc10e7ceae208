"""Helpers shared by the tests: connectors, ports, components, events, Ray checks, errors,
TLS files and the seed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import contextlib
import importlib.util
import math
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from types import ModuleType
import typing as _t

from pydantic import BaseModel

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    Connector,
    ConnectorSpec,
)
from prefect_plugboard.events import Event
from prefect_plugboard.schemas.status import Status
from prefect_plugboard.testing import Collector


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


class SlowToArrive(Collector):
    """A `Collector` whose worker takes long to come up: it waits for a file (its gate).

    Unpickling it anywhere but where it was made waits until `gate` exists, like a component
    whose state takes long to load. Its worker registers nothing until then, so every peer
    that sends to it waits to connect anywhere: the others' ports stay open meanwhile.
    """

    def __init__(self, gate: str, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.made_in = os.getpid()

    def __setstate__(self, state: dict[str, _t.Any]) -> None:
        self.__dict__.update(state)
        if os.getpid() != self.made_in:
            while not Path(self.gate).exists():
                time.sleep(0.02)


class WorkerProbe(Collector):
    """A `Collector` that notes what its worker holds of Prefect: modules and settings."""

    exports = ["prefect_modules", "prefect_settings"]

    async def init(self) -> None:
        self.prefect_modules = sorted(m for m in sys.modules if m.split(".")[0] == "prefect")
        self.prefect_settings = sorted(k for k in os.environ if k.startswith("PREFECT_"))


def ray_leftovers() -> list[str]:
    """What runs left behind on the session's Ray and in this driver: it should be nothing.

    Live actors of plugboard, placement groups not removed, runs this driver's coordinator
    still holds (on any event loop), and ports it still listens on.
    """
    import ray
    from ray._private import state

    from prefect_plugboard.process.ray.coordinator_server import held_runs, open_ports

    left = [
        f"actor {a['Name']}"
        for a in state.actors().values()
        if a["State"] == "ALIVE" and a["Name"].startswith("plugboard")
    ]
    left += [
        f"placement group {group_id}"
        for group_id, group in ray.util.placement_group_table().items()
        if group["state"] != "REMOVED"
    ]
    left += [f"run {run}" for run in held_runs()]
    left += [f"coordinator port {address}" for address in open_ports()]
    return left


def wire(source: str, target: str, fields: Iterable[str], **settings: _t.Any) -> list[_t.Any]:
    """Connectors from each of `fields` of component `source` to the same field of `target`."""
    return connect(*(f"{source}.{f} -> {target}.{f}" for f in fields), **settings)


async def run_failing_midway(writer: Component, fail_on_step: int = 7) -> int:
    """Runs numbers 0, 1, ... through a component that fails on `fail_on_step` into the
    writer's field `y`; returns how many rows the writer received before the run failed.

    The connector into the writer holds one row, so the writer receives at least
    `fail_on_step - 2` rows: with a smaller `chunk_size`, some of them were still buffered.
    """
    from prefect_plugboard import LocalProcess, PlugboardError
    from prefect_plugboard.testing import FailingComponent, ListSource, run_in_memory

    process = LocalProcess(
        components=[
            ListSource(name="src", items=range(100)),
            FailingComponent(name="bad", fail_on_step=fail_on_step),
            writer,
        ],
        connectors=connect("src.x -> bad.x") + connect(f"bad.y -> {writer.name}.y", maxsize=1),
    )
    try:
        await run_in_memory(process)
    except PlugboardError as exc:
        assert f"bad failed on step {fail_on_step}" in error_text(exc)
    else:
        raise AssertionError("the run did not fail")
    return writer.run_stats.steps


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
    from prefect_plugboard.process.ray.sender import HIGH_WATER

    kernel = sum(
        int(Path(f"/proc/sys/net/ipv4/tcp_{kind}").read_text().split()[2])
        for kind in ("wmem", "rmem")
    )
    frame = payload_bytes * batch_size
    buffered = HIGH_WATER + frame + kernel + frame + (256 << 10)
    return batch_size + math.ceil(buffered / frame) * batch_size + batch_size + 1


def write_tls_files(
    directory: Path, name: str = "cluster", addresses: _t.Sequence[str] = ("127.0.0.1",)
) -> dict[str, str]:
    """A certificate authority and a certificate it signed, as Ray's TLS variables name them.

    Like Ray's own recipe: one key and certificate for every node (naming `addresses` both
    as IP addresses and, as Ray's gRPC matches them, as DNS names), the CA to check them by.
    Returns `RAY_TLS_SERVER_CERT`, `RAY_TLS_SERVER_KEY` and `RAY_TLS_CA_CERT` (not
    `RAY_USE_TLS`).
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: _t.Any
    ) -> x509.Certificate:
        subject_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name)
            .issuer_name(issuer or subject_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        *(x509.DNSName(a) for a in addresses),
                        *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses),
                    ]
                ),
                False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate(f"{name} CA", ca_key, None, ca_key)
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = certificate(f"{name} node", node_key, ca.subject, ca_key)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "RAY_TLS_CA_CERT": directory / f"{name}-ca.crt",
        "RAY_TLS_SERVER_CERT": directory / f"{name}-node.crt",
        "RAY_TLS_SERVER_KEY": directory / f"{name}-node.key",
    }
    files["RAY_TLS_CA_CERT"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["RAY_TLS_SERVER_CERT"].write_bytes(node.public_bytes(serialization.Encoding.PEM))
    files["RAY_TLS_SERVER_KEY"].write_bytes(
        node_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {variable: str(path) for variable, path in files.items()}


def listening_sockets(owners: Iterable[int] | None = None) -> dict[int, list[str]]:
    """Every listening TCP socket on this machine: its port and the addresses it is bound to.

    Read from `/proc/net/tcp` and `/proc/net/tcp6` (Linux), which list every process's. With
    `owners`, only the sockets those processes hold open (found by inode in `/proc/<pid>/fd`;
    a process gone meanwhile holds none).
    """
    import ipaddress

    held = None if owners is None else _socket_inodes(owners)
    found: dict[int, list[str]] = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or (held is not None and inode not in held):  # LISTEN
                continue
            host_hex, port_hex = local.split(":")
            raw = bytes.fromhex(host_hex)
            # The kernel writes each 32-bit word in host (little-endian) order.
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found.setdefault(int(port_hex, 16), []).append(str(ipaddress.ip_address(ordered)))
    return found


def _socket_inodes(pids: Iterable[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            with contextlib.suppress(OSError):
                target = os.readlink(descriptor)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def ray_processes(*, alive_only: bool = True) -> dict[int, int]:
    """This session's Ray driver and worker processes: pid -> the port Ray's own gRPC server
    listens on in it (bound to every interface by Ray; Ray's token guards it).

    Read from the GCS worker table of the cluster this driver is connected to; with
    `alive_only=False`, also the processes that have ended (their pids may be reused).
    """
    from ray._private import state
    from ray.core.generated import gcs_pb2

    accessor = state.state._connect_and_get_accessor()
    processes = {}
    for raw in accessor.get_worker_table():
        worker = gcs_pb2.WorkerTableData.FromString(raw)  # type: ignore[attr-defined]
        if worker.is_alive or not alive_only:
            processes[worker.pid] = worker.worker_address.port
    return processes


class Watch:
    """Looks at something every `interval` seconds, on the event loop, from its creation until
    `halt()`: what a test checks while a run goes on (subclasses say what `look` notes)."""

    interval = 0.05

    def __init__(self) -> None:
        self._watching = asyncio.ensure_future(self._watch())

    async def look(self) -> None:
        """Notes what is there now."""
        raise NotImplementedError

    async def halt(self) -> None:
        """Stops looking."""
        self._watching.cancel()
        await asyncio.gather(self._watching, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await self.look()
            await asyncio.sleep(self.interval)


async def registered_streams(names: list[str]) -> tuple[str, dict[str, _t.Any]]:
    """The running run's id and where `names` receive, once their workers registered them.

    Read from this driver's coordinator on the running event loop (the run must be the only
    one it holds).
    """
    from prefect_plugboard.process.ray.coordinator_server import driver_coordinator

    rooms = driver_coordinator().rooms
    deadline = time.monotonic() + 60
    while not (runs := rooms.runs()):
        assert time.monotonic() < deadline, "no run reached the coordinator"
        await asyncio.sleep(0.05)
    (run_id,) = runs
    addresses = await asyncio.wait_for(rooms.addresses(run_id, names), 60)
    assert addresses is not None, "the run stopped before its workers registered"
    return run_id, addresses


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything a peer sends until it closes (bounded only so that a bug cannot hang)."""
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 30):
            data += chunk
    except ConnectionResetError:
        pass
    return data


# ----- events ----------------------------------------------------------------------------


class Tick(BaseModel):
    n: int


class TickEvent(Event):
    type: _t.ClassVar[str] = "tick"
    data: Tick


class Clock(Component):
    """Publishes `ticks` tick events, noting when it published the last."""

    io = IO(output_events=[TickEvent])
    exports = ["last_at"]

    def __init__(self, ticks: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._ticks = ticks
        self._n = 0
        self.last_at = 0.0

    async def step(self) -> None:
        if self._n == self._ticks:
            await self.io.close()
            return
        self.io.queue_event(TickEvent(source=self.name, data=Tick(n=self._n)))
        self.last_at = time.time()
        self._n += 1


class Listener(Component):
    """Records the ticks it hears."""

    io = IO(input_events=[TickEvent])
    exports = ["heard"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.heard: list[int] = []

    @TickEvent.handler
    async def on_tick(self, event: TickEvent) -> None:
        self.heard.append(event.data.n)


# ----- the seed ----------------------------------------------------------------------------

SEED = Path(__file__).resolve().parents[1] / "examples" / "running_in_parallel" / "hello_ray.py"


def load_seed() -> ModuleType:
    """The seed tutorial's module (`examples/running_in_parallel/hello_ray.py`), imported."""
    spec = importlib.util.spec_from_file_location("hello_ray", SEED)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----- the command line ------------------------------------------------------------------------


class CliResult(_t.NamedTuple):
    """What a `prefect-plugboard` command left: its exit code and each stream's output."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path, api: str) -> CliResult:
    """`prefect-plugboard ARGS` typed in `cwd` against `api`, run in this process (with the
    session's Ray, if a test uses one, as the cluster it joins).

    Call it from a thread (`asyncio.to_thread`) in an async test: commands run event loops.
    """
    from typer.testing import CliRunner

    from prefect_plugboard.cli import app

    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env={"PREFECT_API_URL": api})
    finally:
        os.chdir(before)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def python_code(
    code: str,
    *args: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    python: str | Path = sys.executable,
) -> subprocess.CompletedProcess[str]:
    """`python -c CODE ARGS` in a process of its own (this venv's Python unless `python` is
    another's); its exit code and output, as text."""
    return subprocess.run(
        [str(python), "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
