"""Runs a RayProcess on a cluster started elsewhere (`ray start`); prints one JSON line.

Usage: python by_address.py MODE  (MODE: "address" uses ray_address=$CLUSTER, "env" uses
RAY_ADDRESS, "auto" uses ray_address="auto").
The component class comes from a module beside this script, which the cluster's workers
cannot import by themselves; it reports what its fresh worker holds of Prefect.
"""

import asyncio
import json
import os
import sys
import typing as _t

import ray
from user_components import Doubler  # type: ignore[import-not-found]  # shipped by the test

from prefect_plugboard import ConnectorSpec, RayConnector, RayProcess
from prefect_plugboard.testing import Collector, ListSource


async def main(mode: str) -> dict[str, _t.Any]:
    address = {"address": os.environ.get("CLUSTER"), "env": None, "auto": "auto", "local": None}[
        mode
    ]
    sink = Collector(name="sink")
    process = RayProcess(
        components=[ListSource(name="src", items=[1, 2, 3]), Doubler(name="double"), sink],
        connectors=[
            RayConnector(spec=ConnectorSpec(source="src.x", target="double.x")),
            RayConnector(spec=ConnectorSpec(source="double.y", target="sink.x")),
        ],
        ray_address=address,
    )
    async with process:
        cluster_cpus = ray.cluster_resources().get("CPU")
        await process.run()
    doubler = process.components["double"]
    return {
        "received": sink.received,
        "cluster_cpus": cluster_cpus,
        "disconnected_after": not ray.is_initialized(),
        "worker_prefect_modules": doubler.prefect_modules,
        "worker_prefect_settings": doubler.prefect_settings,
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main(sys.argv[1]))))
