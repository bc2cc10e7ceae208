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
async def websocket_server(handler: Handler) -> AsyncIterator[str]:
    """Serves `handler` on 127.0.0.1, on a port the system picks; yields the URI."""
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


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
            await ws.send(json.dumps({"tick": i}))
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
    all_arrived = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
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
