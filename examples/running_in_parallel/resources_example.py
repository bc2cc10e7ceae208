"""The seed tutorial's resources example: components ask Ray for what they need.

`CPUIntensiveTask` declares 2 CPUs on the class and is given 1 on its instance; `GPUTask`
declares half a CPU (`"500m"`) and a GPU; `DataProducer` keeps the default (a sliver of a CPU).
Run `python examples/running_in_parallel/resources_example.py`: like the tutorial's
`ray start --head --num-cpus=4 --num-gpus=1 --resources='{"custom_hardware": 5}'`, it starts
a local Ray with those resources (a GPU is declared, not needed: the task only doubles
numbers), or joins the cluster named by `RAY_ADDRESS`.
"""

import asyncio
import os
import typing as _t

import ray

from prefect_plugboard.component import Component, IOController as IO
from prefect_plugboard.connector import RayConnector
from prefect_plugboard.process import RayProcess
from prefect_plugboard.schemas import ComponentArgsDict, ConnectorSpec, Resource


class CPUIntensiveTask(Component):
    """Component that requires more CPU resources.

    Resource requirements are declared as a class attribute.
    """

    io = IO(inputs=["x"], outputs=["y"])
    resources = Resource(cpu=2.0)

    async def step(self) -> None:
        """Execute CPU-intensive computation."""
        # Simulate CPU-intensive work
        result = sum(i**2 for i in range(int(self.x * 10000)))
        self.y = result


class GPUTask(Component):
    """Component that requires GPU resources."""

    io = IO(inputs=["data"], outputs=["result"])
    resources = Resource(cpu="500m", gpu=1)

    async def step(self) -> None:
        # Simulate GPU computation
        self.result = self.data * 2


class DataProducer(Component):
    """Produces data for processing."""

    io = IO(outputs=["output"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._iters = iters

    async def init(self) -> None:
        self._seq = iter(range(self._iters))

    async def step(self) -> None:
        try:
            self.output = next(self._seq)
        except StopIteration:
            await self.io.close()


async def main() -> RayProcess:
    """Run the process with resource-constrained components."""
    # Resources can be declared at the class level (see CPUIntensiveTask and GPUTask above)
    # or overridden when instantiating components
    process = RayProcess(
        components=[
            CPUIntensiveTask(name="cpu-task", resources=Resource(cpu=1.0)),
            GPUTask(name="gpu-task"),
            DataProducer(name="producer", iters=5),
        ],
        connectors=[
            RayConnector(spec=ConnectorSpec(source="producer.output", target="cpu-task.x")),
            RayConnector(spec=ConnectorSpec(source="cpu-task.y", target="gpu-task.data")),
        ],
    )
    async with process:
        await process.run()
    print(f"Final result from GPU task: {process.components['gpu-task'].result}")
    return process


if __name__ == "__main__":
    if not os.environ.get("RAY_ADDRESS"):
        ray.init(
            address="local",
            num_cpus=4,
            num_gpus=1,
            resources={"custom_hardware": 5},
            include_dashboard=False,
        )
    asyncio.run(main())
    ray.shutdown()
