"""`WebsocketReader` / `WebsocketWriter` against a websockets server started by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import json
import typing as _t

import pytest
from websockets.asyncio.server import ServerConnection, serve

from prefect_plugboard import (
    IO,
    Component,
    ComponentArgsDict,
    LocalProcess,
    PlugboardError,
    Status,
    StopEvent,
)
from prefect_plugboard.library import WebsocketReader, WebsocketWriter
from prefect_plugboard.testing import ListSource, run_in_memory
from tests.helpers import connect, error_text, free_port


Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def websocket_server(handler: Handler, port: int = 0) -> AsyncIterator[str]:
    """Serves `handler` on 127.0.0.1, on `port` (0: one the system picks); yields the URI."""
    async with serve(handler, "127.0.0.1", port) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def refuse_until(port: int, refusals: int) -> None:
    """Plays a server that is down on `port`: closes each connection before the handshake,
    and returns once `refusals` connection attempts were made (each after a back-off pause,
    but for the first), leaving the port free for the server to come up again."""
    attempts = 0
    enough = asyncio.Event()

    async def refuse(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        writer.close()
        if attempts >= refusals:
            enough.set()

    server = await asyncio.start_server(refuse, "127.0.0.1", port)
    async with server:
        await enough.wait()


async def meanwhile(waiting: Awaitable[object], run: asyncio.Future[None]) -> None:
    """Awaits `waiting`, failing at once if the run ends first (with the run's error)."""
    task: asyncio.Future[_t.Any] = asyncio.ensure_future(waiting)
    both: set[asyncio.Future[_t.Any]] = {task, run}
    done, _ = await asyncio.wait(both, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        if run.done():
            run.result()  # the run's error, if it failed
        raise AssertionError("the run ended, or nothing happened in 30 s, while waiting")
    task.result()


class StopAfter(Component):
    """Records `message`s; stops the model once it has `count` of them."""

    io = IO(inputs=["message"])

    def __init__(self, count: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._count = count
        self.received: list[_t.Any] = []

    async def step(self) -> None:
        self.received.append(self.message)
        if len(self.received) == self._count:
            self.io.queue_event(StopEvent(source=self.name, data={}))


def _reader_model(reader: WebsocketReader, count: int) -> tuple[LocalProcess, StopAfter]:
    sink = StopAfter(name="sink", count=count)
    process = LocalProcess(
        components=[reader, sink],
        connectors=connect("read.message -> sink.message"),
    )
    return process, sink


async def test_a_reader_subscribes_skips_the_greeting_and_parses_json() -> None:
    subscriptions: list[_t.Any] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send("welcome")  # skipped
        subscriptions.append(json.loads(await ws.recv()))
        for i in range(3):
            text = json.dumps({"tick": i})
            await ws.send(text.encode() if i == 1 else text)  # a binary frame, as plugboard's
        await ws.wait_closed()

    async with websocket_server(handler) as uri:
        reader = WebsocketReader(
            name="read",
            uri=uri,
            initial_message={"subscribe": "ticks"},
            skip_messages=1,
            parse_json=True,
        )
        process, sink = _reader_model(reader, 3)
        await asyncio.wait_for(run_in_memory(process), 20)
    assert subscriptions == [{"subscribe": "ticks"}]
    assert sink.received == [{"tick": 0}, {"tick": 1}, {"tick": 2}]
    assert process.status is Status.STOPPED


async def test_a_reader_connects_again_when_the_connection_drops() -> None:
    connections: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        connections.append(str(await ws.recv()))
        first = len(connections) == 1
        for i in range(2):
            await ws.send(f"{len(connections)}.{i}")
        if first:
            await ws.close(code=1011, reason="going away for a moment")
        else:
            await ws.wait_closed()

    async with websocket_server(handler) as uri:
        reader = WebsocketReader(name="read", uri=uri, initial_message="hello")
        process, sink = _reader_model(reader, 4)
        await asyncio.wait_for(run_in_memory(process), 20)
    assert connections == ["hello", "hello"]  # the initial message is sent on each connection
    assert sink.received == ["1.0", "1.1", "2.0", "2.1"]


async def test_a_writer_sends_each_value_as_json() -> None:
    received: list[_t.Any] = []
    frames: list[type] = []
    all_arrived = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            frames.append(type(message))
            received.append(json.loads(message))
            if len(received) == 3:
                all_arrived.set()

    async with websocket_server(handler) as uri:
        process = LocalProcess(
            components=[
                ListSource(name="src", items=[{"a": 1}, [2, 3], "four"], field="message"),
                WebsocketWriter(name="send", uri=uri, parse_json=True),
            ],
            connectors=connect("src.message -> send.message"),
        )
        await asyncio.wait_for(run_in_memory(process), 20)
        await asyncio.wait_for(all_arrived.wait(), 10)
    assert received == [{"a": 1}, [2, 3], "four"]
    assert frames == [str, str, str]  # text frames


@pytest.mark.parametrize("cls", [WebsocketReader, WebsocketWriter])
async def test_a_server_that_cannot_be_reached_fails_naming_the_component_and_uri(
    cls: type[WebsocketReader] | type[WebsocketWriter],
) -> None:
    uri = f"ws://127.0.0.1:{free_port()}/feed"
    component = cls(name="ws", uri=uri)
    other: Component = (
        StopAfter(name="other", count=1)
        if cls is WebsocketReader
        else ListSource(name="other", items=[1], field="message")
    )
    source, target = ("ws", "other") if cls is WebsocketReader else ("other", "ws")
    process = LocalProcess(
        components=[component, other],
        connectors=connect(f"{source}.message -> {target}.message"),
    )
    with pytest.raises(PlugboardError) as info:
        await asyncio.wait_for(run_in_memory(process), 20)
    text = error_text(info.value)
    assert f"{cls.__name__} 'ws': cannot connect to {uri}" in text


# ----- a server down for a while: back-off, then the connection is made again -----------------


async def test_a_reader_waits_for_a_server_that_is_down_and_reads_on() -> None:
    port = free_port()
    first_served = asyncio.Event()

    async def first(ws: ServerConnection) -> None:
        for i in range(2):
            await ws.send(f"1.{i}")
        first_served.set()
        await ws.wait_closed()

    async def second(ws: ServerConnection) -> None:
        for i in range(2):
            await ws.send(f"2.{i}")
        await ws.wait_closed()

    reader = WebsocketReader(name="read", uri=f"ws://127.0.0.1:{port}")
    process, sink = _reader_model(reader, 4)
    async with websocket_server(first, port):
        run = asyncio.ensure_future(run_in_memory(process))
        await meanwhile(first_served.wait(), run)
    # The server is down: two attempts are refused, with a back-off pause between them.
    await meanwhile(refuse_until(port, refusals=2), run)
    async with websocket_server(second, port):
        await asyncio.wait_for(run, 30)
    assert sink.received == ["1.0", "1.1", "2.0", "2.1"]
    assert process.status is Status.STOPPED


class GatedSource(Component):
    """Emits `items` on `message`; waits for `gate` before the item at index `gate_at`."""

    io = IO(outputs=["message"])

    def __init__(
        self,
        items: list[_t.Any],
        gate: asyncio.Event,
        gate_at: int,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._items, self._gate, self._gate_at = items, gate, gate_at
        self._index = 0

    async def step(self) -> None:
        if self._index == len(self._items):
            await self.io.close()
            return
        if self._index == self._gate_at:
            await self._gate.wait()
        self.message = self._items[self._index]
        self._index += 1


async def test_a_writer_waits_for_a_server_that_is_down_and_sends_on() -> None:
    port = free_port()
    before: list[str] = []
    after: list[str] = []
    first_three, server_down, all_sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first(ws: ServerConnection) -> None:
        async for message in ws:
            before.append(str(message))
            if len(before) == 3:
                first_three.set()

    async def second(ws: ServerConnection) -> None:
        async for message in ws:
            after.append(str(message))
            if len(after) == 3:
                all_sent.set()

    items = [f"m{i}" for i in range(6)]
    process = LocalProcess(
        components=[
            GatedSource(name="src", items=items, gate=server_down, gate_at=3),
            WebsocketWriter(name="send", uri=f"ws://127.0.0.1:{port}"),
        ],
        connectors=connect("src.message -> send.message"),
    )
    async with websocket_server(first, port):
        run = asyncio.ensure_future(run_in_memory(process))
        await meanwhile(first_three.wait(), run)
    server_down.set()  # the next messages meet a closed connection
    await meanwhile(refuse_until(port, refusals=2), run)
    async with websocket_server(second, port):
        await asyncio.wait_for(run, 30)
        await asyncio.wait_for(all_sent.wait(), 10)
    assert before == items[:3] and after == items[3:]
