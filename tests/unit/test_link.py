"""A worker's link to its driver's run coordinator: the protocol, strangers, floods, drops.

Real loopback TCP, no Ray: the driver's end is a `CoordinatorServer`, the workers' ends are
`DriverLink`s, and the attackers are plain sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
import pickle
import struct
import typing as _t

import pytest

from prefect_plugboard.log_lines import LogLine
from prefect_plugboard.process.ray import coordinator_server
from prefect_plugboard.process.ray.auth import (
    FRAME_HEAD,
    LINK_PROTOCOL,
    FrameSealer,
    StreamSecurity,
    claim,
)
from prefect_plugboard.process.ray.coordinator_server import CoordinatorServer
from prefect_plugboard.process.ray.gate import LOGGED_REFUSALS, MAX_PENDING_HANDSHAKES
from prefect_plugboard.process.ray.link import LINK_FRAME_BYTES, DriverLink
from prefect_plugboard.process.ray.reports import Ended, HostLost, Lines
from prefect_plugboard.process.ray.stream import StreamAddress
from tests.helpers import listening_sockets


GREETING_BYTES = 4 + 1 + 1 + 32
WAIT = 10.0  # bounds every wait, so that a bug fails instead of hanging


def a_run(run_id: str = "run-1") -> StreamSecurity:
    return StreamSecurity.for_run(run_id, tls=False, loopback=True)


class Exploit:
    """A pickle that runs a shell command where it is loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[_t.Any, tuple[str]]:
        return (os.system, (self.command,))


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), WAIT):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def send_raw(address: StreamAddress, data: bytes) -> tuple[str, bytes]:
    """Sends `data` at once; returns the stranger's own address and all it was sent back."""
    reader, writer = await asyncio.open_connection(address.host, address.port)
    local = "{}:{}".format(*writer.get_extra_info("sockname")[:2])
    writer.write(data)
    answer = await until_closed(reader)
    writer.close()
    return local, answer


async def claim_as(
    address: StreamAddress, security: StreamSecurity, host: str = "0"
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter, FrameSealer, bytes]:
    """A raw client through the link's handshake with `security`; what it was answered."""
    reader, writer = await asyncio.open_connection(address.host, address.port)
    local = "{}:{}".format(*writer.get_extra_info("sockname")[:2])
    greeting = await reader.readexactly(GREETING_BYTES)
    said, _, sealer = claim(
        security, greeting, security.run_id, host, LINK_FRAME_BYTES, protocol=LINK_PROTOCOL
    )
    writer.write(said)
    try:
        answer = await asyncio.wait_for(reader.read(32), WAIT)
    except ConnectionResetError:
        answer = b""
    return local, reader, writer, sealer, answer


async def reports_of(server: CoordinatorServer, run_id: str, count: int) -> list[_t.Any]:
    """The first `count` reports of a run, waiting for them."""
    got: list[_t.Any] = []
    cursor = 0
    while len(got) < count:
        updates = await asyncio.wait_for(server.rooms.updates(run_id, cursor, True), WAIT)
        got += updates.reports
        cursor = updates.cursor
    return got


# ----- the protocol ---------------------------------------------------------------------------


async def test_hosts_register_report_and_follow_the_drivers_commands() -> None:
    run = a_run()
    server = CoordinatorServer()
    address = await server.open(run, 2, loopback=True)
    assert address.host == "127.0.0.1"
    assert listening_sockets()[address.port] == ["127.0.0.1"]  # never every interface
    first, second = DriverLink(address, run, 0), DriverLink(address, run, 1)
    assert await first.connect()
    assert server.listening == [address]  # host 1 is still to come
    assert await second.connect()
    assert server.listening == []  # every host is in: nobody else needs the port
    assert address.port not in listening_sockets()

    await first.register({"a": StreamAddress("10.0.0.1", 1)})
    await second.register({"b": StreamAddress("10.0.0.2", 2)})
    expected = {"a": StreamAddress("10.0.0.1", 1), "b": StreamAddress("10.0.0.2", 2)}
    assert await asyncio.wait_for(first.addresses(["a", "b"]), WAIT) == expected
    assert server.rooms.step(run.run_id) == 1
    assert await asyncio.wait_for(second.next_command(0), WAIT) == ("step", 1)
    server.rooms.go(run.run_id, {"log_prints": True})
    assert await asyncio.wait_for(first.next_command(1), WAIT) == ("go", {"log_prints": True})

    # A report larger than a frame travels in several, and arrives whole and in order.
    lines = Lines("a", tuple(LogLine(1.0, 20, f"{i:06d}" + "x" * 1000) for i in range(3000)))
    ended = Ended("a", "completed", {"status": "completed"})
    await first.report([lines])
    await first.report([ended])
    assert await reports_of(server, run.run_id, 2) == [lines, ended]

    await first.close()  # a clean end: the driver has everything, and counts nothing lost
    await server.link_ended(run.run_id, 0, WAIT)
    server.rooms.stop(run.run_id, "stopped by a StopEvent", graceful=True)
    assert await asyncio.wait_for(second.wait_stop(), WAIT) == "stopped by a StopEvent"
    await second.close()
    await server.link_ended(run.run_id, 1, WAIT)
    assert not any(isinstance(r, HostLost) for r in server.rooms.room(run.run_id).reports)
    assert first.lost is None and second.lost is None
    await server.forget(run.run_id)
    assert server.rooms.runs() == []


