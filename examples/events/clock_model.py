"""Events: a clock ticks, a controller decides, an actuator acts and logs.

The clock publishes `TickEvent`s; the controller handles each tick and answers with an
`ActionEvent` (a handler that returns an event publishes it); the actuator handles actions
and writes each command to `actions.csv`. No connector is written for the events: every
process wires them by type. The model ends by itself once the clock stops: each listener
ends as soon as everything it listens to has ended.

Run `python examples/events/clock_model.py [local|ray] [TICKS]`, or the same model in YAML:
`prefect-plugboard run examples/events/clock-model.yaml`.
"""

import asyncio
import sys
import typing as _t

from pydantic import BaseModel

from prefect_plugboard.component import IO, Component
from prefect_plugboard.connector import ConnectorSpec
from prefect_plugboard.events import Event
from prefect_plugboard.library import FileWriter
from prefect_plugboard.process import LocalProcess, Process, RayProcess
from prefect_plugboard.schemas import ComponentArgsDict


class Tick(BaseModel):
    """One tick of the clock."""

    n: int


class TickEvent(Event):
    """The clock ticked."""

    type: _t.ClassVar[str] = "tick"
    data: Tick


class Action(BaseModel):
    """A command for the actuator."""

    n: int
    command: _t.Literal["open", "close"]


class ActionEvent(Event):
    """The controller decided an action."""

    type: _t.ClassVar[str] = "action"
    data: Action


class Clock(Component):
    """Publishes `ticks` tick events, then stops."""

    io = IO(output_events=[TickEvent])

    def __init__(self, ticks: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._ticks = ticks
        self._n = 0

    async def step(self) -> None:
        if self._n == self._ticks:
            await self.io.close()
            return
        self.io.queue_event(TickEvent(source=self.name, data=Tick(n=self._n)))
        self._n += 1


class Controller(Component):
    """Opens on even ticks, closes on odd ones."""

    io = IO(input_events=[TickEvent], output_events=[ActionEvent])

    @TickEvent.handler
    async def on_tick(self, event: TickEvent) -> ActionEvent:
        command: _t.Literal["open", "close"] = "open" if event.data.n % 2 == 0 else "close"
        return ActionEvent(source=self.name, data=Action(n=event.data.n, command=command))


class Actuator(Component):
    """Acts on each action, and sends the command on to be logged."""

    io = IO(input_events=[ActionEvent], outputs=["command"])
    exports = ["acted"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.acted: list[int] = []

    @ActionEvent.handler
    async def on_action(self, event: ActionEvent) -> None:
        self.acted.append(event.data.n)
        self.command = event.data.command

    async def step(self) -> None:
        """Runs after each action: `command` is sent to the log."""


def build(kind: str, ticks: int) -> Process:
    """The model on a `LocalProcess` or a `RayProcess`."""
    process_cls = RayProcess if kind == "ray" else LocalProcess
    return process_cls(
        components=[
            Clock(name="clock", ticks=ticks),
            Controller(name="controller"),
            Actuator(name="actuator"),
            FileWriter(name="log", path="actions.csv", field_names=["command"]),
        ],
        connectors=[ConnectorSpec(source="actuator.command", target="log.command")],
    )


async def main(kind: str = "local", ticks: int = 6) -> Process:
    """Runs the model and prints what the actuator did."""
    process = build(kind, ticks)
    async with process:
        await process.run()
    print(f"The actuator acted on ticks {process.components['actuator'].acted}")
    return process


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "local"
    ticks = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    asyncio.run(main(kind, ticks))
