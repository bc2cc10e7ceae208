"""A worker's link to its driver: one authenticated connection per host, both ways.

Every host (the Ray task running some components of a run) opens one TCP connection to the
run coordinator of the driver that started it (`coordinator_server`), proves it belongs to the
run (`auth`, `LINK_PROTOCOL`: the run and the host's number in the claim, the run's secret in
the proof, inside TLS when Ray uses TLS) and then exchanges messages:

- host to driver: `("register", {component: StreamAddress})` once its receivers listen, and
  `("report", [Report, ...])` for its log lines, progress and endings, in order;
- driver to host: a dict of what changed in the run's room since the last one, among
  `addresses` (new ones), `steps` (how many steps by hand were asked for), `go` (the run's
  settings, once it starts) and `stop` (the reason, and whether it was asked for).

The host keeps a mirror of its run's room (`coordinator.Room`) and waits on it, so its code
reads as if it called the room itself. Each message is pickled and sent in sealed frames of at
most `LINK_FRAME_BYTES` (`FRAME_HEAD`, then a byte saying whether more of the message
follows, then its piece); nothing is unpickled before every frame of it passed its tag check,
and a frame over the limit, or a message whose pieces add up to more than
`LINK_MESSAGE_BYTES`, ends the link (the pieces read so far are dropped). An empty frame ends
the link cleanly: the host sends one once all its reports are out and waits for the driver's
before it closes, so the driver has read everything a host said before that host's task
ends. A link that drops without it is lost: the host stops its components, and the driver
counts the host gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import pickle
import ssl
import typing as _t

from prefect_plugboard.process.ray.auth import (
    FRAME_HEAD,
    LINK_PROTOCOL,
    Impostor,
    Session,
    StreamSecurity,
    Unanswered,
    present,
)
from prefect_plugboard.process.ray.coordinator import Room
from prefect_plugboard.process.ray.gate import retry_pause as _retry_pause
from prefect_plugboard.process.ray.stream import StreamAddress, disable_nagle
from prefect_plugboard.process.ray.tls import client_context


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.reports import Report


__all__ = [
    "LINK_FRAME_BYTES",
    "LINK_MESSAGE_BYTES",
    "DriverLink",
    "LinkBroken",
    "LinkRefused",
    "MessageFrames",
]

LINK_FRAME_BYTES = 1 << 20
"""Most bytes in one frame of a link; a larger message travels in several."""
LINK_MESSAGE_BYTES = 256 << 20
"""Most bytes in one message of a link (pickled; 256 MiB): a batch of a worker's reports, with
the final state of its components. A larger one ends the link: its worker's components end
`Crashed`, rather than the driver holding whatever a peer keeps sending."""
END_TIMEOUT = 10.0
"""Seconds a host waits for the driver to acknowledge the end of its link."""
_CONNECT_ATTEMPTS = 20
"""Handshakes a host tries (with a growing pause, ~16 s in all) before it gives up."""
_MORE, _LAST = b"\x01", b"\x00"


class LinkBroken(Exception):  # a verdict on the connection, not a failure of ours
    """A link's frame was altered, injected, over the limit or undecodable: it cannot go on."""


class LinkRefused(Exception):  # a verdict on the connection, not a failure of ours
    """The driver did not let the host in: it does not hold the run (any more)."""


