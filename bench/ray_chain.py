"""Ray chain benchmark: source -> 5 pass-through -> sink on a RayProcess.

Times `process.run()` (the flow run included) on 100,000 items and reports items/s, the
latency of a lone message (a source that sends one message every 50 ms, batched as usual vs
`batch_size=1`), and the peak RSS of the whole process tree (Ray's processes included). With
`--peer PYTHON` it runs plugboard 0.9.0's chain on Ray in the same invocation.

    python bench/ray_chain.py
    python bench/ray_chain.py --peer /tmp/peer-venv/bin/python --peer-items 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import typing as _t

import ray


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import PeakRSS, run_peer

from prefect_plugboard import (
    IO,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    RayConnector,
    RayProcess,
)


class Source(Component):
    """Emits 0..iters-1, optionally one every `interval` seconds, stamped with the send time."""

    io = IO(outputs=["x"])

    def __init__(
        self, iters: int, interval: float = 0.0, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._iters = iters
        self._interval = interval
        self._i = 0

    async def step(self) -> None:
        if self._i == self._iters:
            await self.io.close()
            return
        if self._interval:
            await asyncio.sleep(self._interval)
        self.x = (self._i, time.time()) if self._interval else self._i
        self._i += 1


class Pass(Component):
    """Passes its input on."""

    io = IO(inputs=["x"], outputs=["y"])

    async def step(self) -> None:
        self.y = self.x


class Sink(Component):
    """Counts what arrives; for stamped messages, records their latency."""

    io = IO(inputs=["x"])
    exports = ["count", "latencies"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.count = 0
        self.latencies: list[float] = []

    async def step(self) -> None:
        self.count += 1
        if isinstance(self.x, tuple):
            self.latencies.append(time.time() - self.x[1])


def build(iters: int, n_pass: int, interval: float = 0.0, **settings: _t.Any) -> RayProcess:
    names = ["src", *[f"p{i}" for i in range(1, n_pass + 1)], "sink"]
    components: list[Component] = [Source(name="src", iters=iters, interval=interval)]
    components += [Pass(name=n) for n in names[1:-1]] + [Sink(name="sink")]
    connectors = [
        RayConnector(
            spec=ConnectorSpec(source=f"{a}.{'x' if a == 'src' else 'y'}", target=f"{b}.x"),
            **settings,
        )
        for a, b in zip(names[:-1], names[1:], strict=False)
    ]
    return RayProcess(components=components, connectors=connectors)


async def timed_run(process: RayProcess) -> float:
    async with process:
        started = time.perf_counter()
        await process.run()
        return time.perf_counter() - started


async def main(args: argparse.Namespace) -> dict[str, _t.Any]:
    await timed_run(build(1000, args.n_pass))  # warm-up: API, Ray workers
    await asyncio.sleep(args.idle)
    runs = []
    with PeakRSS() as rss:
        for _ in range(args.repeat):
            process = build(args.items, args.n_pass)
            seconds = await timed_run(process)
            assert process.components["sink"].count == args.items
            runs.append(args.items / seconds)
            await asyncio.sleep(args.idle)
    latency = {}
    for label, settings in (("batched", {}), ("unbatched", {"batch_size": 1})):
        process = build(40, args.n_pass, interval=0.05, **settings)
        await timed_run(process)
        values = process.components["sink"].latencies[5:]  # after start-up
        latency[label] = round(statistics.median(values) * 1000, 2)
        await asyncio.sleep(args.idle)
    return {
        "bench": "ray_chain",
        "items": args.items,
        "hops": args.n_pass + 1,
        "items_per_s": round(statistics.median(runs)),
        "runs_items_per_s": [round(r) for r in runs],
        "lone_message_latency_ms": latency,
        "peak_tree_rss_mib": round(rss.peak_mib),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--n-pass", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--peer", help="python of the peer's venv (plugboard 0.9.0)")
    parser.add_argument("--peer-items", type=int, default=1000)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    try:
        result = asyncio.run(main(args))
    finally:
        ray.shutdown()
    print(
        f"prefect-plugboard RayProcess chain: {result['items_per_s']:,} items/s (median) "
        f"({args.items:,} items, {result['hops']} hops; runs {result['runs_items_per_s']})"
    )
    lat = result["lone_message_latency_ms"]
    print(
        f"lone message, source to sink through {result['hops']} hops: "
        f"{lat['batched']} ms batched, {lat['unbatched']} ms with batch_size=1"
    )
    print(f"peak RSS of the process tree: {result['peak_tree_rss_mib']} MiB")
    if args.peer:
        peer = run_peer(
            args.peer, "bench_chain_overhead.py", "ray", str(args.peer_items), str(args.n_pass)
        )
        result["peer"] = peer
        ratio = result["items_per_s"] / peer["items_per_s"]
        result["ratio_vs_peer"] = round(ratio, 1)
        print(
            f"plugboard 0.9.0 RayProcess + RayConnector: {peer['items_per_s']:,.0f} items/s "
            f"({args.peer_items:,} items), peak RSS {peer['peak_tree_rss_mib']:,.0f} MiB "
            f"-> ratio {ratio:.0f}x"
        )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    cli()
