"""`WebsocketReader` and `WebsocketWriter`: messages from and to a websocket server."""

from abc import ABC
from collections.abc import AsyncIterator, Mapping
import contextlib
import json
import typing as _t

from websockets.asyncio.client import ClientConnection, connect, process_exception
from websockets.exceptions import ConnectionClosed

from prefect_plugboard.component.io import IO
from prefect_plugboard.exceptions import DataIOError
from prefect_plugboard.library._common import LibraryComponent, label
from prefect_plugboard.schemas.component import ComponentArgsDict


__all__ = ["WebsocketArgsDict", "WebsocketBase", "WebsocketReader", "WebsocketWriter"]


class WebsocketArgsDict(ComponentArgsDict, total=False):
    """The keyword arguments of a websocket component.

    Attributes:
        uri: The server's URI (`ws://...` or `wss://...`).
        connect_args: Keyword arguments of `websockets.asyncio.client.connect`.
    """

    uri: _t.Required[str]
    connect_args: Mapping[str, _t.Any] | None


class WebsocketBase(LibraryComponent, ABC):
    """A component with a connection to a websocket server, made again when it is lost.

    `init()` connects: a server that cannot be reached fails the model before it starts. A
    connection lost later is made again at once, then with growing pauses while the server
    cannot be reached (the back-off of the `websockets` library: a few seconds at first, at
    most 90 s); an error that retrying cannot fix (e.g. HTTP 4xx) fails the component.

    Args:
        uri: The server's URI (`ws://...` or `wss://...`).
        connect_args: Keyword arguments of `websockets.asyncio.client.connect` (headers,
            `open_timeout`, `max_size`, ...).
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = ("_connections", "_connection")

    def __init__(
        self,
        uri: str,
        connect_args: Mapping[str, _t.Any] | None = None,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._uri = uri
        self._connect_args = dict(connect_args or {})
        self._connections: AsyncIterator[ClientConnection] | None = None
        self._connection: ClientConnection | None = None
        self._connected_once = False

    async def init(self) -> None:
        """Connects to the server.

        Raises:
            DataIOError: The server cannot be reached or refuses the connection.
        """
        self._connected_once = False
        options = {"process_exception": self._retryable, **self._connect_args}
        self._connections = aiter(connect(self._uri, **options))
        try:
            self._connection = await self._connect()
        except Exception as exc:
            msg = f"{label(self)}: cannot connect to {self._uri}: {type(exc).__name__}: {exc}"
            raise DataIOError(msg) from exc
        self._connected_once = True
        self.logger.info("%s connected to %s", label(self), self._uri)

    async def destroy(self) -> None:
        """Closes the connection."""
        connections, self._connections = self._connections, None
        self._connection = None
        if connections is not None:
            with contextlib.suppress(Exception):
                await _t.cast(_t.Any, connections).aclose()

    async def _connect(self) -> ClientConnection:
        """The next connection (subclasses add what follows a connection)."""
        return await anext(_t.cast(AsyncIterator[ClientConnection], self._connections))

    async def _reconnect(self, closed: ConnectionClosed) -> ClientConnection:
        self.logger.warning(
            "%s lost its connection to %s (%s); connecting again", label(self), self._uri, closed
        )
        self._connection = await self._connect()
        return self._connection

    def _retryable(self, exc: Exception) -> Exception | None:
        if not self._connected_once:
            return exc  # the first connection fails at once: bad input, before the run
        return process_exception(exc)


class WebsocketReader(WebsocketBase):
    """Emits each message the server sends, one per step, on the output `message`.

    It runs until the model is stopped (a `StopEvent`, `process.stop()`, a cancellation).

    Args:
        initial_message: Sent on every connection, e.g. to subscribe to a topic (as JSON
            with `parse_json`).
        skip_messages: How many messages to ignore after each connection (e.g. a greeting).
        parse_json: Whether messages are JSON, to be parsed (and `initial_message` encoded).
        **kwargs: `uri`, `connect_args` and the other `ComponentArgsDict` arguments.
    """

    io = IO(outputs=["message"])

    def __init__(
        self,
        initial_message: _t.Any | None = None,
        skip_messages: int = 0,
        parse_json: bool = False,
        **kwargs: _t.Unpack[WebsocketArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        if initial_message is not None and parse_json:
            initial_message = json.dumps(initial_message)
        self._initial_message = initial_message
        self._skip_messages = skip_messages
        self._to_skip = 0
        self._parse_json = parse_json

    async def _connect(self) -> ClientConnection:
        connection = await super()._connect()
        if self._initial_message is not None:
            await connection.send(self._initial_message)
        self._to_skip = self._skip_messages
        return connection

    async def step(self) -> None:
        """Waits for the next message and emits it."""
        connection = _t.cast(ClientConnection, self._connection)
        while True:
            try:
                message = await connection.recv()
            except ConnectionClosed as closed:
                connection = await self._reconnect(closed)
                continue
            if self._to_skip:
                self._to_skip -= 1
                continue
            break
        if self._parse_json:
            try:
                self.message = json.loads(message)
            except ValueError as exc:
                msg = (
                    f"{label(self)}: a message from {self._uri} is not JSON ({exc}): "
                    f"{message!r:.200}"
                )
                raise DataIOError(msg) from None
        else:
            self.message = message


class WebsocketWriter(WebsocketBase):
    """Sends each value of its input `message` to the server.

    Args:
        parse_json: Whether to send the value encoded as JSON.
        **kwargs: `uri`, `connect_args` and the other `ComponentArgsDict` arguments.
    """

    io = IO(inputs=["message"])

    def __init__(self, parse_json: bool = False, **kwargs: _t.Unpack[WebsocketArgsDict]) -> None:
        super().__init__(**kwargs)
        self._parse_json = parse_json

    async def step(self) -> None:
        """Sends the message, connecting again first if the connection was lost."""
        message = json.dumps(self.message) if self._parse_json else self.message
        connection = _t.cast(ClientConnection, self._connection)
        while True:
            try:
                await connection.send(message)
                return
            except ConnectionClosed as closed:
                connection = await self._reconnect(closed)
