"""The seed tutorial "Running in parallel", on prefect-plugboard.

The components and processes below are the tutorial's code; only the imports changed. Run it
from any directory (the CSV is written to the working directory):

    python examples/running_in_parallel/hello_ray.py            # LocalProcess, ~30 s
"""

import asyncio
import datetime
import sys
import time
import typing as _t

from prefect_plugboard.component import Component, IOController as IO
from prefect_plugboard.connector import AsyncioConnector, RayConnector
from prefect_plugboard.library import FileWriter
from prefect_plugboard.process import LocalProcess, RayProcess
from prefect_plugboard.schemas import ComponentArgsDict, ConnectorSpec


class Iterator(Component):
    """Creates a sequence of numbers."""

    io = IO(outputs=["x"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._iters = iters

    async def init(self) -> None:
        self._seq = iter(range(self._iters))

    async def step(self) -> None:
        try:
            self.out_1 = next(self._seq)
        except StopIteration:
            await self.io.close()


class Sleep(Component):
    """Passes through input to output after a delay."""

    io = IO(inputs=["x"], outputs=["y"])

    def __init__(self, sleep_seconds: float, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._duration = sleep_seconds

    async def step(self) -> None:
        time.sleep(self._duration)  # (1)!
        self.y = self.x


class Timestamper(Component):
    """Emits the current time when all inputs are ready."""

    io = IO(inputs=["x", "y"], outputs=["timestamp"])

    async def step(self) -> None:
        self.timestamp = datetime.datetime.now().isoformat()


async def local_main(iters: int = 20) -> LocalProcess:
    """The tutorial's model on a `LocalProcess`: the two sleeps take turns (~1.5 s a step)."""
    process = LocalProcess(
        components=[
            Iterator(name="input", iters=iters),
            Sleep(name="slow-sleep", sleep_seconds=0.5),
            Sleep(name="very-slow-sleep", sleep_seconds=1),
            Timestamper(name="timestamper"),
            FileWriter(name="save-results", path="ray.csv", field_names=["timestamp"]),
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="input.x", target="slow-sleep.x")),
            AsyncioConnector(spec=ConnectorSpec(source="input.x", target="very-slow-sleep.x")),
            AsyncioConnector(spec=ConnectorSpec(source="slow-sleep.y", target="timestamper.x")),
            AsyncioConnector(
                spec=ConnectorSpec(source="very-slow-sleep.y", target="timestamper.y")
            ),
            AsyncioConnector(
                spec=ConnectorSpec(source="timestamper.timestamp", target="save-results.timestamp")
            ),
        ],
    )
    async with process:
        await process.run()
    return process


async def ray_main(iters: int = 20) -> RayProcess:
    """The same model on a `RayProcess`: the two sleeps overlap (~1 s a step)."""
    process = RayProcess(
        components=[
            Iterator(name="input", iters=iters),
            Sleep(name="slow-sleep", sleep_seconds=0.5),
            Sleep(name="very-slow-sleep", sleep_seconds=1),
            Timestamper(name="timestamper"),
            FileWriter(name="save-results", path="ray.csv", field_names=["timestamp"]),
        ],
        connectors=[
            RayConnector(spec=ConnectorSpec(source="input.x", target="slow-sleep.x")),
            RayConnector(spec=ConnectorSpec(source="input.x", target="very-slow-sleep.x")),
            RayConnector(spec=ConnectorSpec(source="slow-sleep.y", target="timestamper.x")),
            RayConnector(spec=ConnectorSpec(source="very-slow-sleep.y", target="timestamper.y")),
            RayConnector(
                spec=ConnectorSpec(source="timestamper.timestamp", target="save-results.timestamp")
            ),
        ],
    )
    async with process:
        await process.run()
    return process


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].isdigit() else "ray"
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    iterations = int(numbers[0]) if numbers else 20
    started = time.time()
    asyncio.run(ray_main(iterations) if mode == "ray" else local_main(iterations))
    print(f"{mode.capitalize()} process took {time.time() - started:.2f} seconds.")
