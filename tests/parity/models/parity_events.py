"""plugboard's event-driven model, and a FileWriter fed only by events."""

import asyncio
import typing as _t

from parity_api import IO, Component, ComponentArgsDict, Event, FileWriter
from pydantic import BaseModel


class Value(BaseModel):
    value: float


class HighEvent(Event):
    type: _t.ClassVar[str] = "high_event"
    data: Value


class LowEvent(Event):
    type: _t.ClassVar[str] = "low_event"
    data: Value


class FindHighLowValues(Component):
    """Publishes a `HighEvent` for a value above `high`, a `LowEvent` below `low`."""

    io = IO(inputs=["value"], output_events=[HighEvent, LowEvent])

    def __init__(
        self, low: float = 2, high: float = 8, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._low, self._high = low, high

    async def step(self) -> None:
        if self.value >= self._high:
            self.io.queue_event(HighEvent(source=self.name, data=Value(value=self.value)))
        if self.value <= self._low:
            self.io.queue_event(LowEvent(source=self.name, data=Value(value=self.value)))


class CollectValue(Component):
    """Keeps the latest value its subclass's handler saw; sends it on at each step."""

    io = IO(outputs=["value"])
    exports = ["seen"]  # merged into the subclasses' own exports

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.latest = 0.0
        self.seen: list[float] = []

    async def step(self) -> None:
        self.value = self.latest


class CollectHigh(CollectValue):
    """Keeps the latest high value."""

    io = IO(input_events=[HighEvent])
    exports = ["latest"]

    @HighEvent.handler
    async def on_high(self, event: HighEvent) -> None:
        self.latest = event.data.value
        self.seen.append(event.data.value)


class CollectLow(CollectValue):
    """Keeps the latest low value."""

    io = IO(input_events=[LowEvent])
    exports = ["latest"]

    @LowEvent.handler
    async def on_low(self, event: LowEvent) -> None:
        self.latest = event.data.value
        self.seen.append(event.data.value)


class Label(BaseModel):
    text: str


class XEvent(Event):
    type: _t.ClassVar[str] = "x_event"
    data: Label


class YEvent(Event):
    type: _t.ClassVar[str] = "y_event"
    data: Label


class Labels(Component):
    """Publishes `count` events `<field>0`, `<field>1`, ..., waiting `delay` s before each."""

    io = IO(output_events=[XEvent, YEvent])

    def __init__(
        self, field: str, count: int, delay: float, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._field, self._count, self._delay = field, count, delay
        self._sent = 0

    async def step(self) -> None:
        if self._sent == self._count:
            await self.io.close()
            return
        await asyncio.sleep(self._delay)
        event = XEvent if self._field == "x" else YEvent
        self.io.queue_event(event(source=self.name, data=Label(text=f"{self._field}{self._sent}")))
        self._sent += 1


class EventWriter(FileWriter):
    """A FileWriter fed by two events, each populating one of its fields."""

    io = IO(input_events=[XEvent, YEvent])

    @XEvent.handler(populates_fields=["x"])
    async def on_x(self, event: XEvent) -> None:
        self.x = event.data.text

    @YEvent.handler(populates_fields=["y"])
    async def on_y(self, event: YEvent) -> None:
        self.y = event.data.text


class OverDeclaredWriter(FileWriter):
    """A FileWriter whose x handler declares both fields but sets only x.

    A declaration says what a handler may set; only what it sets counts, and no value it sets
    may be lost while the other field has not come yet.
    """

    io = IO(input_events=[XEvent, YEvent])

    @XEvent.handler(populates_fields=["x", "y"])
    async def on_x(self, event: XEvent) -> None:
        self.x = event.data.text

    @YEvent.handler(populates_fields=["y"])
    async def on_y(self, event: YEvent) -> None:
        self.y = event.data.text