def _dumps(message: _t.Any) -> bytes:
    return _t.cast(bytes, _cloudpickle().dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


@functools.cache
def _cloudpickle() -> _t.Any:
    from ray import cloudpickle

    return cloudpickle


class MessageFrames:
    """Whole messages over an authenticated connection, in sealed frames (both ends use it).

    Args:
        reader: The connection.
        writer: The connection.
        session: The keys of the handshake.
        frame_limit: Most bytes in one frame's payload, in either direction.
        message_limit: Most bytes in one message this end receives (its pieces together).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: Session,
        frame_limit: int = LINK_FRAME_BYTES,
        message_limit: int = LINK_MESSAGE_BYTES,
    ) -> None:
        self._reader = reader
        self.writer = writer
        self._session = session
        self._limit = frame_limit
        self._message_limit = message_limit

    def write(self, message: _t.Any) -> None:
        """Queues `message` (pickled, in as many frames as it takes) on the connection."""
        payload = _dumps(message)
        piece = self._limit - 1
        sealer = self._session.outbound
        frames = []
        for start in range(0, max(len(payload), 1), piece):
            flag = _MORE if start + piece < len(payload) else _LAST
            frames.append(sealer.seal(flag + payload[start : start + piece]))
        self.writer.write(b"".join(frames))

    async def send(self, message: _t.Any) -> None:
        """Sends `message`, waiting while the peer is behind."""
        self.write(message)
        await self.writer.drain()

    def write_end(self) -> None:
        """Queues the end of the link."""
        self.writer.write(self._session.outbound.seal(b""))

    async def receive(self) -> tuple[bool, _t.Any]:
        """The next message: `(True, message)`, or `(False, None)` at the end of the link.

        Raises:
            LinkBroken: A frame was over the limit, failed its tag check, the message grew
                over `message_limit`, or it could not be unpickled.
            asyncio.IncompleteReadError: The connection dropped.
        """
        pieces: list[bytes] = []
        received = 0
        checker = self._session.inbound
        while True:
            length, tag = FRAME_HEAD.unpack(await self._reader.readexactly(FRAME_HEAD.size))
            if length > self._limit:
                msg = f"a frame of {length:,} bytes is over the limit of {self._limit:,}"
                raise LinkBroken(msg)
            received += max(length - 1, 0)  # a piece is the payload after its flag byte
            if received > self._message_limit:
                msg = (
                    f"a message grew over the limit of {self._message_limit:,} bytes (its "
                    "components' final field values and exports, or a burst of reports, are "
                    "too large to send to the driver)"
                )
                raise LinkBroken(msg)
            payload = await self._reader.readexactly(length) if length else b""
            if not checker.check(tag, payload):
                msg = "a frame failed its integrity check (altered or injected on the way)"
                raise LinkBroken(msg)
            if not payload:
                if pieces:
                    msg = "the link ended in the middle of a message"
                    raise LinkBroken(msg)
                return False, None
            pieces.append(payload[1:])
            if payload[:1] == _LAST:
                break
        try:
            return True, pickle.loads(b"".join(pieces))  # noqa: S301 - sealed by a proven peer
        except Exception as exc:  # any decoding failure ends the link
            msg = f"a message could not be unpickled ({type(exc).__name__}: {exc})"
            raise LinkBroken(msg) from exc


class DriverLink:
    """A host's end of its link: what it tells the driver, and the mirror of its run's room.

    Args:
        address: Where the driver's run coordinator listens.
        security: The run's secret and TLS setting.
        host: The host's number in the run.
    """

    def __init__(self, address: StreamAddress, security: StreamSecurity, host: int) -> None:
        self.address = address
        self._security = security
        self._host = host
        self.room = Room()
        self.lost: str | None = None
        self._frames: MessageFrames | None = None
        self._reading: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()

    async def connect(self) -> bool:
        """Connects and proves it belongs to the run.

        Returns:
            `False` if the driver does not hold the run any more (it has ended): the room
            is then stopped.

        Raises:
            ConnectionError: The driver cannot be reached, or it did not prove itself.
        """
        tls = client_context() if self._security.tls else None
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                session = await self._handshake(tls)
            except LinkRefused:
                self._lose("the driver does not hold this run any more")
                return False
            if session is not None:
                reader, writer, proven = session
                self._frames = MessageFrames(reader, writer, proven)
                self._reading = asyncio.ensure_future(self._read())
                return True
            await asyncio.sleep(_retry_pause(attempt))
        msg = (
            f"the driver's run coordinator at {self.address} closed the handshake "
            f"{_CONNECT_ATTEMPTS} times; is something flooding its port?"
        )
        raise ConnectionError(msg)

    async def _handshake(
        self, tls: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Session] | None:
        address = self.address
        try:
            reader, writer = await asyncio.open_connection(address.host, address.port)
        except OSError as exc:
            msg = f"could not reach the driver's run coordinator at {address} ({exc})"
            raise ConnectionError(msg) from exc
        disable_nagle(writer)
        try:
            session = await present(
                reader,
                writer,
                self._security,
                tls,
                self._security.run_id,
                str(self._host),
                LINK_FRAME_BYTES,
                protocol=LINK_PROTOCOL,
            )
        except Unanswered:
            writer.transport.abort()
            raise LinkRefused from None
        except (asyncio.IncompleteReadError, OSError):
            writer.transport.abort()
            return None  # turned away before its greeting (too many waiting): try again
        except Impostor as exc:
            writer.transport.abort()
            msg = (
                f"the driver's run coordinator at {address} did not prove it belongs to this "
                f"run ({exc}); nothing was sent to it"
            )
            raise ConnectionError(msg) from None
        except BaseException:
            writer.transport.abort()
            raise
        return reader, writer, session

    async def _read(self) -> None:
        """Applies the driver's messages to the room until the link ends or drops."""
        frames = _t.cast(MessageFrames, self._frames)
        room = self.room
        try:
            while True:
                more, message = await frames.receive()
                if not more:
                    self._ended.set()
                    return
                if "addresses" in message:
                    room.addresses.update(message["addresses"])
                room.steps = max(room.steps, message.get("steps", 0))
                if "go" in message:
                    room.started = message["go"]
                if "stop" in message:
                    room.stop(*message["stop"])
                room.touch()
        except LinkBroken as exc:
            self._lose(f"its link to the driver broke: {exc}")
        except (asyncio.IncompleteReadError, OSError):
            self._lose("its connection to the driver dropped")
        finally:
            if self.lost is not None and self._frames is not None:
                self._frames.writer.transport.abort()

    def _lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
        self.room.stop(f"stopped because {reason}")
        self._ended.set()

    async def addresses(self, names: list[str]) -> dict[str, StreamAddress] | None:
        """Waits until every component in `names` has registered; `None` if the run stops first."""
        return await self.room.wait_for_addresses(names)

    async def next_command(self, steps_taken: int) -> tuple[str, _t.Any] | None:
        """What this host does next (see `coordinator.Room.next_command`)."""
        return await self.room.next_command(steps_taken)

    async def wait_stop(self) -> str:
        """Returns the stop reason once the run is told to stop (or the link is lost)."""
        return await self.room.wait_stop()

    async def register(self, addresses: dict[str, StreamAddress]) -> None:
        """Tells the driver where this host's components receive."""
        await self._send(("register", addresses))

    async def report(self, reports: list[Report]) -> None:
        """Hands reports to the driver, in order; dropped once the link is lost."""
        await self._send(("report", reports))

    async def _send(self, message: tuple[str, _t.Any]) -> None:
        frames = self._frames
        if frames is None or self.lost is not None:
            return
        try:
            await frames.send(message)
        except (ConnectionError, RuntimeError):  # the transport closed under us
            self._lose("its connection to the driver dropped")

    async def close(self) -> None:
        """Ends the link once everything is sent: the driver then has every report."""
        frames = self._frames
        if frames is None:
            return
        if self.lost is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                frames.write_end()
                await frames.writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), END_TIMEOUT)
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        frames.writer.close()
        with contextlib.suppress(Exception):
            await frames.writer.wait_closed()
