"""The `DataReader` / `DataWriter` bases: prefetch, chunks, whole rows, the end."""

from __future__ import annotations

import asyncio
from pathlib import Path
import typing as _t

import pytest

from prefect_plugboard import IO, Component, ComponentArgsDict, Event, LocalProcess
from prefect_plugboard.exceptions import (
    ComponentError,
    IOStreamClosedError,
    NoMoreDataException,
    ValidationError,
)
from prefect_plugboard.library import DataReader, DataReaderArgsDict, DataWriter, DataWriterArgsDict
from prefect_plugboard.testing import Collector, FailingComponent, ListSource, run_in_memory
from tests.helpers import wire


class RangeReader(DataReader):
    """Reads 0..stop-1 in chunks; records what it was doing when each fetch began."""

    def __init__(self, stop: int, **kwargs: _t.Unpack[DataReaderArgsDict]) -> None:
        super().__init__(**kwargs)
        self._stop, self._next = stop, 0
        self.fetches: list[int] = []  # rows emitted so far, at the start of each fetch
        self.emitted = 0

    async def _fetch(self) -> range:
        self.fetches.append(self.emitted)
        if self._next >= self._stop:
            raise NoMoreDataException
        size = self._chunk_size or self._stop
        chunk = range(self._next, min(self._next + size, self._stop))
        self._next = chunk.stop
        return chunk

    async def _convert(self, data: range) -> dict[str, list[int]]:
        return {"n": list(data), "square": [i * i for i in data]}

    async def step(self) -> None:
        await super().step()
        self.emitted += 1


class ListWriter(DataWriter):
    """Keeps the chunks it is asked to save."""

    def __init__(self, **kwargs: _t.Unpack[DataWriterArgsDict]) -> None:
        super().__init__(**kwargs)
        self.chunks: list[list[dict[str, _t.Any]]] = []

    async def _convert(self, data: dict[str, list[_t.Any]]) -> list[dict[str, _t.Any]]:
        return [dict(zip(data, row, strict=True)) for row in zip(*data.values(), strict=True)]

    async def _save(self, data: list[dict[str, _t.Any]]) -> None:
        await asyncio.sleep(0)  # a write takes time: the graph goes on meanwhile
        self.chunks.append(data)

    @property
    def rows(self) -> list[tuple[_t.Any, ...]]:
        return [tuple(row.values()) for chunk in self.chunks for row in chunk]


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 10, 25])
async def test_a_reader_emits_every_row_in_order_and_ends(chunk_size: int | None) -> None:
    sink = Collector(name="sink", fields=["n", "square"])
    process = LocalProcess(
        components=[
            RangeReader(name="read", stop=10, field_names=["n", "square"], chunk_size=chunk_size),
            sink,
        ],
        connectors=wire("read", "sink", ["n", "square"]),
    )
    await run_in_memory(process)
    assert sink.received == [(i, i * i) for i in range(10)]


async def test_a_reader_fetches_the_next_chunk_while_the_graph_works_on_this_one() -> None:
    reader = RangeReader(name="read", stop=9, field_names=["n"], chunk_size=3)
    process = LocalProcess(
        components=[reader, Collector(name="sink", fields=["n"])],
        connectors=wire("read", "sink", ["n"]),
    )
    await run_in_memory(process)
    # init() fetched rows 0-2; each next chunk was fetched as soon as the one before it was
    # taken into use (rows 3-5 before row 0 was emitted), not when the reader ran out of rows.
    assert reader.fetches == [0, 0, 3, 6]


async def test_a_reader_stepped_past_its_end_raises_like_plugboard() -> None:
    reader = RangeReader(name="read", stop=3, field_names=["n"], chunk_size=2)
    await reader.init()
    seen = []
    for _ in range(3):
        await reader.step()
        seen.append(reader.n)
    assert seen == [0, 1, 2]
    with pytest.raises(IOStreamClosedError, match="RangeReader 'read' has no more data"):
        await reader.step()
    assert reader.io.is_closed
    with pytest.raises(IOStreamClosedError):
        await reader.step()
    await reader.destroy()


@pytest.mark.parametrize(
    ("chunk_size", "sizes"), [(None, [7]), (3, [3, 3, 1]), (7, [7]), (10, [7])]
)
async def test_a_writer_writes_full_chunks_and_the_rest_at_the_end(
    chunk_size: int | None, sizes: list[int]
) -> None:
    writer = ListWriter(
        name="save", field_names=["x", "y"], chunk_size=chunk_size, flush_interval=None
    )
    process = LocalProcess(
        components=[
            ListSource(name="a", items=range(7)),
            ListSource(name="b", items="abcdefg", field="y"),
            writer,
        ],
        connectors=wire("a", "save", ["x"]) + wire("b", "save", ["y"]),
    )
    await run_in_memory(process)
    assert [len(c) for c in writer.chunks] == sizes
    assert writer.rows == list(zip(range(7), "abcdefg", strict=True))


