"""The sending end of a `RayConnector` stream: one connection per connector, batched frames.

Batches form by themselves. A message is appended to the connector's outbox and a flush is
scheduled for when the component next yields to the event loop, so a lone message leaves at
once while a busy component sends many per frame (up to `batch_size`, and never over the
connector's `max_frame_bytes`: a larger batch is split). A sender whose socket buffer passes
`HIGH_WATER` waits until it drains: TCP's flow control is the back-pressure.

Before its first message a sender completes the handshake (`auth.present`): it sends nothing
to a receiver that has not proven it holds the run's secret. A receiver that turns it away
before answering (too many connections waiting, a deadline missed) is tried again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import functools
import pickle
import ssl
import typing as _t

from prefect_plugboard.connector.ray_connector import DEFAULT_MAX_FRAME_BYTES
from prefect_plugboard.exceptions import ChannelClosedError, ChannelError
from prefect_plugboard.process.ray.auth import (
    FrameSealer,
    Impostor,
    StreamSecurity,
    Unanswered,
    present,
)
from prefect_plugboard.process.ray.gate import retry_pause as _retry_pause
from prefect_plugboard.process.ray.stream import StreamAddress, disable_nagle
from prefect_plugboard.process.ray.tls import client_context


__all__ = ["HIGH_WATER", "StreamSender"]

HIGH_WATER = 1 << 20
"""Bytes waiting in a sender's socket buffer beyond which it waits for the receiver."""
_CONNECT_ATTEMPTS = 20
"""Handshakes a sender tries (with a growing pause, ~16 s in all) before it gives up."""
_UNANSWERED_CLAIMS = 2
"""Claims left unanswered after which a sender concludes the receiver refuses its key."""


def _dumps(batch: list[_t.Any]) -> bytes:
    # cloudpickle (Ray's copy) so that values of classes defined in a script (`__main__`) or
    # a user module registered "by value" can be rebuilt on the other side.
    return _t.cast(bytes, _cloudpickle().dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))


@functools.cache
def _cloudpickle() -> _t.Any:
    from ray import cloudpickle

    return cloudpickle


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
                            "(an address from another run?), or it takes smaller frames than "
                            "this connector's max_frame_bytes (its component's log says which)"
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


class _TryAgain(Exception):  # a signal, not an error
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
    disable_nagle(writer)
    try:
        session = await present(reader, writer, security, tls, connector, field, max_frame)
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
    return writer, session.outbound
