"""plugboard 0.9.0 side of `bench/ray_startup.py`: the same chains on its RayProcess.

Run with the peer's python (`/tmp/peer-venv/bin/python bench/peer/ray_startup.py 5 20`); prints
one `RESULT {json}` line: per chain length, seconds from `RayProcess(...)` to the sink's first
message, on a Ray started beforehand (not timed).
"""

import asyncio
import json
import logging
import sys
import time
import typing as _t

from plugboard.component import Component, IOController as IO
from plugboard.connector import RayConnector
from plugboard.process import RayProcess
from plugboard.schemas import ComponentArgsDict, ConnectorSpec, Resource


class Source(Component):
    io = IO(outputs=["x"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._left = iters

    async def step(self) -> None:
        if self._left == 0:
            await self.io.close()
            return
        self.x = self._left
        self._left -= 1


class Pass(Component):
    io = IO(inputs=["x"], outputs=["y"])

    async def step(self) -> None:
        self.y = self.x


class FirstArrival(Component):
    io = IO(inputs=["x"])
    exports = ["first_at"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.first_at = None

    async def step(self) -> None:
        if self.first_at is None:
            self.first_at = time.time()


async def chain(length: int) -> float:
    small = Resource(cpu=0.02)
    components = [Source(name="src", iters=3, resources=small)]
    components += [Pass(name=f"p{i}", resources=small) for i in range(length - 2)]
    components.append(FirstArrival(name="sink", resources=small))
    names = [c.name for c in components]
    connectors = [
        RayConnector(
            spec=ConnectorSpec(source=f"{a}.{'y' if a[0] == 'p' else 'x'}", target=f"{b}.x")
        )
        for a, b in zip(names, names[1:], strict=False)
    ]
    started = time.time()
    process = RayProcess(components=components, connectors=connectors)
    async with process:
        await process.run()
    return process.components["sink"].first_at - started


if __name__ == "__main__":
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    lengths = [int(a) for a in sys.argv[1:]] or [5, 20]
    results = {str(n): round(asyncio.run(chain(n)), 2) for n in lengths}
    ray.shutdown()
    print("RESULT " + json.dumps({"bench": "ray_startup", "seconds_to_first_message": results}))
