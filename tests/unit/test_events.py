"""Events: typed messages, handlers, broadcast by type, end by propagation, StopEvent."""

import asyncio
import csv
from pathlib import Path
import typing as _t

from hypothesis import given, settings, strategies as st
from pydantic import BaseModel
import pytest

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    FileWriter,
    LocalProcess,
    Status,
    ValidationError,
)
from prefect_plugboard.connector import ConnectorBuilder
from prefect_plugboard.events import Event, EventConnectorBuilder, EventHandlers, StopEvent
from prefect_plugboard.testing import Collector, ListSource, run_in_memory
from tests.helpers import Clock, Listener, Tick, TickEvent


async def test_every_listener_hears_every_tick_and_the_run_ends_by_itself() -> None:
    process = LocalProcess(
        components=[Clock(name="clock", ticks=3), Listener(name="a"), Listener(name="b")],
        connectors=[],
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    assert process.components["a"].heard == process.components["b"].heard == [0, 1, 2]
    assert {c.status for c in process.components.values()} == {Status.COMPLETED}


class Doubled(BaseModel):
    n: int


class DoubledEvent(Event):
    type: _t.ClassVar[str] = "doubled"
    data: Doubled


class Doubler(Component):
    """Answers each tick with an event: a handler's return value is published."""

    io = IO(input_events=[TickEvent], output_events=[DoubledEvent])

    @TickEvent.handler
    async def on_tick(self, event: TickEvent) -> DoubledEvent:
        return DoubledEvent(source=self.name, data=Doubled(n=event.data.n * 2))


class Recorder(Component):
    """Steps after each event: its output is written by a FileWriter."""

    io = IO(input_events=[DoubledEvent], outputs=["n"])

    @DoubledEvent.handler
    async def on_doubled(self, event: DoubledEvent) -> None:
        self.n = event.data.n

    async def step(self) -> None:
        """Sends `n` on."""


async def test_events_chain_and_feed_fields(tmp_path: Path) -> None:
    out = tmp_path / "doubled.csv"
    process = LocalProcess(
        components=[
            Clock(name="clock", ticks=4),
            Doubler(name="double"),
            Recorder(name="record"),
            FileWriter(name="save", path=out, field_names=["n"]),
        ],
        connectors=[AsyncioConnector(spec=ConnectorSpec(source="record.n", target="save.n"))],
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    with out.open() as f:
        assert [r[0] for r in list(csv.reader(f))[1:]] == ["0", "2", "4", "6"]


class WriterOfTicks(FileWriter):
    """A field component reused with events: the handler populates its input."""

    io = IO(input_events=[TickEvent])

    @TickEvent.handler(populates_fields=["n"])
    async def on_tick(self, event: TickEvent) -> None:
        self.n = event.data.n


async def test_a_handler_can_populate_input_fields(tmp_path: Path) -> None:
    out = tmp_path / "ticks.csv"
    process = LocalProcess(
        components=[
            Clock(name="clock", ticks=3),
            WriterOfTicks(name="save", path=out, field_names=["n"]),
        ],
        connectors=[],
    )
    # `n` has no connector: the handler provides it, so the input counts as connected.
    await asyncio.wait_for(run_in_memory(process), 5)
    with out.open() as f:
        assert list(csv.reader(f)) == [["n"], ["0"], ["1"], ["2"]]


class SquaresOfTicks(Component):
    """Registers its handler with plugboard's `EventHandlers.add`; steps on what it populates."""

    io = IO(inputs=["n"], input_events=[TickEvent])

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.squares: list[int] = []

    @EventHandlers.add(TickEvent, populates_fields=["n"])
    async def on_tick(self, event: TickEvent) -> None:
        self.n = event.data.n

    async def step(self) -> None:
        self.squares.append(self.n**2)


async def test_event_handlers_add_registers_a_handler_as_event_handler_does() -> None:
    assert EventHandlers.get(SquaresOfTicks, TickEvent) is SquaresOfTicks.on_tick
    assert SquaresOfTicks.io.event_field_coverage == {"tick": ["n"]}
    process = LocalProcess(
        components=[Clock(name="clock", ticks=3), SquaresOfTicks(name="squares")], connectors=[]
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    squares = process.components["squares"]
    assert isinstance(squares, SquaresOfTicks)
    assert squares.squares == [0, 1, 4]

    class ByInstance(Component):  # plugboard also takes an event object
        io = IO(input_events=[TickEvent])

        @EventHandlers.add(TickEvent(source="clock", data=Tick(n=0)))
        async def on_tick(self, event: TickEvent) -> None: ...

    assert EventHandlers.get(ByInstance, TickEvent) is ByInstance.on_tick
    assert ByInstance.io.event_field_coverage == {}


class PartlyPopulating(FileWriter):
    """Its handler declares both fields; tick 0 sets x, tick 1 sets x and y, tick 2 sets y."""

    io = IO(input_events=[TickEvent])

    @TickEvent.handler(populates_fields=["x", "y"])
    async def on_tick(self, event: TickEvent) -> None:
        n = event.data.n
        if n < 2:
            self.x = f"x{n}"
        if n > 0:
            self.y = f"y{n}"


async def test_an_event_completing_a_row_does_not_overwrite_a_value_not_yet_used(
    tmp_path: Path,
) -> None:
    out = tmp_path / "xy.csv"
    process = LocalProcess(
        components=[
            Clock(name="clock", ticks=3),
            PartlyPopulating(name="save", path=out, field_names=["x", "y"]),
        ],
        connectors=[],
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    # Tick 1 completes the first row with its y; its x is the second row's.
    with out.open() as f:
        assert list(csv.reader(f)) == [["x", "y"], ["x0", "y1"], ["x1", "y2"]]


async def test_by_hand_an_event_completing_a_row_is_handled_keeping_the_unused_value(
    tmp_path: Path,
) -> None:
    out = tmp_path / "xy.csv"
    writer = PartlyPopulating(name="save", path=out, field_names=["x", "y"])
    events = ConnectorBuilder(AsyncioConnector).build_event_connectors([writer])
    await writer.io.connect(events)
    await writer.init()
    (send,) = [await c.connect_send() for c in events]
    for n in range(3):
        await send.send(TickEvent(source="clock", data=Tick(n=n)))
        await writer.step()
    await writer.destroy()
    with out.open() as f:
        assert list(csv.reader(f)) == [["x", "y"], ["x0", "y1"], ["x1", "y2"]]


@pytest.mark.parametrize("steps", [1, 2, 3])
async def test_process_steps_then_a_run_lose_no_value_set_by_handlers(
    tmp_path: Path, steps: int
) -> None:
    out = tmp_path / "xy.csv"
    process = LocalProcess(
        components=[
            Clock(name="clock", ticks=3),
            PartlyPopulating(name="save", path=out, field_names=["x", "y"]),
        ],
        connectors=[],
    )
    await process.init()
    for _ in range(steps):
        await process.step()
    await asyncio.wait_for(run_in_memory(process), 5)
    with out.open() as f:
        assert list(csv.reader(f)) == [["x", "y"], ["x0", "y1"], ["x1", "y2"]]


class Pacer(Component):
    """Emits 0, 1, 2, ... forever; publishes a StopEvent after `stop_after` values."""

    io = IO(outputs=["x"])

    def __init__(self, stop_after: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._stop_after = stop_after
        self._n = 0

    async def step(self) -> None:
        self.x = self._n
        self._n += 1
        if self._n == self._stop_after:
            self.io.queue_event(StopEvent(source=self.name, data={}))
        await asyncio.sleep(0)


async def test_a_stop_event_stops_everything_keeping_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    process = LocalProcess(
        components=[
            Pacer(name="pace", stop_after=50),
            FileWriter(name="save", path=out, field_names=["x"]),
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="pace.x", target="save.x"), maxsize=1)
        ],
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    assert process.status is Status.STOPPED
    assert process.stop_reason == "stopped by a StopEvent from component 'pace'"
    assert {c.status for c in process.components.values()} == {Status.STOPPED}
    with out.open() as f:
        rows = [int(r[0]) for r in list(csv.reader(f))[1:]]
    assert rows == list(range(len(rows))) and 45 <= len(rows) <= 50
    assert len(rows) == process.components["save"].run_stats.steps


async def test_process_stop_stops_a_running_model() -> None:
    process = LocalProcess(
        components=[Pacer(name="pace", stop_after=-1), Collector(name="sink")],
        connectors=[AsyncioConnector(spec=ConnectorSpec(source="pace.x", target="sink.x"))],
    )
    running = asyncio.ensure_future(run_in_memory(process))
    while not process.components["sink"].received:
        await asyncio.sleep(0.01)
    await process.stop()
    await asyncio.wait_for(running, 5)
    assert process.status is Status.STOPPED
    assert process.stop_reason == "stopped by process.stop()"


async def test_an_event_nobody_publishes_is_refused_before_the_start() -> None:
    process = LocalProcess(components=[Listener(name="lonely")], connectors=[])
    with pytest.raises(
        ValidationError,
        match=r"'lonely' \(Listener\) handles TickEvent \('tick'\), but no component publishes it",
    ):
        await process.init()


def test_publishing_an_undeclared_event_is_an_error() -> None:
    clock = Clock(name="c", ticks=1)
    with pytest.raises(ValueError, match="cannot publish DoubledEvent"):
        clock.io.queue_event(DoubledEvent(source="c", data=Doubled(n=1)))


def test_a_handler_for_an_undeclared_event_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="handles events \\['tick'\\] that its io does not declare"):

        class Deaf(Component):
            io = IO(outputs=["x"])

            @TickEvent.handler
            async def on_tick(self, event: TickEvent) -> None: ...


def test_plugboards_event_connector_builder_describes_the_wiring() -> None:
    connectors = EventConnectorBuilder(AsyncioConnector.builder()).build(
        [Clock(name="c", ticks=1), Listener(name="l")]
    )
    assert [str(c.spec) for c in connectors.values()] == ["tick.publishers -> tick.subscribers"]


@settings(max_examples=40, deadline=None)
@given(
    publishers=st.lists(st.integers(0, 20), min_size=1, max_size=4),
    subscribers=st.integers(1, 4),
)
def test_every_event_reaches_every_subscriber_once_in_order_per_publisher(
    publishers: list[int], subscribers: int
) -> None:
    class Numbered(BaseModel):
        source: int
        n: int

    class NumberedEvent(Event):
        type: _t.ClassVar[str] = "numbered"
        data: Numbered

    class Publisher(Component):
        io = IO(output_events=[NumberedEvent])

        def __init__(self, index: int, count: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
            super().__init__(**kwargs)
            self._index, self._count, self._n = index, count, 0

        async def step(self) -> None:
            if self._n == self._count:
                await self.io.close()
                return
            self.io.queue_event(
                NumberedEvent(source=self.name, data=Numbered(source=self._index, n=self._n))
            )
            self._n += 1

    class Subscriber(Component):
        io = IO(input_events=[NumberedEvent])

        def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
            super().__init__(**kwargs)
            self.got: list[tuple[int, int]] = []

        @NumberedEvent.handler
        async def on(self, event: NumberedEvent) -> None:
            self.got.append((event.data.source, event.data.n))

    subs = [Subscriber(name=f"s{i}") for i in range(subscribers)]
    process = LocalProcess(
        components=[
            *(Publisher(name=f"p{i}", index=i, count=c) for i, c in enumerate(publishers)),
            *subs,
        ],
        connectors=[],
    )
    asyncio.run(asyncio.wait_for(run_in_memory(process), 10))
    for sub in subs:
        assert len(sub.got) == sum(publishers)
        for index, count in enumerate(publishers):
            assert [n for s, n in sub.got if s == index] == list(range(count))


class Mixed(Component):
    """Steps on a field, and counts ticks that arrive meanwhile."""

    io = IO(inputs=["x"], input_events=[TickEvent], outputs=["y"])

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.ticks = 0

    @TickEvent.handler
    async def on_tick(self, event: TickEvent) -> None:
        self.ticks += 1

    async def step(self) -> None:
        self.y = (self.x, self.ticks)


async def test_a_component_with_fields_and_events_takes_both() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=range(5)),
            Clock(name="clock", ticks=3),
            Mixed(name="mixed"),
            sink,
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="src.x", target="mixed.x")),
            AsyncioConnector(spec=ConnectorSpec(source="mixed.y", target="sink.x")),
        ],
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    assert [x for x, _ in sink.received] == [0, 1, 2, 3, 4]
    assert process.components["mixed"].ticks == 3


class Labelled(Component):
    """Steps on a field value together with the label the latest event populated."""

    io = IO(inputs=["x", "label"], input_events=[TickEvent], outputs=["y"])

    @TickEvent.handler(populates_fields=["label"])
    async def on_tick(self, event: TickEvent) -> None:
        self.label = f"tick-{event.data.n}"

    async def step(self) -> None:
        self.y = (self.x, self.label)


async def test_a_step_waits_for_a_field_that_only_an_event_provides() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[10, 20]),
            Clock(name="clock", ticks=2),
            Labelled(name="l"),
            sink,
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="src.x", target="l.x")),
            AsyncioConnector(spec=ConnectorSpec(source="l.y", target="sink.x")),
        ],
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    assert [x for x, _ in sink.received] == [10, 20]
    assert all(label.startswith("tick-") for _, label in sink.received)
