"""Strangers on the network against a running model's workers and its driver, on a real Ray.

The attack of the issue: connect to the ports the workers listen on and send a pickle whose
`__reduce__` runs a command; then a stranger who knows the protocol, the run and the
connector, but not the run's secret. The workers' ports are read from the run's room in the
driver's coordinator, where the workers register them; the driver's own port (where the
workers reach that coordinator) gets the same two strangers.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import logging
import os
from pathlib import Path
import pickle
import struct
import typing as _t

import pytest

from prefect_plugboard import (
    ChannelError,
    ComponentError,
    ConnectorSpec,
    RayConnector,
    RayProcess,
    Resource,
    Status,
)
from prefect_plugboard.library import FileWriter
from prefect_plugboard.process.ray import coordinator_server
from prefect_plugboard.process.ray.auth import LINK_PROTOCOL, StreamSecurity, claim
from prefect_plugboard.process.ray.coordinator_server import driver_coordinator
from prefect_plugboard.process.ray.link import LINK_FRAME_BYTES
from prefect_plugboard.process.ray.stream import StreamAddress
from prefect_plugboard.testing import Collector, ListSource
from tests import helpers
from tests.helpers import (
    SlowToArrive,
    Watch,
    listening_sockets,
    ray_leftovers,
    ray_processes,
    registered_streams,
    until_closed,
)
from tests.prefect_api import final_task_runs, task_run_logs, wait_for_log


pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

GREETING_BYTES = 38


class Exploit:
    """A pickle that runs a shell command where it is loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[_t.Any, tuple[str]]:
        return (os.system, (self.command,))


class Attempt(_t.NamedTuple):
    """What an attacker saw: its own address, whether it was greeted, what it was answered."""

    local: str
    greeted: bool
    answer: bytes


async def send_a_pickle(address: StreamAddress, payload: bytes) -> Attempt:
    """The issue's attack: one length-prefixed frame holding the pickle, at once."""
    reader, writer = await asyncio.open_connection(address.host, address.port)
    local = "{}:{}".format(*writer.get_extra_info("sockname")[:2])
    writer.write(struct.pack("!I", len(payload)) + payload)
    received = await until_closed(reader)
    writer.close()
    return Attempt(local, len(received) >= GREETING_BYTES, received[GREETING_BYTES:])


async def claim_with_a_wrong_secret(
    address: StreamAddress, run_id: str, connector: str, payload: bytes, *, link: bool = False
) -> Attempt:
    """A valid handshake and frame, for the right run and connector, under a guessed secret.

    With `link`, the handshake of a worker's link to the driver, as the run's worker 0.
    """
    reader, writer = await asyncio.open_connection(address.host, address.port)
    local = "{}:{}".format(*writer.get_extra_info("sockname")[:2])
    greeting = await reader.readexactly(GREETING_BYTES)
    guessed = StreamSecurity.for_run(run_id, tls=False, loopback=True)
    if link:
        said, _, sealer = claim(
            guessed, greeting, run_id, "0", LINK_FRAME_BYTES, protocol=LINK_PROTOCOL
        )
    else:
        said, _, sealer = claim(guessed, greeting, connector, "x", 1 << 20)
    writer.write(said + sealer.seal(payload))
    answer = await until_closed(reader)
    writer.close()
    return Attempt(local, True, answer)


