"""Direct streams between processes: the transport of `RayConnector`.

Every component that has inputs listens on one TCP port, on its node's own address (loopback
when the whole run is on one node), until every connector into it has connected. Each
connector opens one connection, proves it belongs to the run (`auth`: a handshake over the
run's secret, inside TLS when Ray uses TLS) and sends frames, each a pickled batch of
messages. TCP keeps each connector's messages in order, and its flow control is the
back-pressure: the receiver only reads while the field's inbox has room, and a sender whose
socket buffer passes a limit waits until it drains.

Batches form by themselves. A message is appended to the connector's outbox and a flush is
scheduled for when the component next yields to the event loop, so a lone message leaves at
once while a busy component sends many per frame (up to `batch_size`, and never over the
connector's `max_frame_bytes`: a larger batch is split).

Frames (after the handshake): a 4-byte big-endian length, a 16-byte tag, then the payload;
a frame of length zero ends the stream. Nothing is unpickled before its tag is checked.

Limits against whoever reaches a port: a connection must complete its handshake within
`HANDSHAKE_TIMEOUT`; at most `MAX_PENDING_HANDSHAKES` connections wait for theirs at once
(more are closed at once, and a refused sender of the run tries again); the handshake reads a
bounded number of bytes; a frame over the connector's `max_frame_bytes` closes the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass
import functools
import logging
import pickle
import socket
import ssl
import typing as _t

from prefect_plugboard.connector.channel import Inbox
from prefect_plugboard.connector.ray_connector import DEFAULT_MAX_FRAME_BYTES
from prefect_plugboard.exceptions import ChannelClosedError, ChannelError
from prefect_plugboard.process.ray.auth import (
    FRAME_HEAD,
    Claim,
    FrameChecker,
    FrameSealer,
    Impostor,
    Refused,
    StreamSecurity,
    Unanswered,
    admit,
    present,
)
from prefect_plugboard.process.ray.tls import client_context, server_context


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "HIGH_WATER",
    "MAX_PENDING_HANDSHAKES",
    "StreamAddress",
    "StreamReceiver",
    "StreamSender",
]

_logger = logging.getLogger(__name__)
HIGH_WATER = 1 << 20
"""Bytes waiting in a sender's socket buffer beyond which it waits for the receiver."""
HANDSHAKE_TIMEOUT = 5.0
"""Seconds a new connection has to prove it belongs to the run before it is closed."""
MAX_PENDING_HANDSHAKES = 64
"""Connections a receiver lets wait for their handshake at once; more are closed at once."""
_LOGGED_REFUSALS = 20
"""Refused connections a receiver logs one by one; later ones are counted."""
_CONNECT_ATTEMPTS = 20
"""Handshakes a sender tries (with a growing pause, ~16 s in all) before it gives up."""
_UNANSWERED_CLAIMS = 2
"""Claims left unanswered after which a sender concludes the receiver refuses its key."""

_Warn = Callable[[str], None]


