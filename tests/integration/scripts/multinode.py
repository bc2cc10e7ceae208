"""Runs a RayProcess across a two-node `ray.cluster_utils.Cluster`; prints one JSON line.

The head node has the `head` resource, the second node the `special` one: the source and the
sink ask for `head`, the relay for `special`, so every message crosses nodes twice.
"""

import asyncio
import json
import typing as _t

import ray
from ray.cluster_utils import Cluster

from prefect_plugboard import (
    IO,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    RayConnector,
    RayProcess,
    Resource,
)
from prefect_plugboard.process.ray.coordinator_server import driver_coordinator
from prefect_plugboard.testing import Collector, ListSource


class NodeRelay(Component):
    """Passes x to y and reports the node it ran on."""

    io = IO(inputs=["x"], outputs=["y"])
    exports = ["node"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.node = ""

    async def init(self) -> None:
        self.node = ray.get_runtime_context().get_node_id()

    async def step(self) -> None:
        self.y = self.x


async def main() -> dict[str, _t.Any]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"head": 10}, "include_dashboard": False},
    )
    special = cluster.add_node(num_cpus=1, resources={"special": 1})
    cluster.wait_for_nodes()
    try:
        items = list(range(3000))
        sink = Collector(name="sink", resources=Resource(resources={"head": 1}))
        process = RayProcess(
            components=[
                ListSource(name="src", items=items, resources={"resources": {"head": 1}}),
                NodeRelay(name="relay", resources={"resources": {"special": 1}}),
                sink,
            ],
            connectors=[
                RayConnector(spec=ConnectorSpec(source="src.x", target="relay.x"), maxsize=16),
                RayConnector(spec=ConnectorSpec(source="relay.y", target="sink.x"), maxsize=16),
            ],
            ray_address=cluster.address,
        )
        async with process:
            rooms = driver_coordinator().rooms
            (run_id,) = rooms.runs()
            addresses = await rooms.addresses(run_id, ["relay", "sink"])
            assert addresses is not None
            await process.run()
        owned_disconnected = not ray.is_initialized()
        return {
            "relay_node": process.components["relay"].node,
            "special_node": special.node_id,
            "in_order": sink.received == items,
            "received": len(sink.received),
            "disconnected_after": owned_disconnected,
            "stream_hosts": sorted({a.host for a in addresses.values()}),
            "node_address": ray.util.get_node_ip_address(),
        }
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main())))