async def test_runs_side_by_side_share_the_port_each_with_its_own_secret() -> None:
    one, two = a_run("run-1"), a_run("run-2")
    server = CoordinatorServer()
    address = await server.open(one, 1, loopback=True)
    assert await server.open(two, 1, loopback=True) == address  # one port for both

    # A host of run 2 naming run 1 holds the wrong secret for it.
    impostor = StreamSecurity(one.run_id, two.secret, tls=False, loopback=True)
    *_, answer = await claim_as(address, impostor)
    assert answer == b""
    hosts = [DriverLink(address, one, 0), DriverLink(address, two, 0)]
    assert all([await h.connect() for h in hosts])
    server.rooms.stop(one.run_id, "one stops")
    assert await asyncio.wait_for(hosts[0].wait_stop(), WAIT) == "one stops"
    assert hosts[1].room.stop_reason is None  # a stop of one run is nothing to the other
    for run, host in zip((one, two), hosts, strict=True):
        await host.close()
        await server.forget(run.run_id)


async def test_the_port_listens_only_while_a_run_waits_for_a_host() -> None:
    server = CoordinatorServer()
    first = await server.open(a_run("run-1"), 1, loopback=True)
    await server.forget("run-1")  # its host never came (its task failed): the port closes
    assert server.listening == []
    assert first.port not in listening_sockets()
    late = DriverLink(first, a_run("run-1"), 0)
    with pytest.raises(ConnectionError, match="could not reach the driver"):
        await late.connect()

    # The next run opens it again; a host of a run that has ended is turned away quietly.
    run = a_run("run-2")
    address = await server.open(run, 2, loopback=True)
    assert server.listening == [address]
    ended = a_run("run-1")
    stray = DriverLink(address, ended, 0)
    assert not await stray.connect()
    assert stray.room.stop_reason is not None  # its components are discarded, nothing runs
    await server.forget(run.run_id)
    assert server.listening == []


# ----- strangers --------------------------------------------------------------------------------


async def test_strangers_are_refused_with_one_warning_each_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    run = a_run()
    server = CoordinatorServer()
    address = await server.open(run, 1, loopback=True)
    payload = pickle.dumps([Exploit(f"touch {marker}")])
    with caplog.at_level(logging.WARNING, logger=coordinator_server.__name__):
        pickled = await send_raw(address, struct.pack("!I", len(payload)) + payload)
        guessed, *_, guessed_answer = await claim_as(address, a_run(run.run_id))
        unknown, *_, unknown_answer = await claim_as(address, a_run("run-9"))
        host = DriverLink(address, run, 0)
        assert await host.connect()  # the run's own host gets in after them
    await host.report([Ended("a", "completed", {})])
    assert await reports_of(server, run.run_id, 1) == [Ended("a", "completed", {})]
    await host.close()
    await server.forget(run.run_id)

    assert not marker.exists()
    assert len(pickled[1]) == GREETING_BYTES  # greeted, then closed: nothing answered
    assert guessed_answer == unknown_answer == b""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings
    coordinator = "to this driver's run coordinator"
    assert f"from {pickled[0]} {coordinator}: it does not speak" in warnings[0]
    assert f"from {guessed} {coordinator}: it did not prove it holds" in warnings[1]
    assert f"from {unknown} {coordinator}: it names no run this driver holds" in warnings[2]
    assert all("closed before anything it sent was decoded" in w for w in warnings)


async def test_silent_connections_are_closed_at_their_deadline_and_a_flood_is_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = a_run()
    server = CoordinatorServer(handshake_timeout=0.5)
    address = await server.open(run, 1, loopback=True)
    with caplog.at_level(logging.WARNING, logger=coordinator_server.__name__):
        silent = [
            await asyncio.open_connection(address.host, address.port)
            for _ in range(MAX_PENDING_HANDSHAKES + 1)
        ]
        # Each one is closed: the oldest as the one over the limit comes, the others at their
        # deadline.
        closed = await asyncio.gather(*(until_closed(reader) for reader, _ in silent))
        for _, writer in silent:
            writer.close()
        host = DriverLink(address, run, 0)
        assert await host.connect()  # the port still serves the run
        await host.close()
        await server.forget(run.run_id)  # the port closes: the counted refusals are told
    assert all(len(answer) <= GREETING_BYTES for answer in closed)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == LOGGED_REFUSALS + 1
    assert sum("had waited longest" in w for w in warnings) == 1
    assert "did not complete the handshake within 0.5 s" in warnings[-2]
    assert warnings[-1].startswith(
        f"This driver's run coordinator refused {MAX_PENDING_HANDSHAKES + 1} connections"
    )


