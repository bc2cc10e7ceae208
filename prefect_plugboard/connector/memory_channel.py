"""`Channel`: the ends a connector hands out for driving components by hand.

A process wires its components itself (see `channel.py`); these channels are for code that
drives a component directly, as plugboard's users write unit tests:

```python
await component.io.connect([into, out_of])
send, receive = await into.connect_send(), await out_of.connect_recv()
await send.send(2)
await component.step()
assert await receive.recv() == 4
```

A pipeline connector hands out one channel, shared by its sending and receiving ends; a
pub/sub connector hands every `connect_recv()` its own queue, and a send reaches all of them.
"""

from __future__ import annotations

import asyncio
import typing as _t

from prefect_plugboard.exceptions import ChannelClosedError


__all__ = ["Channel"]


class _Closed:
    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSED"


_CLOSED: _t.Final = _Closed()


class Channel:
    """An in-memory channel: `send`, `recv`, `close`, in order, on one event loop.

    Args:
        maxsize: Most messages held before `send` waits; `0` means unbounded.
        name: For messages, e.g. the connector's id.
    """

    def __init__(self, maxsize: int = 0, name: str = "") -> None:
        self.maxsize = maxsize
        self.name = name
        self._queue: asyncio.Queue[_t.Any] | None = None
        self._subscribers: list[Channel] | None = None
        self._send_closed = False
        self._recv_closed = False

    @classmethod
    def broadcast(cls, maxsize: int = 0, name: str = "") -> Channel:
        """A channel whose sends reach every channel added with `subscribe()`."""
        channel = cls(maxsize, name)
        channel._subscribers = []
        return channel

    def subscribe(self) -> Channel:
        """Adds a receiving channel to a broadcast channel and returns it."""
        if self._subscribers is None:
            msg = f"channel {self.name!r} is not a broadcast channel"
            raise TypeError(msg)
        subscriber = Channel(self.maxsize, self.name)
        self._subscribers.append(subscriber)
        return subscriber

    @property
    def is_closed(self) -> bool:
        """Whether the sending end has closed (messages may still wait to be received)."""
        return self._send_closed

    def _queue_of(self) -> asyncio.Queue[_t.Any]:
        # Made on first use, so a channel can be built outside a running event loop.
        if self._queue is None:
            self._queue = asyncio.Queue(self.maxsize)
        return self._queue

    async def send(self, item: _t.Any) -> None:
        """Sends a message, waiting while the channel is full.

        Raises:
            ChannelClosedError: The channel was closed.
        """
        if self._send_closed:
            msg = f"cannot send on channel {self.name!r}: it is closed"
            raise ChannelClosedError(msg)
        await self._put(item)

    async def _put(self, item: _t.Any) -> None:
        if self._subscribers is None:
            await self._queue_of().put(item)
            return
        for subscriber in self._subscribers:
            await subscriber._queue_of().put(item)

    async def recv(self) -> _t.Any:
        """Waits for and returns the next message.

        Raises:
            ChannelClosedError: The sender closed the channel and every message was received.
        """
        if self._recv_closed:
            msg = f"channel {self.name!r} is closed"
            raise ChannelClosedError(msg)
        item = await self._queue_of().get()
        if item is _CLOSED:
            self._recv_closed = True
            msg = f"channel {self.name!r} is closed"
            raise ChannelClosedError(msg)
        return item

    def recv_nowait(self) -> tuple[bool, _t.Any]:
        """Returns `(True, message)` if one is waiting, else `(False, None)`.

        Raises:
            ChannelClosedError: The sender closed the channel and every message was received.
        """
        if self._recv_closed:
            msg = f"channel {self.name!r} is closed"
            raise ChannelClosedError(msg)
        queue = self._queue_of()
        if queue.empty():
            return False, None
        item = queue.get_nowait()
        if item is _CLOSED:
            self._recv_closed = True
            msg = f"channel {self.name!r} is closed"
            raise ChannelClosedError(msg)
        return True, item

    async def close(self) -> None:
        """Ends the stream: the receiver gets every message sent before, then the end."""
        if not self._send_closed:
            self._send_closed = True
            await self._put(_CLOSED)

    def __repr__(self) -> str:
        return f"Channel({self.name!r})"
