"""Chain benchmark: source -> 5 pass-through -> sink, timed around `process.run()`.

The same topology as the peer's `bench_chain_overhead.py`. Prints items/s for prefect-plugboard
(the Prefect flow run included) and, with `--peer PYTHON`, runs plugboard 0.9.0's script in
the same invocation and prints the ratio. Also reports the start-up latency: from `run()` to
the source's first step, split into the Prefect API's share and this project's share.

    python bench/chain.py                       # 200,000 items on LocalProcess
    python bench/chain.py --peer /tmp/peer-venv/bin/python --peer-items 5000
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


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import PeakRSS, run_peer

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    LocalProcess,
)
from prefect_plugboard.process import local_process
from prefect_plugboard.process.supervision import Supervisor
from prefect_plugboard.process.tasks import prepare_tag_concurrency


class Source(Component):
    """Emits 0..iters-1, noting when it first steps."""

    io = IO(outputs=["x"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._iters = iters
        self.first_step_at = 0.0
        self.init_at = 0.0

    async def init(self) -> None:
        self.init_at = time.perf_counter()
        self._seq = iter(range(self._iters))

    async def step(self) -> None:
        if not self.first_step_at:
            self.first_step_at = time.perf_counter()
        try:
            self.x = next(self._seq)
        except StopIteration:
            await self.io.close()


class Pass(Component):
    """Passes its input on."""

    io = IO(inputs=["x"], outputs=["y"])

    async def step(self) -> None:
        self.y = self.x


class Sink(Component):
    """Counts what arrives and keeps the last value."""

    io = IO(inputs=["x"])
    exports = ["count", "last"]

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.count = 0
        self.last: _t.Any = None

    async def step(self) -> None:
        self.count += 1
        self.last = self.x


class TimedLocalProcess(LocalProcess):
    """Notes when the flow body starts (the end of Prefect's flow-run creation)."""

    flow_body_at = 0.0

    async def _run_components(self) -> None:
        self.flow_body_at = time.perf_counter()
        await super()._run_components()


MARKS: dict[str, float] = {}


def _timed(name: str, fn: _t.Any) -> _t.Any:
    async def wrapper(*args: _t.Any, **kwargs: _t.Any) -> _t.Any:
        MARKS[f"{name}_start"] = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            MARKS.setdefault(f"{name}_end", time.perf_counter())

    return wrapper


# Timestamps around the one Prefect API read the process makes before starting its task runs
# (tag concurrency limits) and at the point every task run has been handed to Prefect.
local_process.prepare_tag_concurrency = _timed("tags", prepare_tag_concurrency)  # type: ignore[attr-defined]
Supervisor.wait = _timed("wait", Supervisor.wait)  # type: ignore[method-assign]


def build(iters: int, n_pass: int) -> tuple[TimedLocalProcess, Source, Sink]:
    source = Source(name="src", iters=iters)
    passes = [Pass(name=f"p{i}") for i in range(1, n_pass + 1)]
    sink = Sink(name="sink")
    names = ["src", *[p.name for p in passes], "sink"]
    connectors = [
        AsyncioConnector(
            spec=ConnectorSpec(source=f"{a}.{'x' if a == 'src' else 'y'}", target=f"{b}.x")
        )
        for a, b in zip(names[:-1], names[1:], strict=False)
    ]
    process = TimedLocalProcess(components=[source, *passes, sink], connectors=connectors)
    return process, source, sink


async def measure(iters: int, n_pass: int) -> dict[str, _t.Any]:
    process, source, sink = build(iters, n_pass)
    await process.init()
    MARKS.clear()
    called = time.perf_counter()
    await process.run()
    ended = time.perf_counter()
    await process.destroy()
    assert sink.count == iters, (sink.count, iters)
    run_s = ended - called
    startup = source.first_step_at - called
    # This project's own code on the way: from the flow body to the API read, from the read
    # to handing the task runs to Prefect, and from the source's init() to its first step.
    own = (
        (MARKS["tags_start"] - process.flow_body_at)
        + (MARKS["wait_start"] - MARKS["tags_end"])
        + (source.first_step_at - source.init_at)
    )
    return {
        "iters": iters,
        "run_s": round(run_s, 4),
        "items_per_s": round(iters / run_s),
        "startup_s": round(startup, 4),
        "startup_prefect_s": round(startup - own, 4),
        "startup_own_s": round(own, 4),
        "startup_flow_run_s": round(process.flow_body_at - called, 4),
    }


async def raw_asyncio(iters: int, n_pass: int) -> float:
    """The same chain with bare asyncio queues and no framework, for reference."""
    queues: list[asyncio.Queue[_t.Any]] = [asyncio.Queue(1024) for _ in range(n_pass + 1)]
    end = object()

    async def src() -> None:
        for i in range(iters):
            await queues[0].put(i)
        await queues[0].put(end)

    async def relay(i: int) -> None:
        while (v := await queues[i].get()) is not end:
            await queues[i + 1].put(v)
        await queues[i + 1].put(end)

    async def sink() -> None:
        while await queues[-1].get() is not end:
            pass

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(src())
        for i in range(n_pass):
            tg.create_task(relay(i))
        tg.create_task(sink())
    return iters / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> dict[str, _t.Any]:
    await measure(1000, args.n_pass)  # warm-up: starts the ephemeral API if needed
    await asyncio.sleep(args.idle)  # let the API's background work settle (design §4)
    startup = await measure(10, args.n_pass)
    await asyncio.sleep(args.idle)
    runs = []
    with PeakRSS() as rss:
        for _ in range(args.repeat):
            runs.append(await measure(args.items, args.n_pass))
            await asyncio.sleep(args.idle)
    return {
        "bench": "chain",
        "n_pass": args.n_pass,
        "items": args.items,
        "items_per_s": statistics.median(r["items_per_s"] for r in runs),
        "runs_items_per_s": [r["items_per_s"] for r in runs],
        "raw_asyncio_items_per_s": round(await raw_asyncio(args.items, args.n_pass)),
        "startup": startup,
        "peak_tree_rss_mib": round(rss.peak_mib, 1),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--n-pass", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="pause between runs (s)")
    parser.add_argument("--peer", help="python of the peer's venv (plugboard 0.9.0)")
    parser.add_argument("--peer-items", type=int, default=5000)
    args = parser.parse_args()
    result = asyncio.run(main(args))
    print(
        f"prefect-plugboard LocalProcess: {result['items_per_s']:,.0f} items/s (median) "
        f"({args.items:,} items, {args.n_pass + 1} hops; runs {result['runs_items_per_s']})"
    )
    print(f"bare asyncio queues, same chain: {result['raw_asyncio_items_per_s']:,} items/s")
    s = result["startup"]
    print(
        f"run() -> first source step: {s['startup_s'] * 1000:.0f} ms (Prefect API and engines "
        f"{s['startup_prefect_s'] * 1000:.0f} ms, of which creating the flow run "
        f"{s['startup_flow_run_s'] * 1000:.0f} ms; prefect-plugboard's own code "
        f"{s['startup_own_s'] * 1000:.1f} ms)"
    )
    if args.peer:
        peer = run_peer(
            args.peer, "bench_chain_overhead.py", "local", str(args.peer_items), str(args.n_pass)
        )
        result["peer"] = peer
        ratio = result["items_per_s"] / peer["items_per_s"]
        result["ratio_vs_peer"] = round(ratio, 1)
        print(
            f"plugboard 0.9.0 LocalProcess: {peer['items_per_s']:,.0f} items/s "
            f"({args.peer_items:,} items) -> ratio {ratio:.0f}x"
        )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    cli()
