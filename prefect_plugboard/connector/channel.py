"""Channels: the in-memory ends that carry messages between components.

A component receives each input field from one `Inbox`; every connector into that field
writes to it through a `Sender`. An inbox keeps messages in order per sender, holds at most
`maxsize` of them (a full inbox makes senders wait: back-pressure), and ends once every sender
has closed and every message sent before the close has been received.

The hot path has no coroutine: `Inbox.get_nowait` and `Sender.send_nowait` return at once and
report whether they succeeded, and the awaitable `get`/`send` are only used when a component
has to wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
import typing as _t

from prefect_plugboard.exceptions import ChannelClosedError, PlugboardError


__all__ = ["EMPTY", "DEFAULT_MAXSIZE", "EndOfStream", "Inbox", "LocalSender", "Sender"]

DEFAULT_MAXSIZE = 1024
"""Default bound of a channel, in messages. Large enough to batch hand-offs, small enough to
keep memory flat; `maxsize=0` makes a channel unbounded."""


class _Empty:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: _t.Final = _Empty()
"""Returned by `Inbox.get_nowait` when no message is waiting."""


class EndOfStream(PlugboardError):
    """Every sender into an inbox has closed and every message has been received."""


class Inbox:
    """The receiving end of one input field: bounded, FIFO per sender, many senders.

    Args:
        maxsize: Most messages held; senders wait while it is full. `0` means unbounded.
        senders: How many senders will write to it; the stream ends when all have closed.
        name: For messages and debugging, e.g. `"sink.x"`.
    """

    __slots__ = (
        "_buffer",
        "_error",
        "_getter",
        "_open_senders",
        "_putters",
        "_receiver_gone",
        "maxsize",
    )

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE, senders: int = 1, name: str = "") -> None:
        if maxsize < 0:
            msg = f"maxsize of inbox {name!r} must be >= 0 (0 means unbounded), got {maxsize}"
            raise ValueError(msg)
        self.maxsize = maxsize or 2**62
        self._buffer: deque[_t.Any] = deque()
        self._open_senders = senders
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._receiver_gone = False
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._buffer)

    def __bool__(self) -> bool:
        return True  # an inbox is an object, not an empty or full container

    @property
    def ended(self) -> bool:
        """Whether every sender has closed and every message has been taken."""
        return self._open_senders <= 0 and not self._buffer

    def get_nowait(self) -> _t.Any:
        """Takes the next message, or returns `EMPTY` if none is waiting."""
        buffer = self._buffer
        if buffer:
            item = buffer.popleft()
            if self._putters:
                self._wake_putter()
            return item
        return EMPTY

    async def get(self) -> _t.Any:
        """Waits for and takes the next message.

        Raises:
            EndOfStream: Every sender has closed and no message is left.
        """
        buffer = self._buffer
        while not buffer:
            if self._error is not None:
                raise self._error
            if self._open_senders <= 0:
                raise EndOfStream
            getter = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                # A cancelled get() finishes late: it must not unhook a newer get()'s waiter.
                if self._getter is getter:
                    self._getter = None
        item = buffer.popleft()
        if self._putters:
            self._wake_putter()
        return item

    def put_back(self, item: _t.Any) -> None:
        """Returns a message just taken to the front, to be taken again first."""
        self._buffer.appendleft(item)

    def put_nowait(self, item: _t.Any) -> bool:
        """Adds a message unless the inbox is full; returns whether it was taken.

        Once the receiver has finished, messages are dropped and this returns `True`, so
        senders never wait for a component that will not read again.
        """
        buffer = self._buffer
        if len(buffer) >= self.maxsize:
            return False  # (a finished receiver's buffer is empty, so never full)
        if self._receiver_gone:
            return True
        buffer.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)
        return True

    async def put(self, item: _t.Any) -> None:
        """Adds a message, waiting while the inbox is full."""
        while not self.put_nowait(item):
            putter = asyncio.get_running_loop().create_future()
            self._putters.append(putter)
            try:
                await putter
            except BaseException:
                if putter in self._putters:
                    self._putters.remove(putter)
                elif putter.done() and not putter.cancelled():
                    # Woken, then cancelled: hand the wake-up on so no sender is stranded.
                    self._wake_putter()
                raise

    def sender_closed(self) -> None:
        """Records that one sender has closed; the last close ends the stream."""
        self._open_senders -= 1
        if self._open_senders <= 0:
            getter = self._getter
            if getter is not None and not getter.done():
                getter.set_result(None)

    def fail(self, error: BaseException) -> None:
        """Records that a sender's stream broke: `get()` raises `error` once the inbox is empty.

        Messages that arrived before the break are still taken first, in order.
        """
        self._error = error
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def receiver_gone(self) -> None:
        """Records that the receiver finished: waiting senders resume, later messages drop."""
        self._receiver_gone = True
        self._buffer.clear()
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return


class Sender(_t.Protocol):
    """The sending end of one connector."""

    def send_nowait(self, item: _t.Any, /) -> bool:
        """Sends a message if there is room; returns whether it was sent."""

    async def send(self, item: _t.Any) -> None:
        """Sends a message, waiting while the receiver is full."""

    async def close(self) -> None:
        """Ends this sender's stream, after every message already sent."""


class LocalSender:
    """A sender that writes straight into an `Inbox` on the same event loop.

    Args:
        inbox: The inbox of the target input field.
        name: For messages, e.g. the connector id.
    """

    __slots__ = ("_closed", "_inbox", "name", "send_nowait")

    def __init__(self, inbox: Inbox, name: str = "") -> None:
        self._inbox = inbox
        self._closed = False
        self.name = name
        self.send_nowait: _t.Callable[[_t.Any], bool] = inbox.put_nowait

    async def send(self, item: _t.Any) -> None:
        """Sends a message, waiting while the inbox is full."""
        if self._closed:
            self._raise_closed()
        await self._inbox.put(item)

    async def close(self) -> None:
        """Ends this sender's stream; closing twice does nothing."""
        if not self._closed:
            self._closed = True
            self.send_nowait = self._send_after_close
            self._inbox.sender_closed()

    def _send_after_close(self, item: _t.Any) -> bool:
        self._raise_closed()

    def _raise_closed(self) -> _t.NoReturn:
        msg = f"cannot send on connector {self.name!r}: it is closed"
        raise ChannelClosedError(msg)
