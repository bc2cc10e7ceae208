"""Helpers shared by the tests: connectors from arrows, free ports, components, Ray checks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import socket
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


def listening_sockets() -> dict[int, list[str]]:
    """Every listening TCP socket on this machine: its port and the addresses it is bound to.

    Read from `/proc/net/tcp` and `/proc/net/tcp6` (Linux), which list every process's.
    """
    import ipaddress

    found: dict[int, list[str]] = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # LISTEN
                continue
            host_hex, port_hex = local.split(":")
            raw = bytes.fromhex(host_hex)
            # The kernel writes each 32-bit word in host (little-endian) order.
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found.setdefault(int(port_hex, 16), []).append(str(ipaddress.ip_address(ordered)))
    return found


async def registered_streams(names: list[str]) -> tuple[str, dict[str, _t.Any]]:
    """The running run's id and where `names` receive, once their workers registered them.

    Read from this driver's coordinator (the run must be the only one it holds).
    """
    from prefect_plugboard.process.ray.coordinator import shared_coordinator

    coordinator = shared_coordinator()
    deadline = time.monotonic() + 60
    while not (runs := await coordinator.runs.remote()):
        assert time.monotonic() < deadline, "no run reached the coordinator"
        await asyncio.sleep(0.05)
    (run_id,) = runs
    addresses = await asyncio.wait_for(coordinator.addresses.remote(run_id, names), 60)
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