@dataclass(frozen=True)
class StreamAddress:
    """Where a component's receiver listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _dumps(batch: list[_t.Any]) -> bytes:
    # cloudpickle (Ray's copy) so that values of classes defined in a script (`__main__`) or
    # a user module registered "by value" can be rebuilt on the other side.
    return _t.cast(bytes, _cloudpickle().dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))


@functools.cache
def _cloudpickle() -> _t.Any:
    from ray import cloudpickle

    return cloudpickle


class StreamReceiver:
    """Accepts the connections into one component and feeds its inboxes.

    Args:
        inboxes: The inbox of each input field.
        host: The address to listen on: the node's own address, or loopback (never every
            interface).
        security: The run's secret and TLS setting.
        senders: How many connections the run makes into this component; once that many
            have proven themselves, it stops listening.
        name: The component, for messages.
        warn: Where a warning about a refused connection goes (the component's log).
        handshake_timeout: Seconds a connection has to complete its handshake.
    """

    def __init__(
        self,
        inboxes: dict[str, Inbox],
        host: str,
        security: StreamSecurity,
        *,
        senders: int,
        name: str = "",
        warn: _Warn | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._inboxes = inboxes
        self._host = host
        self._security = security
        self._tls = server_context() if security.tls else None
        self._senders = senders
        self._name = name
        self._warn = warn if warn is not None else _logger.warning
        self._handshake_timeout = handshake_timeout
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._pending = 0
        self._admitted = 0
        self._refused = 0

    async def start(self) -> StreamAddress:
        """Starts listening on a free port; returns the address peers connect to."""
        self._server = await asyncio.start_server(self._handle, self._host, 0)
        port = self._server.sockets[0].getsockname()[1]
        if self._senders <= 0:
            self._server.close()
        return StreamAddress(self._host, port)

    @property
    def listening(self) -> bool:
        """Whether it still accepts connections (not once every sender has connected)."""
        return self._server is not None and self._server.is_serving()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if self._pending >= MAX_PENDING_HANDSHAKES:
            writer.transport.abort()
            self._refuse(
                peer, f"{MAX_PENDING_HANDSHAKES} other connections were waiting for a handshake"
            )
            return
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        _disable_nagle(writer)
        try:
            admitted = await self._admit(reader, writer, peer)
            if admitted is None:
                return
            claim, checker = admitted
            inbox = self._inboxes.get(claim.field)
            if inbox is None:
                _logger.error(
                    "connector %s names unknown input %r; closing it", claim.connector, claim.field
                )
                return
            self._admitted += 1
            if self._admitted >= self._senders and self._server is not None:
                self._server.close()  # every connector is in: nobody else needs this port
            await self._receive(reader, inbox, claim, checker, peer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # The sender went away without ending its stream (it failed or was stopped: the
            # run is stopping), or this receiver is closing. Either way nothing more will be
            # read; ending quietly also spares asyncio's stream callback a cancelled task.
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def _admit(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> tuple[Claim, FrameChecker] | None:
        """The handshake, within its deadline; `None` (and a warning) if the peer failed it."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        state = {"done": False, "expired": False}

        def expire() -> None:
            if not state["done"] and task is not None:
                state["expired"] = True
                task.cancel()

        # The deadline acts one turn of the loop late, so that when the component's thread
        # has held the loop past it, the bytes that arrived meanwhile are read first.
        timer = loop.call_later(self._handshake_timeout, loop.call_soon, expire)
        self._pending += 1
        try:
            return await admit(reader, writer, self._security, self._tls)
        except Refused as exc:
            self._refuse(peer, str(exc))
        except asyncio.IncompleteReadError:
            self._refuse(peer, "it closed the connection before completing the handshake")
        except OSError as exc:
            self._refuse(peer, f"the connection failed during the handshake ({exc})")
        except asyncio.CancelledError:
            if not state["expired"]:
                raise
            self._refuse(
                peer, f"it did not complete the handshake within {self._handshake_timeout:g} s"
            )
        finally:
            state["done"] = True
            timer.cancel()
            self._pending -= 1
        return None

    def _refuse(self, peer: str, reason: str) -> None:
        self._refused += 1
        if self._refused > _LOGGED_REFUSALS:
            return
        more = " Further refused connections are only counted." * (
            self._refused == _LOGGED_REFUSALS
        )
        self._warn(
            f"Refused a connection from {peer} to component {self._name!r}: {reason}. It was "
            f"closed before anything it sent was decoded.{more}"
        )

    async def _receive(
        self,
        reader: asyncio.StreamReader,
        inbox: Inbox,
        claim: Claim,
        checker: FrameChecker,
        peer: str,
    ) -> None:
        connector, field = claim.connector, claim.field
        while True:
            length, tag = FRAME_HEAD.unpack(await reader.readexactly(FRAME_HEAD.size))
            if length > claim.max_frame:
                inbox.fail(_too_large(connector, field, length, claim.max_frame))
                return
            payload = await reader.readexactly(length) if length else b""
            if not checker.check(tag, payload):
                self._warn(
                    f"Connection from {peer} to component {self._name!r} (connector "
                    f"{connector!r}): a frame failed its integrity check, so it was altered or "
                    "injected on the way; the stream was closed."
                )
                inbox.fail(_tampered(connector, field))
                return
            if not length:
                inbox.sender_closed()
                return
            try:
                batch = pickle.loads(payload)  # noqa: S301 - sealed by a proven peer of this run
            except Exception as exc:  # noqa: BLE001 - any decoding failure ends the stream
                inbox.fail(_undecodable(connector, field, exc))
                return
            for item in batch:
                if not inbox.put_nowait(item):
                    await inbox.put(item)

    async def close(self) -> None:
        """Stops listening and drops every connection (senders then drop their messages)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._refused > _LOGGED_REFUSALS:
            self._warn(
                f"Component {self._name!r} refused {self._refused} connections in all that did "
                "not prove they belong to this run."
            )
            self._refused = 0


def _undecodable(connector: str, field: str, cause: Exception) -> ChannelError:
    error = ChannelError(
        f"connector {connector!r} into input {field!r}: a message could not be unpickled here "
        f"({type(cause).__name__}: {cause}); the class of what it carries must be importable "
        "on every Ray worker (ship its module in the runtime_env, or pickle it by value)"
    )
    error.__cause__ = cause
    return error


def _too_large(connector: str, field: str, length: int, limit: int) -> ChannelError:
    return ChannelError(
        f"connector {connector!r} into input {field!r}: a frame of {length:,} bytes is over the "
        f"connector's max_frame_bytes ({limit:,}); the stream was closed"
    )


def _tampered(connector: str, field: str) -> ChannelError:
    return ChannelError(
        f"connector {connector!r} into input {field!r}: a frame failed its integrity check (it "
        "was altered or injected between the workers); the stream was closed. Use TLS "
        "(RAY_USE_TLS) on networks you do not trust."
    )


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return "an unknown peer"


def _disable_nagle(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_Link = tuple[asyncio.StreamWriter, FrameSealer]


class StreamSender:
    """Sends one connector's messages over a stream, batching them as described above.

    It accepts messages while its connection is still being made (up to `batch_size` wait
    in the outbox, after that the sender waits), but a component should await `connected()`
    before its first step: a component whose steps block its event loop would otherwise
    make progress on the connection only between steps. A connection that cannot be made
    safely (the receiver did not prove itself) makes the next `send` or the `close` raise.

    Args:
        name: The connector id, for messages.
        batch_size: Most messages per frame.
        connect: Opens the connection and completes the handshake; returns `None` if the
            receiver is gone already.
        max_frame: Most bytes in one frame's payload.
    """

    def __init__(
        self,
        name: str,
        batch_size: int,
        connect: Callable[[], Awaitable[_Link | None]],
        max_frame: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.name = name
        self._batch_size = batch_size
        self._max_frame = max_frame
        self._writer: asyncio.StreamWriter | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._sealer: FrameSealer | None = None
        self._outbox: list[_t.Any] = []
        self._held = False
        self._flush_scheduled = False
        self._closed = False
        self._receiver_gone = False
        self._error: ChannelError | None = None
        self._loop = asyncio.get_running_loop()
        self._connecting = asyncio.ensure_future(self._connect(connect))

    @classmethod
    def to(
        cls,
        locate: Callable[[], Awaitable[StreamAddress | None]],
        connector: str,
        field: str,
        batch_size: int,
        security: StreamSecurity,
        max_frame: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> StreamSender:
        """Returns a sender that finds its receiver with `locate()` and connects to it."""

        async def connect() -> _Link | None:
            tls = client_context() if security.tls else None
            unanswered = 0
            for attempt in range(_CONNECT_ATTEMPTS):
                address = await locate()
                if address is None:
                    return None
                try:
                    return await _handshake(address, security, tls, connector, field, max_frame)
                except _TryAgain as again:
                    unanswered += again.claim_refused
                    if unanswered == _UNANSWERED_CLAIMS:
                        msg = (
                            f"connector {connector!r}: the receiver at {address} refused its "
                            f"handshake {unanswered} times: it does not hold this run's key "
                            "(an address from another run?)"
                        )
                        raise ChannelError(msg) from None
                    await asyncio.sleep(_retry_pause(attempt))
            msg = (
                f"connector {connector!r}: its receiver closed the handshake {_CONNECT_ATTEMPTS} "
                "times; is something flooding its port?"
            )
            raise ChannelError(msg)

        return cls(connector, batch_size, connect, max_frame)

    async def _connect(self, connect: Callable[[], Awaitable[_Link | None]]) -> None:
        try:
            link = await connect()
        except ChannelError as exc:
            # Held from now on: the next send or the close raises it in the component.
            self._error = exc
            self._held = True
            self._outbox.clear()
            return
        if link is None:
            self._receiver_gone = True
            self._held = False
            self._outbox.clear()
            return
        self._writer, self._sealer = link
        self._transport = self._writer.transport
        self._flush()

    async def connected(self) -> None:
        """Waits until the connection is made (or the receiver is known to be gone)."""
        await self._connecting

    def send_nowait(self, item: _t.Any, /) -> bool:
        """Queues a message for the next frame; `False` if the sender must wait first.

        The sender is held back while its socket buffer holds more than `HIGH_WATER` bytes
        (the receiver is behind) or, before the connection is made, while its outbox is full.

        Raises:
            ChannelError: An earlier batch could not be sent (it could not be pickled, or a
                message is over `max_frame`), or the receiver did not prove itself.
        """
        if self._held:
            if self._error is not None:
                raise self._error
            return False
        outbox = self._outbox
        outbox.append(item)
        if len(outbox) >= self._batch_size:
            self._flush()
            if self._error is not None:
                raise self._error
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    async def send(self, item: _t.Any) -> None:
        """Sends a message, waiting while the receiver is behind."""
        if self._closed:
            msg = f"cannot send on connector {self.name!r}: it is closed"
            raise ChannelClosedError(msg)
        while not self.send_nowait(item):
            await self._drain()

    async def close(self) -> None:
        """Sends what is queued and ends the stream; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        await self._connecting
        writer = self._writer
        if writer is not None:
            self._flush()
        if self._error is not None:
            if writer is not None:
                writer.transport.abort()  # the receiver must not take a partial stream as whole
            raise self._error
        if writer is None or self._sealer is None:
            return
        if not self._receiver_gone:
            with contextlib.suppress(ConnectionError):
                writer.write(self._sealer.seal(b""))
                await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    def abort(self) -> None:
        """Drops the connection without ending the stream (the run is stopping)."""
        self._closed = True
        self._outbox.clear()
        self._connecting.cancel()
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        self._flush_scheduled = False
        outbox = self._outbox
        if not outbox:
            return
        if self._writer is None or self._sealer is None:  # still connecting: the outbox waits
            self._held = not self._receiver_gone and len(outbox) >= self._batch_size
            return
        transport = self._writer.transport
        if self._receiver_gone or transport.is_closing():
            self._outbox = []
            self._receiver_gone = True  # the receiver finished and closed the connection
            self._held = False
            return
        if self._error is not None:
            return
        try:
            frames = self._frames(outbox, self._sealer)
        except ChannelError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - any value may fail to pickle
            self._error = ChannelError(
                f"connector {self.name!r}: a message could not be pickled to cross to another "
                f"worker ({type(exc).__name__}: {exc}); send picklable values"
            )
            self._error.__cause__ = exc
        if self._error is not None:
            self._held = True  # the next send or the close raises it in the component
            return
        self._outbox = []
        self._writer.write(frames)
        self._held = transport.get_write_buffer_size() > HIGH_WATER

    def _frames(self, batch: list[_t.Any], sealer: FrameSealer) -> bytes:
        """`batch` as sealed frames: one, unless it pickles to more than `max_frame` bytes."""
        payload = _dumps(batch)
        if len(payload) <= self._max_frame:
            return sealer.seal(payload)
        if len(batch) == 1:
            msg = (
                f"connector {self.name!r}: a message pickles to {len(payload):,} bytes, over the "
                f"connector's max_frame_bytes ({self._max_frame:,}); raise max_frame_bytes on "
                "the connector (or its channel block), or send smaller messages"
            )
            raise ChannelError(msg)
        half = len(batch) // 2
        return self._frames(batch[:half], sealer) + self._frames(batch[half:], sealer)

    async def _drain(self) -> None:
        await self._connecting
        self._flush()
        writer = self._writer
        if writer is None:
            return
        try:
            await writer.drain()
        except ConnectionError:
            self._receiver_gone = True
        self._held = (
            not self._receiver_gone and writer.transport.get_write_buffer_size() > HIGH_WATER
        )


def _retry_pause(attempt: int) -> float:
    """Seconds before a refused handshake is tried again: 0.05, 0.1, 0.2, ... up to 1."""
    return min(1.0, 0.05 * 2.0**attempt)


class _TryAgain(Exception):  # noqa: N818 - a signal, not an error
    """The receiver closed the connection during the handshake: refused for now, or closing.

    Attributes:
        claim_refused: It closed it after the claim (not before its greeting).
    """

    def __init__(self, *, claim_refused: bool) -> None:
        super().__init__()
        self.claim_refused = claim_refused


async def _handshake(
    address: StreamAddress,
    security: StreamSecurity,
    tls: ssl.SSLContext | None,
    connector: str,
    field: str,
    max_frame: int,
) -> _Link | None:
    """One attempt: the proven link, or `None` if nothing listens there any more.

    Raises:
        _TryAgain: The receiver closed the connection before proving itself.
        ChannelError: The peer is not this run's receiver, or it cannot be reached.
    """
    try:
        reader, writer = await asyncio.open_connection(address.host, address.port)
    except ConnectionError:
        return None  # the receiver finished and stopped listening
    except OSError as exc:
        msg = f"connector {connector!r}: could not reach its receiver at {address} ({exc})"
        raise ChannelError(msg) from exc
    _disable_nagle(writer)
    try:
        sealer = await present(reader, writer, security, tls, connector, field, max_frame)
    except Unanswered:
        writer.transport.abort()
        raise _TryAgain(claim_refused=True) from None
    except (asyncio.IncompleteReadError, OSError):
        writer.transport.abort()
        raise _TryAgain(claim_refused=False) from None
    except Impostor as exc:
        writer.transport.abort()
        msg = (
            f"connector {connector!r}: the receiver at {address} did not prove it belongs to "
            f"this run ({exc}); nothing was sent to it"
        )
        raise ChannelError(msg) from None
    except BaseException:
        writer.transport.abort()
        raise
    return writer, sealer
