"""Direct streams between processes: the transport of `RayConnector`, its receiving end.

Every component that has inputs listens on one TCP port, on its node's own address (loopback
when the whole run is on one node), until every connector into it has connected. Each
connector opens one connection (`sender.StreamSender`), proves it belongs to the run
(`auth`: a handshake over the run's secret, inside TLS when Ray uses TLS) and sends frames,
each a pickled batch of messages. TCP keeps each connector's messages in order, and its flow
control is the back-pressure: the receiver only reads while the field's inbox has room.

Frames (after the handshake): a 4-byte big-endian length, a 16-byte tag, then the payload;
a frame of length zero ends the stream. Nothing is unpickled before its tag is checked.

Limits against whoever reaches a port (`gate`, shared with the driver's run coordinator): a
connection must complete its handshake within `HANDSHAKE_TIMEOUT`; at most
`MAX_PENDING_HANDSHAKES` connections wait for theirs at once (a newcomer pushes out the one
that has waited longest, and a sender of the run pushed out tries again); the handshake reads
a bounded number of bytes; once every connector is in, the port closes and so do the
connections still in their handshake (strangers'). Each input has a frame limit of the
receiver's own (`frame_limits`: the largest `max_frame_bytes` of the connectors into it, from
the run's wiring): a claim of larger frames is refused at the handshake, and a frame over the
limit closes the stream, whatever the sender claimed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass
import logging
import pickle
import socket

from prefect_plugboard.connector.channel import Inbox
from prefect_plugboard.connector.ray_connector import DEFAULT_MAX_FRAME_BYTES
from prefect_plugboard.exceptions import ChannelError
from prefect_plugboard.process.ray.auth import (
    FRAME_HEAD,
    Claim,
    FrameChecker,
    StreamSecurity,
    admit,
)
from prefect_plugboard.process.ray.gate import (
    HANDSHAKE_TIMEOUT,
    MAX_PENDING_HANDSHAKES,
    Gate,
    peer_of,
)
from prefect_plugboard.process.ray.tls import server_context


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "MAX_PENDING_HANDSHAKES",
    "StreamAddress",
    "StreamReceiver",
    "disable_nagle",
]

_logger = logging.getLogger(__name__)

_Warn = Callable[[str], None]


@dataclass(frozen=True)
class StreamAddress:
    """Where a component's receiver listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


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
        frame_limits: The largest frame (payload bytes) it takes into each field: the
            largest `max_frame_bytes` of the connectors into it. A field not named here:
            `DEFAULT_MAX_FRAME_BYTES`.
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
        frame_limits: Mapping[str, int] | None = None,
    ) -> None:
        self._inboxes = inboxes
        self._frame_limits = dict(frame_limits or {})
        self._host = host
        self._security = security
        self._tls = server_context() if security.tls else None
        self._senders = senders
        self._name = name
        self._warn = warn if warn is not None else _logger.warning
        self._gate = Gate(f"component {name!r}", self._warn, handshake_timeout=handshake_timeout)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._admitted = 0

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
        peer = peer_of(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        disable_nagle(writer)
        try:
            session = await self._gate.admit(
                peer,
                admit(reader, writer, self._security, self._tls, frame_limit=self._frame_limit_of),
            )
            if session is None:
                return
            claim, checker = session.claim, session.inbound
            inbox = self._inboxes.get(claim.field)
            if inbox is None:
                _logger.error(
                    "connector %s names unknown input %r; closing it", claim.connector, claim.field
                )
                return
            self._admitted += 1
            if self._admitted >= self._senders and self._server is not None:
                self._server.close()  # every connector is in: nobody else needs this port
                self._gate.close_waiting("every connector into it is connected")
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

    async def _receive(
        self,
        reader: asyncio.StreamReader,
        inbox: Inbox,
        claim: Claim,
        checker: FrameChecker,
        peer: str,
    ) -> None:
        connector, field = claim.connector, claim.field
        limit = claim.max_frame  # at most the receiver's own: `admit` refused a larger claim
        while True:
            length, tag = FRAME_HEAD.unpack(await reader.readexactly(FRAME_HEAD.size))
            if length > limit:
                self._warn(
                    f"Connection from {peer} to component {self._name!r} (connector "
                    f"{connector!r}): a frame of {length:,} bytes is over the limit of "
                    f"{limit:,}; it was not read and the stream was closed."
                )
                inbox.fail(_too_large(connector, field, length, limit))
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

    def _frame_limit_of(self, claim: Claim) -> int:
        return self._frame_limits.get(claim.field, DEFAULT_MAX_FRAME_BYTES)

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
        self._gate.summarise()


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


def disable_nagle(writer: asyncio.StreamWriter) -> None:
    """Sends small frames at once (a lone message must not wait for an acknowledgement)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