async def test_an_oversized_or_altered_frame_breaks_the_link_and_the_host_counts_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = a_run()
    server = CoordinatorServer()
    address = await server.open(run, 2, loopback=True)
    with caplog.at_level(logging.WARNING, logger=coordinator_server.__name__):
        # A proven peer (the secret's holder) whose frames are then replaced on the way.
        *_, reader, writer, _, answer = await claim_as(address, run, "0")
        assert len(answer) == 32
        writer.write(FRAME_HEAD.pack(LINK_FRAME_BYTES + 1, bytes(16)))  # no payload follows
        await until_closed(reader)
        *_, reader, writer, _, answer = await claim_as(address, run, "1")
        forged = FrameSealer(bytes(32)).seal(b"\x00" + pickle.dumps(("report", [])))
        writer.write(forged)
        await until_closed(reader)
    lost = await reports_of(server, run.run_id, 2)
    assert lost[0] == HostLost(
        0,
        f"its link to the driver broke: a frame of {LINK_FRAME_BYTES + 1:,} bytes is "
        f"over the limit of {LINK_FRAME_BYTES:,}",
    )
    assert isinstance(lost[1], HostLost) and "failed its integrity check" in lost[1].reason
    assert len(caplog.records) == 2
    await server.forget(run.run_id)


async def test_a_message_over_the_message_limit_breaks_the_link_before_it_piles_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = a_run()
    limit = 3 * LINK_FRAME_BYTES
    server = CoordinatorServer(message_limit=limit)
    address = await server.open(run, 2, loopback=True)
    # Within the limit, a message of several frames arrives whole.
    host = DriverLink(address, run, 1)
    assert await host.connect()
    lines = Lines("a", (LogLine(0.0, logging.INFO, "x" * (2 * LINK_FRAME_BYTES)),))
    await host.report([lines])
    assert await reports_of(server, run.run_id, 1) == [lines]
    with caplog.at_level(logging.WARNING, logger=coordinator_server.__name__):
        # A proven peer whose message never ends: full frames, each saying more follows.
        *_, reader, writer, sealer, answer = await claim_as(address, run, "0")
        assert len(answer) == 32
        for _ in range(4):
            writer.write(sealer.seal(b"\x01" + bytes(LINK_FRAME_BYTES - 1)))
        await until_closed(reader)
        writer.close()
    lost = (await reports_of(server, run.run_id, 2))[1]
    assert lost == HostLost(
        0,
        f"its link to the driver broke: a message grew over the limit of {limit:,} bytes"
        " (its components' final field values and exports, or a burst of reports, are too "
        "large to send to the driver)",
    )
    assert len(caplog.records) == 1 and "host 0 of run run-1" in caplog.records[0].getMessage()
    await host.close()
    await server.forget(run.run_id)


async def test_strangers_in_their_handshake_are_closed_when_the_port_stops_listening(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = a_run()
    server = CoordinatorServer(handshake_timeout=600)  # closed with the port, not at a deadline
    address = await server.open(run, 1, loopback=True)
    with caplog.at_level(logging.WARNING, logger=coordinator_server.__name__):
        reader, writer = await asyncio.open_connection(address.host, address.port)
        local = "{}:{}".format(*writer.get_extra_info("sockname")[:2])
        assert len(await reader.readexactly(GREETING_BYTES)) == GREETING_BYTES
        host = DriverLink(address, run, 0)
        assert await host.connect()  # the run's only host is in: the port closes
        assert server.listening == []
        assert await until_closed(reader) == b""
        writer.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert f"from {local} to this driver's run coordinator" in warnings[0]
    assert "the port stopped listening (no run waits for a worker)" in warnings[0]
    await host.close()
    await server.forget(run.run_id)


# ----- drops ------------------------------------------------------------------------------------


async def test_a_dropped_link_stops_the_host_and_is_reported_to_the_run() -> None:
    run = a_run()
    server = CoordinatorServer()
    address = await server.open(run, 2, loopback=True)
    dropped, leaving = DriverLink(address, run, 0), DriverLink(address, run, 1)
    assert await dropped.connect() and await leaving.connect()

    # The driver's end of host 0's link goes away (say, the network between them).
    server._runs[run.run_id].links[0].transport.abort()
    reason = await asyncio.wait_for(dropped.wait_stop(), WAIT)
    assert reason == "stopped because its connection to the driver dropped"
    assert dropped.lost == "its connection to the driver dropped"
    await dropped.report([Ended("a", "stopped", {})])  # goes nowhere, and does not hang
    await dropped.close()
    # Host 1 goes away without ending its link (its worker died, say).
    assert leaving._frames is not None
    leaving._frames.writer.transport.abort()

    reports = await reports_of(server, run.run_id, 2)
    assert {r.host for r in reports} == {0, 1}
    assert all(isinstance(r, HostLost) for r in reports)
    await leaving.close()
    await server.forget(run.run_id)