class Trickle(Component):
    """Emits 0..count-1, waiting for the writer to have written each row before the next."""

    io = IO(outputs=["x"])

    def __init__(
        self, count: int, writer: ListWriter, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._count, self._writer, self._n = count, writer, 0

    async def step(self) -> None:
        if self._n == self._count:
            await self.io.close()
            return
        if self._n:
            while len(self._writer.rows) < self._n:  # a handshake, not a fixed pause
                await asyncio.sleep(0.01)
        self.x = self._n
        self._n += 1


async def test_a_slow_stream_is_written_within_the_flush_interval() -> None:
    writer = ListWriter(name="save", field_names=["x"], flush_interval=0.05)
    process = LocalProcess(
        components=[Trickle(name="src", count=3, writer=writer), writer],
        connectors=wire("src", "save", ["x"]),
    )
    # Without the interval the second row would never come: the first is written only at
    # the end.
    await asyncio.wait_for(run_in_memory(process), 10)
    assert writer.rows == [(0,), (1,), (2,)]
    assert [len(c) for c in writer.chunks] == [1, 1, 1]


async def test_rows_received_before_a_failure_are_written() -> None:
    writer = ListWriter(name="save", field_names=["y"], chunk_size=4, flush_interval=None)
    process = LocalProcess(
        components=[
            ListSource(name="src", items=range(100)),
            FailingComponent(name="bad", fail_on_step=7),
            writer,
        ],
        connectors=wire("src", "bad", ["x"]) + wire("bad", "save", ["y"], maxsize=1),
    )
    with pytest.raises(ComponentError):
        await run_in_memory(process)
    assert writer.rows == [(i,) for i in range(6)]
    assert writer.run_stats.steps == 6


class XEvent(Event):
    type: _t.ClassVar[str] = "x-value"
    data: dict[str, int]


class YEvent(Event):
    type: _t.ClassVar[str] = "y-value"
    data: dict[str, int]


class Staggered(Component):
    """Publishes x0, y0, x1, y1, ...: the two fields of a row arrive at different times."""

    io = IO(output_events=[XEvent, YEvent])

    def __init__(self, rows: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._events = [
            e
            for i in range(rows)
            for e in (XEvent(source="src", data={"v": i}), YEvent(source="src", data={"v": 10 + i}))
        ]

    async def step(self) -> None:
        if not self._events:
            await self.io.close()
            return
        self.io.queue_event(self._events.pop(0))
        await asyncio.sleep(0.001)


def _event_writer(populates: list[str] | None) -> type[ListWriter]:
    x_fields, y_fields = populates or ["x"], populates or ["y"]

    class EventWriter(ListWriter):
        io = IO(input_events=[XEvent, YEvent])

        @XEvent.handler(populates_fields=x_fields)
        async def on_x(self, event: XEvent) -> None:
            self.x = event.data["v"]

        @YEvent.handler(populates_fields=y_fields)
        async def on_y(self, event: YEvent) -> None:
            self.y = event.data["v"]

    return EventWriter


@pytest.mark.parametrize(
    "populates", [None, ["x", "y"]], ids=["each-its-own-field", "both-declare-both-fields"]
)
async def test_fields_arriving_at_different_times_give_whole_rows(
    populates: list[str] | None,
) -> None:
    writer = _event_writer(populates)(name="save", field_names=["x", "y"], flush_interval=None)
    process = LocalProcess(components=[Staggered(name="src", rows=3), writer], connectors=[])
    await asyncio.wait_for(run_in_memory(process), 10)
    assert writer.rows == [(0, 10), (1, 11), (2, 12)]


def test_bad_arguments_are_refused_naming_the_component() -> None:
    with pytest.raises(ValidationError, match="ListWriter 'w' needs `field_names`"):
        ListWriter(name="w", field_names=[])
    with pytest.raises(ValidationError, match="RangeReader 'r': chunk_size must be"):
        RangeReader(name="r", stop=1, field_names=["n"], chunk_size=0)
    with pytest.raises(ValidationError, match="flush_interval must be positive"):
        ListWriter(name="w", field_names=["x"], flush_interval=0)


def _readme_example(heading: str) -> str:
    """The first Python block after `heading` in the README."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(f"\n{heading}\n") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```\n", start)]


async def test_the_readmes_reader_and_writer_run(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, _t.Any] = {
        "__name__": "readme_example",
        "Any": _t.Any,
        "Unpack": _t.Unpack,
        "DataReader": DataReader,
        "DataReaderArgsDict": DataReaderArgsDict,
        "DataWriter": DataWriter,
        "NoMoreDataException": NoMoreDataException,
    }
    exec(_readme_example("### Writing your own reader or writer"), namespace)
    process = LocalProcess(
        components=[
            namespace["RangeReader"](name="read", stop=5, field_names=["n"], chunk_size=2),
            namespace["PrintWriter"](name="print", field_names=["n"], chunk_size=3),
        ],
        connectors=wire("read", "print", ["n"]),
    )
    await run_in_memory(process)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["[{'n': 0}, {'n': 1}, {'n': 2}]", "[{'n': 3}, {'n': 4}]"]
