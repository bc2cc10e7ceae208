"""Who may talk on a run's streams: strangers, impostors, floods, oversized and altered frames.

Real loopback TCP (and real TLS with a CA made here); the attackers are plain sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
import pickle
import secrets
import ssl
import struct
import threading
import time
import typing as _t

import pytest

from prefect_plugboard.connector import EndOfStream, Inbox
from prefect_plugboard.exceptions import ChannelError
from prefect_plugboard.process.ray import stream as stream_module
from prefect_plugboard.process.ray.auth import FRAME_HEAD, FrameSealer, StreamSecurity, claim
from prefect_plugboard.process.ray.host import HostSettings
from prefect_plugboard.process.ray.sender import StreamSender
from prefect_plugboard.process.ray.stream import (
    MAX_PENDING_HANDSHAKES,
    StreamAddress,
    StreamReceiver,
)
from prefect_plugboard.process.ray.tls import client_context
from tests.helpers import write_tls_files


RUN = StreamSecurity.for_run("run-1", tls=False, loopback=True)
GREETING_BYTES = 4 + 1 + 1 + 32


class Exploit:
    """A pickle that runs a shell command where it is loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[_t.Any, tuple[str]]:
        return (os.system, (self.command,))


def exploit(marker: Path) -> bytes:
    return pickle.dumps([Exploit(f"touch {marker}")])


class Warnings(list[str]):
    """What a receiver warned about."""

    def __call__(self, text: str) -> None:
        self.append(text)


async def receiver_for(
    senders: int = 1,
    security: StreamSecurity = RUN,
    handshake_timeout: float = 5.0,
    frame_limit: int | None = None,
) -> tuple[Inbox, StreamReceiver, StreamAddress, Warnings]:
    inbox = Inbox(16, senders, "sink.x")
    warnings = Warnings()
    receiver = StreamReceiver(
        {"x": inbox},
        "127.0.0.1",
        security,
        senders=senders,
        name="sink",
        warn=warnings,
        handshake_timeout=handshake_timeout,
        frame_limits={"x": frame_limit} if frame_limit is not None else None,
    )
    return inbox, receiver, await receiver.start(), warnings


def sender_to(
    address: StreamAddress,
    security: StreamSecurity = RUN,
    name: str = "src.x..sink.x",
    max_frame: int = 1 << 20,
    batch_size: int = 8,
) -> StreamSender:
    async def locate() -> StreamAddress:
        return address

    return StreamSender.to(locate, name, "x", batch_size, security, max_frame)


async def deliver(sender: StreamSender, items: list[_t.Any]) -> None:
    await sender.connected()
    for item in items:
        await sender.send(item)
    await sender.close()


