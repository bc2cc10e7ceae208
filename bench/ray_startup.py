"""Ray start-up benchmark: how soon a chain of N components moves its first message.

A chain `src -> p1 -> ... -> sink` of N components, each asking for `cpu=0.02` (so that 50 fit
on 2 CPUs), on a Ray that is already running and a Prefect API that is up and idle. Timed from
`RayProcess(...)` (so `run()` includes `init()`: placement, workers, wiring, every `init()`)
to the sink's first message; each length runs `--repeat` times in the same driver, so the
first run shows a driver's first model and the others consecutive runs (warm workers).

    python bench/ray_startup.py
    python bench/ray_startup.py --peer /tmp/peer-venv/bin/python   # plugboard 0.9.0 beside
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path
import statistics
import sys
import time
import typing as _t


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import run_peer  # noqa: E402

from prefect_plugboard import (  # noqa: E402
    IO,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    RayConnector,
    RayProcess,
    Resource,
)
from prefect_plugboard.testing import ListSource, PassThrough  # noqa: E402


class FirstArrival(Component):
    """Notes when its first message arrived (the worker's clock: the same machine)."""

    io = IO(inputs=["x"])
    exports = ["first_at"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.first_at: float | None = None

    async def step(self) -> None:
        if self.first_at is None:
            self.first_at = time.time()


async def chain(length: int) -> dict[str, float]:
    small = Resource(cpu=0.02)
    components: list[Component] = [ListSource(name="src", items=[1, 2, 3], resources=small)]
    components += [PassThrough(name=f"p{i}", resources=small) for i in range(length - 2)]
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
    await process.init()
    initialised = time.time()
    workers = len(process.hosts)
    try:
        await process.run()
    finally:
        await process.destroy()
    first_at = _t.cast(float, process.components["sink"].first_at)
    return {
        "first_message_s": round(first_at - started, 3),
        "init_s": round(initialised - started, 3),
        "workers": workers,
    }


async def measure(lengths: list[int], repeat: int) -> dict[str, _t.Any]:
    from prefect import flow
    import ray

    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)

    @flow
    async def warm_up() -> None:
        """A first flow run: the Prefect API up, its client warm."""

    await warm_up()
    await asyncio.sleep(3)  # the API idle again (design §4: back-to-back runs wait on SQLite)
    results: dict[str, _t.Any] = {}
    for length in lengths:
        runs = []
        for _ in range(repeat):
            runs.append(await chain(length))
            # The API's SQLite database is busy for a second or two after a run that ended
            # (design §4): a user's next run comes later than that.
            await asyncio.sleep(3)
        firsts = [r["first_message_s"] for r in runs]
        results[str(length)] = {
            "first_run_s": firsts[0],
            "later_runs_median_s": round(statistics.median(firsts[1:]), 3) if repeat > 1 else None,
            "all_s": firsts,
            "init_s": [r["init_s"] for r in runs],
            "workers": runs[0]["workers"],
        }
    ray.shutdown()
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer", help="python of the peer's venv (plugboard 0.9.0)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ours = asyncio.run(measure(args.lengths, args.repeat))
    result: dict[str, _t.Any] = {"bench": "ray_startup", "ours": ours}
    peer: dict[str, float] = {}
    if args.peer:
        peer = run_peer(args.peer, HERE / "peer" / "ray_startup.py", *map(str, args.lengths))[
            "seconds_to_first_message"
        ]
        result["peer"] = peer
    for length in args.lengths:
        mine = ours[str(length)]
        line = (
            f"N={length:>3}: prefect-plugboard {mine['first_run_s']:6.2f} s first run, "
            f"{mine['later_runs_median_s']} s later runs ({mine['workers']} worker processes; "
            f"init {mine['init_s']})"
        )
        if str(length) in peer:
            line += f"; plugboard 0.9.0 {peer[str(length)]:.2f} s"
        print(line)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    cli()
