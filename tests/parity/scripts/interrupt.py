"""A model that runs until interrupted: Ctrl-C (SIGINT) is sent to this script by a test.

Prints `RUNNING` once the sink has a value, `DESTROYING <name>` as each component's
`destroy()` starts, and at the end one JSON line: the process's and components' statuses.
`python interrupt.py slow` makes `destroy()` take a minute, so that a second Ctrl-C is
needed to stop at once. `python interrupt.py ray` runs the model on a `RayProcess` (joining
`RAY_ADDRESS`); the components print on their workers there, so the script says `RUNNING`
itself once the driver hears that the sink has stepped.
"""

import asyncio
import json
import sys
import typing as _t

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    LocalProcess,
    RayConnector,
    RayProcess,
)


SLOW = "slow" in sys.argv[1:]
ON_RAY = "ray" in sys.argv[1:]


class Forever(Component):
    """Emits 0, 1, 2, ... every 10 ms, never closing."""

    io = IO(outputs=["x"])
    exports = ["destroyed"]  # comes back from a Ray worker

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.destroyed = False
        self._n = 0

    async def step(self) -> None:
        self.x = self._n
        self._n += 1
        await asyncio.sleep(0.01)

    async def destroy(self) -> None:
        print(f"DESTROYING {self.name}", flush=True)
        if SLOW:
            await asyncio.sleep(60)
        self.destroyed = True


class Sink(Forever):
    """Takes what arrives; says RUNNING once it has a value."""

    io = IO(inputs=["y"])

    async def step(self) -> None:
        if self._n == 0:
            print("RUNNING", flush=True)
        self._n += 1


async def main() -> None:
    spec = ConnectorSpec(source="source.x", target="sink.y")
    components = [Forever(name="source"), Sink(name="sink")]
    process: LocalProcess | RayProcess
    if ON_RAY:
        process = RayProcess(components=components, connectors=[RayConnector(spec=spec)])
    else:
        process = LocalProcess(components=components, connectors=[AsyncioConnector(spec=spec)])
    async with process:
        running = asyncio.ensure_future(process.run())
        if ON_RAY:
            sink = process.components["sink"]
            while sink.run_stats.steps == 0 and not running.done():
                await asyncio.sleep(0.05)
            print("RUNNING", flush=True)
        await running
    print(
        json.dumps(
            {
                "status": str(process.status),
                "stop_reason": process.stop_reason,
                "flow_run_id": str(process.flow_run_id),
                "components": {n: str(c.status) for n, c in process.components.items()},
                "destroyed": {n: c.destroyed for n, c in process.components.items()},
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
