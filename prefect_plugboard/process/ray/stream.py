"""Direct streams between processes: the transport of `RayConnector`.

Every component that has inputs listens on one TCP port; each connector into it opens one
connection and sends length-prefixed frames, each a pickled batch of messages. TCP keeps
each connector's messages in order, and its flow control is the back-pressure: the receiver
only reads while the field's inbox has room, and a sender whose socket buffer passes a limit
waits until it drains.

Batches form by themselves. A message is appended to the connector's outbox and a flush is
scheduled for when the component next yields to the event loop, so a lone message leaves at
once while a busy component sends many per frame (up to `batch_size`).

Frames: a 4-byte big-endian length, then the payload. The first frame of a connection is the
handshake, `(connector id, target field)`; a frame of length zero ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import functools
import logging
import pickle
import socket
import struct
import typing as _t

from prefect_plugboard.connector.channel import Inbox
from prefect_plugboard.exceptions import ChannelClosedError, ChannelError


__all__ = ["StreamAddress", "StreamReceiver", "StreamSender"]

_logger = logging.getLogger(__name__)
_LENGTH = struct.Struct("!I")
_END = _LENGTH.pack(0)
_MAX_FRAME = (1 << 32) - 1
HIGH_WATER = 1 << 20
"""Bytes waiting in a sender's socket buffer beyond which it waits for the receiver."""


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
        host: The address to listen on: the node's own address (never every interface).
    """

    def __init__(self, inboxes: dict[str, Inbox], host: str) -> None:
        self._inboxes = inboxes
        self._host = host
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> StreamAddress:
        """Starts listening on a free port; returns the address peers connect to."""
        self._server = await asyncio.start_server(self._handle, self._host, 0)
        port = self._server.sockets[0].getsockname()[1]
        return StreamAddress(self._host, port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        _disable_nagle(writer)
        inbox: Inbox | None = None
        try:
            connector, field = pickle.loads(await _read_frame(reader))  # noqa: S301 - trusted peers of one run
            inbox = self._inboxes.get(field)
            if inbox is None:
                _logger.error("connector %s names unknown input %r; closing it", connector, field)
                return
            while True:
                payload = await _read_frame(reader)
                if not payload:
                    inbox.sender_closed()
                    return
                try:
                    batch = pickle.loads(payload)  # noqa: S301 - trusted peers of one run
                except Exception as exc:  # noqa: BLE001 - any decoding failure ends the stream
                    inbox.fail(_undecodable(connector, field, exc))
                    return
                for item in batch:
                    if not inbox.put_nowait(item):
                        await inbox.put(item)
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


def _undecodable(connector: str, field: str, cause: Exception) -> ChannelError:
    error = ChannelError(
        f"connector {connector!r} into input {field!r}: a message could not be unpickled here "
        f"({type(cause).__name__}: {cause}); the class of what it carries must be importable "
        "on every Ray worker (ship its module in the runtime_env, or pickle it by value)"
    )
    error.__cause__ = cause
    return error


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return await reader.readexactly(length) if length else b""


def _disable_nagle(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StreamSender:
    """Sends one connector's messages over a stream, batching them as described above.

    It accepts messages while its connection is still being made (up to `batch_size` wait
    in the outbox, after that the sender waits), but a component should await `connected()`
    before its first step: a component whose steps block its event loop would otherwise
    make progress on the connection only between steps.

    Args:
        name: The connector id, for messages.
        batch_size: Most messages per frame.
        connect: Opens the connection (and sends the handshake); returns `None` if the
            receiver is gone already.
    """

    def __init__(
        self,
        name: str,
        batch_size: int,
        connect: _t.Callable[[], _t.Awaitable[asyncio.StreamWriter | None]],
    ) -> None:
        self.name = name
        self._batch_size = batch_size
        self._writer: asyncio.StreamWriter | None = None
        self._transport: asyncio.WriteTransport | None = None
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
        locate: _t.Callable[[], _t.Awaitable[StreamAddress | None]],
        connector: str,
        field: str,
        batch_size: int,
    ) -> StreamSender:
        """Returns a sender that finds its receiver with `locate()` and connects to it."""

        async def connect() -> asyncio.StreamWriter | None:
            address = await locate()
            if address is None:
                return None
            try:
                _, writer = await asyncio.open_connection(address.host, address.port)
            except ConnectionError:
                return None  # the receiver finished and stopped listening
            _disable_nagle(writer)
            handshake = pickle.dumps((connector, field))
            writer.write(_LENGTH.pack(len(handshake)) + handshake)
            return writer

        return cls(connector, batch_size, connect)

    async def _connect(
        self, connect: _t.Callable[[], _t.Awaitable[asyncio.StreamWriter | None]]
    ) -> None:
        writer = await connect()
        if writer is None:
            self._receiver_gone = True
            self._held = False
            self._outbox.clear()
            return
        self._writer = writer
        self._transport = writer.transport
        self._flush()

    async def connected(self) -> None:
        """Waits until the connection is made (or the receiver is known to be gone)."""
        await self._connecting

    def send_nowait(self, item: _t.Any, /) -> bool:
        """Queues a message for the next frame; `False` if the sender must wait first.

        The sender is held back while its socket buffer holds more than `HIGH_WATER` bytes
        (the receiver is behind) or, before the connection is made, while its outbox is full.

        Raises:
            ChannelError: An earlier batch could not be sent (it could not be pickled).
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
        if writer is None:
            return
        self._flush()
        if self._error is not None:
            writer.transport.abort()  # the receiver must not take a partial stream as whole
            raise self._error
        if not self._receiver_gone:
            with contextlib.suppress(ConnectionError):
                writer.write(_END)
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
        if self._writer is None:  # still connecting: the outbox is all there is
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
            payload = _dumps(outbox)
            if len(payload) > _MAX_FRAME:
                msg = f"a batch of {len(outbox)} messages pickles to {len(payload)} bytes"
                raise ValueError(msg)  # noqa: TRY301 - reported like a pickling failure
        except Exception as exc:  # noqa: BLE001 - any value may fail to pickle
            # Held from now on: the next send or the close raises this in the component.
            self._error = ChannelError(
                f"connector {self.name!r}: a message could not be pickled to cross to another "
                f"worker ({type(exc).__name__}: {exc}); send picklable values, or batches "
                "under 4 GiB"
            )
            self._error.__cause__ = exc
            self._held = True
            return
        self._outbox = []
        self._writer.write(_LENGTH.pack(len(payload)) + payload)
        self._held = transport.get_write_buffer_size() > HIGH_WATER

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