def worker_environments() -> dict[str, bytes]:
    """Every Ray worker process's environment (where a runtime_env's variables would be)."""
    places: dict[str, bytes] = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"ray::" in (proc / "cmdline").read_bytes():
                places[f"environment of {proc.name}"] = (proc / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return places


async def run_to_the_end(
    process: RayProcess, starting: asyncio.Future[None]
) -> tuple[dict[int, list[str]], Status]:
    """Once `init()` (`starting`) is done: the ports then listening; runs and destroys the
    process, and returns them with the status its run ended in."""
    await starting
    after_start = listening_sockets()
    await process.run()
    status = process.status
    await process.destroy()
    return after_start, status


class ListenerWatch(Watch):
    """Every listening socket the driver and the Ray workers hold while a run goes on.

    It looks every 50 ms, so it also sees ports that open late (a receiver whose worker comes
    up late), though one open for less may slip by (such a receiver listens only until its
    senders are in). Ray's own gRPC server in each of those processes is left out at the end
    (Ray binds it to every interface; Ray's token guards it, see the README's Security section).
    """

    def __init__(self) -> None:
        self.seen: dict[int, set[str]] = {}
        super().__init__()

    async def look(self) -> None:
        owners = {os.getpid(), *ray_processes()}
        for port, hosts in (await asyncio.to_thread(listening_sockets, owners)).items():
            self.seen.setdefault(port, set()).update(hosts)

    async def stop(self) -> dict[int, set[str]]:
        """Stops looking; returns what the project listened on: port -> addresses."""
        await self.halt()
        rays = set(ray_processes(alive_only=False).values())
        return {port: hosts for port, hosts in self.seen.items() if port not in rays}


def rows(path: Path) -> list[int]:
    with path.open() as f:
        return [int(row[0]) for row in list(csv.reader(f))[1:]]


async def test_strangers_at_every_listening_port_run_nothing_and_the_model_completes(
    tmp_path: Path,
) -> None:
    marker, gate = tmp_path / "pwned", tmp_path / "gate"
    payload = pickle.dumps([Exploit(f"touch {marker}")])
    control = tmp_path / "control"
    pickle.loads(pickle.dumps([Exploit(f"touch {control}")]))
    assert control.exists()

    items = list(range(200))
    process = RayProcess(
        components=[
            ListSource(name="src", items=items),
            FileWriter(name="w1", path=tmp_path / "w1.csv", field_names=["x"]),
            FileWriter(name="w2", path=tmp_path / "w2.csv", field_names=["x"]),
            # Its worker comes up late, so src connects to nobody before the gate opens.
            SlowToArrive(name="late", gate=str(gate), resources=Resource(cpu=1)),
        ],
        connectors=helpers.connect(
            "src.x -> w1.x", "src.x -> w2.x", "src.x -> late.x", kind=RayConnector
        ),
    )
    watch = ListenerWatch()
    starting = asyncio.ensure_future(process.init())
    try:
        run_id, addresses = await registered_streams(["w1", "w2"])
        (coordinator,) = driver_coordinator().listening
        listening = listening_sockets()
        secret = driver_coordinator()._secrets[run_id.encode()].secret
        environments = worker_environments()
        bound = {name: listening.get(a.port) for name, a in addresses.items()}
        attempts = await asyncio.gather(
            *(send_a_pickle(address, payload) for address in addresses.values()),
            *(
                claim_with_a_wrong_secret(address, run_id, f"src.x..{name}.x", payload)
                for name, address in addresses.items()
            ),
        )
    finally:
        gate.touch()
    await starting  # every worker registered its receivers, the late one's included
    late = await driver_coordinator().rooms.addresses(run_id, ["late"])
    after_start, status = await run_to_the_end(process, starting)
    projects = await watch.stop()

    # The run's secret reached its workers as a task argument only, not in the environment
    # (a runtime_env's variables, which Ray's dashboard shows, end up there).
    assert environments
    secrets = (secret, secret.hex().encode(), base64.b64encode(secret))
    for form in secrets:
        assert not [name for name, seen in environments.items() if form in seen]
    # Every socket the driver and the workers were seen listening on during the run (the
    # watch looks every 50 ms, so a port open for less may slip by) was bound to one address,
    # never to every interface; the late worker's receiver registered a loopback address.
    assert projects, "the watch saw no socket of the run"
    assert not {port: hosts for port, hosts in projects.items() if hosts & {"0.0.0.0", "::"}}
    assert late is not None and late["late"].host == "127.0.0.1"
    # One machine: the driver's port and the workers' listened on loopback only (while the
    # run was held, so for certain), and the workers only until their senders came.
    assert listening.get(coordinator.port) == ["127.0.0.1"]
    assert bound == {name: ["127.0.0.1"] for name in addresses}
    assert all(a.host == "127.0.0.1" for a in addresses.values())
    assert not any(a.port in after_start for a in addresses.values())
    # Nothing ran, nothing was answered, and each stranger is one warning in its target's log.
    assert not marker.exists()
    assert all(a.greeted and a.answer == b"" for a in attempts)
    assert rows(tmp_path / "w1.csv") == items and rows(tmp_path / "w2.csv") == items
    assert process.components["late"].received == items
    assert status is Status.COMPLETED
    runs = await final_task_runs(process.flow_run_id, 4)
    for index, name in enumerate(addresses):
        logs = await wait_for_log(runs[name].id, "does not speak")
        refusals = [log.message for log in logs if log.message.startswith("Refused a connection")]
        strangers = (attempts[index].local, attempts[len(addresses) + index].local)
        assert len(refusals) == 2, refusals
        assert f"from {strangers[0]} to component {name!r}: it does not speak" in refusals[0]
        assert f"from {strangers[1]} to component {name!r}: it did not prove" in refusals[1]
        assert all(log.level == 30 for log in logs if log.message in refusals)  # WARNING
    # Not one task-run log line holds the run's secret, in any of its printable forms.
    for task_run in runs.values():
        for log in await task_run_logs(task_run.id):
            text = log.message.encode()
            assert not [form for form in (*secrets, repr(secret).encode()) if form in text]
    assert not ray_leftovers()


async def test_strangers_at_the_drivers_port_run_nothing_and_the_model_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker, gate = tmp_path / "pwned", tmp_path / "gate"
    payload = pickle.dumps([Exploit(f"touch {marker}")])
    items = list(range(200))
    process = RayProcess(
        components=[
            ListSource(name="src", items=items),
            FileWriter(name="w", path=tmp_path / "w.csv", field_names=["x"]),
            # Its worker comes up late: the driver's port waits for it meanwhile.
            SlowToArrive(name="late", gate=str(gate), resources=Resource(cpu=1)),
        ],
        connectors=helpers.connect("src.x -> w.x", "src.x -> late.x", kind=RayConnector),
    )
    starting = asyncio.ensure_future(process.init())
    try:
        run_id, _ = await registered_streams(["w"])  # the first worker reached the driver
        (address,) = driver_coordinator().listening
        bound = listening_sockets().get(address.port)
        with caplog.at_level(logging.WARNING, logger=coordinator_server.__name__):
            attempts = await asyncio.gather(
                send_a_pickle(address, payload),
                claim_with_a_wrong_secret(address, run_id, "", payload, link=True),
            )
    finally:
        gate.touch()
    after_start, status = await run_to_the_end(process, starting)

    # One machine: the driver listened on loopback only, and only until its workers came.
    assert address.host == "127.0.0.1" and bound == ["127.0.0.1"]
    assert address.port not in after_start
    # Nothing ran, nothing was answered, each stranger is one warning naming it; the run
    # completed with every row.
    assert not marker.exists()
    assert all(a.greeted and a.answer == b"" for a in attempts)
    warnings = [r.getMessage() for r in caplog.records if r.name == coordinator_server.__name__]
    assert len(warnings) == 2, warnings
    target = "to this driver's run coordinator"
    assert f"from {attempts[0].local} {target}: it does not speak" in warnings[0]
    assert f"from {attempts[1].local} {target}: it did not prove" in warnings[1]
    assert rows(tmp_path / "w.csv") == items
    assert process.components["late"].received == items
    assert status is Status.COMPLETED
    assert not ray_leftovers()


async def test_a_message_over_max_frame_bytes_fails_the_run_naming_the_connector() -> None:
    process = RayProcess(
        components=[ListSource(name="src", items=["small", "x" * 10_000]), Collector(name="sink")],
        connectors=[
            RayConnector(spec=ConnectorSpec(source="src.x", target="sink.x"), max_frame_bytes=4096)
        ],
    )
    with pytest.raises(ComponentError) as info:
        async with process:
            await process.run()
    assert info.value.component == "src"
    cause = info.value.__cause__
    assert isinstance(cause, ChannelError)
    assert "connector 'src.x..sink.x'" in str(cause) and "max_frame_bytes (4,096)" in str(cause)
    assert not ray_leftovers()