async def drain(inbox: Inbox) -> list[_t.Any]:
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(inbox.get(), 10))
        except EndOfStream:
            return received


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Reads until the peer closes; whether it did (within a bound that only avoids a hang)."""
    try:
        while await asyncio.wait_for(reader.read(65536), 10):
            pass
    except ConnectionResetError:
        pass
    return True


async def authenticated(
    address: StreamAddress, security: StreamSecurity, max_frame: int = 1 << 20
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, FrameSealer, bytes]:
    """A raw client through the handshake with `security`; also returns what it was answered."""
    reader, writer = await asyncio.open_connection(address.host, address.port)
    greeting = await reader.readexactly(GREETING_BYTES)
    said, _, sealer = claim(security, greeting, "src.x..sink.x", "x", max_frame)
    writer.write(said)
    answer = await reader.read(32)
    return reader, writer, sealer, answer


# ----- strangers ------------------------------------------------------------------------------


async def test_a_malicious_pickle_sent_as_the_first_frame_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    inbox, receiver, address, warnings = await receiver_for()
    reader, writer = await asyncio.open_connection(address.host, address.port)
    payload = exploit(marker)
    writer.write(struct.pack("!I", len(payload)) + payload)  # the attack, as it was
    assert await closed_by_peer(reader)
    writer.close()

    await deliver(sender_to(address), [1, 2, 3])  # the run goes on unharmed
    assert await drain(inbox) == [1, 2, 3]
    await receiver.close()
    assert not marker.exists()
    assert len(warnings) == 1
    port = writer.get_extra_info("sockname")[1]
    assert f"from 127.0.0.1:{port} to component 'sink'" in warnings[0]
    assert "does not speak" in warnings[0]


async def test_a_stranger_with_a_valid_frame_format_but_a_wrong_secret_injects_nothing(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    inbox, receiver, address, warnings = await receiver_for()
    stranger = StreamSecurity.for_run(RUN.run_id, tls=False, loopback=True)  # knows the run id
    reader, writer, sealer, answer = await authenticated(address, stranger)
    writer.write(sealer.seal(exploit(marker)) + sealer.seal(pickle.dumps([666])))
    assert answer == b""  # no proof: the receiver closed the connection instead
    assert await closed_by_peer(reader)
    writer.close()

    await deliver(sender_to(address), ["a", "b"])
    assert await drain(inbox) == ["a", "b"]  # nothing of the stranger's
    await receiver.close()
    assert not marker.exists()
    assert len(warnings) == 1
    assert "did not prove it holds this run's key" in warnings[0]


async def test_a_sender_of_another_run_is_refused_and_says_so_naming_its_connector() -> None:
    inbox, receiver, address, warnings = await receiver_for()
    other_run = StreamSecurity.for_run("run-2", tls=False, loopback=True)
    sender = sender_to(address, other_run, name="old.y..sink.x")
    await sender.connected()
    with pytest.raises(ChannelError, match=r"connector 'old.y..sink.x'.*does not hold this run"):
        await sender.send(1)
    assert len(inbox) == 0
    assert len(warnings) == 2  # it tried twice; each attempt is one refused connection
    await receiver.close()


async def test_a_sender_sends_nothing_to_a_receiver_that_cannot_prove_itself() -> None:
    received = bytearray()
    connected = asyncio.Event()

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A well-formed greeting and a made-up answer: it holds no secret of the run.
        writer.write(b"PPBS" + bytes([1, 0]) + secrets.token_bytes(32))
        head = await reader.readexactly(4 + 1 + 32 + 2 + 2 + 8)
        names = sum(struct.unpack("!HH", head[37:41]))
        await reader.readexactly(names + 32)
        writer.write(secrets.token_bytes(32))
        connected.set()
        try:
            received.extend(await reader.read())
        except ConnectionResetError:
            pass  # the sender dropped the connection at once
        writer.close()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = sender_to(StreamAddress("127.0.0.1", port), name="src.x..sink.x")
    await sender.connected()
    await connected.wait()
    with pytest.raises(ChannelError, match=r"connector 'src.x..sink.x': the receiver .* did not"):
        await sender.send("secret data")
    with pytest.raises(ChannelError, match="did not prove"):
        await sender.close()
    server.close()
    await server.wait_closed()
    assert bytes(received) == b""  # not one frame


# ----- limits ----------------------------------------------------------------------------------


async def test_a_peer_that_sends_nothing_is_dropped_at_the_handshake_deadline() -> None:
    inbox, receiver, address, warnings = await receiver_for(handshake_timeout=0.2)
    reader, writer = await asyncio.open_connection(address.host, address.port)
    assert len(await reader.readexactly(GREETING_BYTES)) == GREETING_BYTES
    assert await closed_by_peer(reader)  # nothing sent: closed by the receiver
    writer.close()
    assert len(warnings) == 1 and "within 0.2 s" in warnings[0]
    await receiver.close()


async def test_strangers_holding_every_waiting_slot_cannot_keep_a_sender_of_the_run_out() -> None:
    # More silent connections than the port lets wait, each reopened as soon as it is closed:
    # before, they kept every slot taken and a sender of the run gave up after 20 tries.
    inbox, receiver, address, warnings = await receiver_for(handshake_timeout=2.0)
    opened = 0

    async def hold_a_slot() -> None:
        nonlocal opened
        while True:
            reader, writer = await asyncio.open_connection(address.host, address.port)
            opened += 1
            await closed_by_peer(reader)
            writer.close()

    holders = [asyncio.create_task(hold_a_slot()) for _ in range(MAX_PENDING_HANDSHAKES + 8)]
    while opened <= MAX_PENDING_HANDSHAKES + 8:  # the room is full and strangers keep coming
        await asyncio.sleep(0.01)
    await deliver(sender_to(address), [1, 2])
    assert await drain(inbox) == [1, 2]
    for holder in holders:
        holder.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    await receiver.close()
    refused = [w for w in warnings if w.startswith("Refused a connection")]
    assert any("had waited longest" in w for w in refused)
    assert all("closed before anything it sent was decoded" in w for w in refused)


async def test_a_frame_over_the_connectors_limit_fails_the_field_naming_the_connector() -> None:
    inbox, receiver, address, warnings = await receiver_for()
    reader, writer, _, answer = await authenticated(address, RUN, max_frame=1000)
    assert len(answer) == 32
    writer.write(FRAME_HEAD.pack(1001, bytes(16)))  # announces more than the limit
    with pytest.raises(ChannelError, match=r"connector 'src.x..sink.x'.*1,001 bytes.*1,000"):
        await asyncio.wait_for(inbox.get(), 10)
    assert await closed_by_peer(reader)
    port = writer.get_extra_info("sockname")[1]
    writer.close()
    await receiver.close()
    assert len(warnings) == 1
    assert f"from 127.0.0.1:{port} to component 'sink'" in warnings[0]
    assert "a frame of 1,001 bytes is over the limit of 1,000" in warnings[0]


async def test_a_sender_claiming_a_larger_limit_than_the_receivers_cannot_deliver_a_larger_frame(
    tmp_path: Path,
) -> None:
    # The receiver's limit is its own (the connector's max_frame_bytes from the run's wiring),
    # not what a sender states in its claim.
    inbox, receiver, address, warnings = await receiver_for(frame_limit=1000)
    reader, writer, sealer, answer = await authenticated(address, RUN, max_frame=1 << 20)
    writer.write(sealer.seal(pickle.dumps(["y" * 2000])))
    assert answer == b""  # refused at the handshake: not answered
    assert await closed_by_peer(reader)
    port = writer.get_extra_info("sockname")[1]
    writer.close()
    refused = sender_to(address, max_frame=1 << 20)  # the same, through the run's own sender
    await refused.connected()
    with pytest.raises(ChannelError, match="refused its handshake 2 times"):
        await refused.send("y" * 2000)

    await deliver(sender_to(address, max_frame=1000), ["small"])  # within the limit: in
    assert await drain(inbox) == ["small"]
    await receiver.close()
    assert len(warnings) == 3
    assert f"from 127.0.0.1:{port} to component 'sink'" in warnings[0]
    assert all(
        "claims frames of up to 1,048,576 bytes into 'x', over this receiver's limit of 1,000"
        in warning
        for warning in warnings
    )


async def test_a_message_over_max_frame_fails_the_sender_naming_the_connector() -> None:
    inbox, receiver, address, _ = await receiver_for()
    sender = sender_to(address, max_frame=1000, batch_size=1)
    await sender.connected()
    with pytest.raises(ChannelError, match=r"connector 'src.x..sink.x'.*over .*max_frame_bytes"):
        await sender.send("x" * 2000)
    sender.abort()
    await receiver.close()


async def test_a_batch_over_max_frame_is_split_and_arrives_whole() -> None:
    inbox, receiver, address, _ = await receiver_for()
    items = [f"{i:04d}" * 100 for i in range(64)]  # ~25 KB as one batch
    sender = sender_to(address, max_frame=2000, batch_size=64)
    received = asyncio.ensure_future(drain(inbox))
    await deliver(sender, items)
    assert await received == items
    await receiver.close()


# ----- frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["altered", "replayed", "reordered", "unsealed"])
async def test_a_frame_tampered_with_on_the_way_is_refused_before_it_is_unpickled(
    tamper: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    inbox, receiver, address, warnings = await receiver_for()
    reader, writer, sealer, _ = await authenticated(address, RUN)
    first = sealer.seal(pickle.dumps([1]))
    second = sealer.seal(exploit(marker))
    forged = {
        "altered": first[:-1] + bytes([first[-1] ^ 1]),  # one bit flipped
        "replayed": first + first,
        "reordered": second,
        "unsealed": FRAME_HEAD.pack(len(exploit(marker)), bytes(16)) + exploit(marker),
    }[tamper]
    writer.write(forged)
    received = []
    with pytest.raises(ChannelError, match="integrity check"):
        while True:
            received.append(await asyncio.wait_for(inbox.get(), 10))
    assert received == ([1] if tamper == "replayed" else [])
    assert not marker.exists()
    assert any("integrity check" in w for w in warnings)
    writer.close()
    await receiver.close()


# ----- the deadline and a busy loop ------------------------------------------------------------


async def test_a_handshake_that_arrived_while_the_receivers_loop_was_blocked_is_not_timed_out() -> (
    None
):
    """A component that holds its thread past the deadline does not lose its senders."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    inbox = Inbox(16, 1, "sink.x")
    warnings = Warnings()

    async def start() -> tuple[StreamReceiver, StreamAddress]:
        receiver = StreamReceiver(
            {"x": inbox}, "127.0.0.1", RUN, senders=1, warn=warnings, handshake_timeout=0.2
        )
        return receiver, await receiver.start()

    receiver, address = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        reader, writer = await asyncio.open_connection(address.host, address.port)
        greeting = await reader.readexactly(GREETING_BYTES)
        blocked = threading.Event()

        def block() -> None:  # like a component's blocking call, past the deadline
            blocked.set()
            time.sleep(1.0)

        loop.call_soon_threadsafe(block)
        await asyncio.to_thread(blocked.wait, 10)
        said, answer, _ = claim(RUN, greeting, "src.x..sink.x", "x", 1 << 20)
        writer.write(said)
        assert await asyncio.wait_for(reader.readexactly(32), 10) == answer
        assert warnings == []
        writer.close()
    finally:
        asyncio.run_coroutine_threadsafe(receiver.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ----- listening --------------------------------------------------------------------------------


async def test_the_receiver_stops_listening_once_every_connector_is_in() -> None:
    inbox, receiver, address, _ = await receiver_for(senders=2)
    first = sender_to(address)
    await first.connected()
    with_one = receiver.listening
    second = sender_to(address, name="other.x..sink.x")
    await second.connected()
    assert (with_one, receiver.listening) == (True, False)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(address.host, address.port)
    received = asyncio.ensure_future(drain(inbox))
    await asyncio.gather(deliver(first, [1]), deliver(second, [2]))
    assert sorted(await received) == [1, 2]
    await receiver.close()


async def test_strangers_in_their_handshake_are_closed_when_the_receiver_stops_listening() -> None:
    # A deadline far away: the stranger is closed because the port closes, not at its deadline.
    inbox, receiver, address, warnings = await receiver_for(handshake_timeout=600)
    reader, writer = await asyncio.open_connection(address.host, address.port)
    assert len(await reader.readexactly(GREETING_BYTES)) == GREETING_BYTES  # it is waiting
    port = writer.get_extra_info("sockname")[1]
    await deliver(sender_to(address), [1])  # the only connector is in: the port closes
    assert not receiver.listening
    assert await closed_by_peer(reader)  # before the receiver itself closes
    writer.close()
    assert await drain(inbox) == [1]
    assert len(warnings) == 1
    assert f"from 127.0.0.1:{port} to component 'sink'" in warnings[0]
    assert "the port stopped listening (every connector into it is connected)" in warnings[0]
    await receiver.close()


# ----- TLS --------------------------------------------------------------------------------------


@pytest.fixture
def ray_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Ray's TLS variables, pointing at a CA and a certificate made for this test."""
    files = write_tls_files(tmp_path / "tls")
    for name, value in files.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAY_USE_TLS", "1")
    return files


TLS_RUN = StreamSecurity.for_run("run-tls", tls=True, loopback=True)


async def test_streams_use_tls_with_rays_certificates(
    ray_tls: dict[str, str], tmp_path: Path
) -> None:
    inbox, receiver, address, warnings = await receiver_for(security=TLS_RUN)
    sender = sender_to(address, TLS_RUN)
    received = asyncio.ensure_future(drain(inbox))
    await deliver(sender, list(range(100)))
    assert await received == list(range(100))
    assert warnings == []
    await receiver.close()


async def test_over_tls_a_peer_without_the_clusters_certificate_is_refused(
    ray_tls: dict[str, str], tmp_path: Path
) -> None:
    inbox, receiver, address, warnings = await receiver_for(security=TLS_RUN, senders=3)
    # A plain-text claim where TLS must follow.
    reader, writer = await asyncio.open_connection(address.host, address.port)
    greeting = await reader.readexactly(GREETING_BYTES)
    assert greeting[5] & 1  # "TLS follows"
    writer.write(claim(TLS_RUN, greeting, "src.x..sink.x", "x", 1 << 20)[0])
    assert await closed_by_peer(reader)
    # TLS with a certificate of another CA.
    other = write_tls_files(tmp_path / "other", name="other")
    stranger = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    stranger.check_hostname = False
    stranger.verify_mode = ssl.CERT_NONE
    stranger.load_cert_chain(other["RAY_TLS_SERVER_CERT"], other["RAY_TLS_SERVER_KEY"])
    reader, writer = await asyncio.open_connection(address.host, address.port)
    await reader.readexactly(GREETING_BYTES)
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await writer.start_tls(stranger)
        await reader.readexactly(1)
    # TLS with the cluster's certificate, but not the run's secret.
    reader, writer = await asyncio.open_connection(address.host, address.port)
    greeting = await reader.readexactly(GREETING_BYTES)
    await writer.start_tls(client_context())
    wrong = StreamSecurity.for_run(TLS_RUN.run_id, tls=True, loopback=True)
    writer.write(claim(wrong, greeting, "src.x..sink.x", "x", 1 << 20)[0])
    assert await closed_by_peer(reader)
    await receiver.close()
    assert len(warnings) == 3
    assert "TLS handshake failed" in warnings[0] and "TLS handshake failed" in warnings[1]
    assert "did not prove it holds this run's key" in warnings[2]
    assert len(inbox) == 0


async def test_a_worker_without_rays_tls_files_says_which_variables_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAY_USE_TLS", "1")
    monkeypatch.delenv("RAY_TLS_SERVER_KEY", raising=False)
    monkeypatch.setenv("RAY_TLS_SERVER_CERT", "/nowhere/cert.pem")
    monkeypatch.setenv("RAY_TLS_CA_CERT", "/nowhere/ca.pem")
    with pytest.raises(ChannelError, match="RAY_TLS_SERVER_KEY is not set on this worker"):
        StreamReceiver({}, "127.0.0.1", TLS_RUN, senders=1)


# ----- the secret -------------------------------------------------------------------------------


def test_the_secret_is_fresh_per_run_and_never_in_a_repr() -> None:
    first = StreamSecurity.for_run("a", tls=False, loopback=False)
    second = StreamSecurity.for_run("a", tls=False, loopback=False)
    assert first.secret != second.secret and len(first.secret) == 32
    settings = HostSettings("a", 0, first, logging.INFO)
    for text in (repr(first), repr(settings), str(settings)):
        assert repr(first.secret) not in text and first.secret.hex() not in text
        assert "secret" not in text


def test_the_module_logger_is_the_default_for_warnings(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        inbox = Inbox(4, 1, "sink.x")
        receiver = StreamReceiver({"x": inbox}, "127.0.0.1", RUN, senders=1, name="sink")
        address = await receiver.start()
        reader, writer = await asyncio.open_connection(address.host, address.port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n" + bytes(64))
        await closed_by_peer(reader)
        writer.close()
        await receiver.close()

    with caplog.at_level(logging.WARNING, logger=stream_module.__name__):
        asyncio.run(scenario())
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "Refused a connection from 127.0.0.1:" in caplog.records[0].getMessage()
