"""Runs a RayProcess on a local Ray set up for TLS (by the environment); prints one JSON line.

Usage: python tls_streams.py DIR. The environment holds `RAY_USE_TLS=1` and Ray's certificate
variables (and Prefect's settings, which the Ray the process starts must not pass on to its
workers); DIR receives the gate file and holds `other-*` files, a certificate of another CA.
While the sink listens (its peer `late` comes up only when the gate opens), strangers knock:
one in plain text, one with a certificate of another CA, one with the cluster's certificate
but not the run's secret. The sink, on a fresh worker, notes what it holds of Prefect. Once
the process is initialised, it notes the autoscaler monitors running (a local Ray has none).
"""

import asyncio
import contextlib
import json
import os
from pathlib import Path
import ssl
import sys
import typing as _t

import ray

from prefect_plugboard import ConnectorSpec, RayConnector, RayProcess, Resource
from prefect_plugboard.process.ray.auth import StreamSecurity, claim
from prefect_plugboard.process.ray.stream import StreamAddress
from prefect_plugboard.process.ray.tls import client_context
from prefect_plugboard.testing import ListSource
from tests.helpers import SlowToArrive, WorkerProbe, registered_streams, until_closed


GREETING_BYTES = 38


async def knock(
    address: StreamAddress, run_id: str, tls: ssl.SSLContext | None
) -> dict[str, _t.Any]:
    """A stranger: reads the greeting, claims in plain text or over `tls`, with a guessed key."""
    reader, writer = await asyncio.open_connection(address.host, address.port)
    greeting = await reader.readexactly(GREETING_BYTES)
    seen: dict[str, _t.Any] = {"tls_follows": bool(greeting[5] & 1), "tls_established": False}
    try:
        if tls is not None:
            await writer.start_tls(tls)
            seen["tls_established"] = True
        guessed = StreamSecurity.for_run(run_id, tls=True, loopback=True)
        writer.write(claim(guessed, greeting, "src.x..sink.x", "x", 1 << 20)[0])
        seen["answer"] = (await until_closed(reader)).hex()
    except (ssl.SSLError, ConnectionError) as exc:
        seen["refused_by_tls"] = type(exc).__name__
    writer.close()
    return seen


def stranger_context(directory: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(directory / "other-node.crt", directory / "other-node.key")
    return context


async def main(directory: Path) -> dict[str, _t.Any]:
    gate = directory / "gate"
    items = list(range(300))
    sink = WorkerProbe(name="sink")
    process = RayProcess(
        components=[
            ListSource(name="src", items=items),
            sink,
            SlowToArrive(name="late", gate=str(gate), resources=Resource(cpu=1)),
        ],
        connectors=[
            RayConnector(spec=ConnectorSpec(source="src.x", target="sink.x"), maxsize=16),
            RayConnector(spec=ConnectorSpec(source="src.x", target="late.x"), maxsize=16),
        ],
        ray_init_kwargs={"num_cpus": 2},  # the process starts its Ray, and stops it
    )
    starting = asyncio.ensure_future(process.init())
    while not ray.is_initialized():
        await asyncio.sleep(0.05)
    try:
        run_id, addresses = await registered_streams(["sink"])
        address = addresses["sink"]
        knocks = {
            "plain": await knock(address, run_id, None),
            "other_ca": await knock(address, run_id, stranger_context(directory)),
            "cluster_certificate": await knock(address, run_id, client_context()),
        }
    finally:
        gate.touch()
    await starting
    monitors = ray_processes_running("autoscaler/_private/monitor.py")
    await process.run()
    await process.destroy()
    probe = process.components["sink"]
    return {
        "ray_uses_tls": os.environ.get("RAY_USE_TLS"),
        "knocks": knocks,
        "received": sink.received == items,
        "late_received": process.components["late"].received == items,
        "worker_prefect_modules": probe.prefect_modules,
        "worker_prefect_settings": probe.prefect_settings,
        "disconnected_after": not ray.is_initialized(),
        "autoscaler_monitors": monitors,
    }


def ray_processes_running(script: str) -> list[int]:
    """The PIDs of this process's descendants running `script` (Ray ships psutil)."""
    from ray.thirdparty_files import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(script in part for part in child.cmdline()):
                found.append(child.pid)
    return found


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main(Path(sys.argv[1])))))
