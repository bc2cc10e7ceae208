"""Seed tutorial benchmark: the "Running in parallel" model on a RayProcess, 20 iterations.

Times from `RayProcess(...)` to the end of `async with` (Ray started and stopped by the
process, as for a user with nothing running), in a fresh interpreter per measurement:
`warm` has the Prefect API up and idle first, `cold` starts it as part of the run. With
`--peer PYTHON` it runs plugboard 0.9.0's tutorial benchmark in the same invocation.

    python bench/seed_ray.py
    python bench/seed_ray.py --peer /tmp/peer-venv/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
import typing as _t


HERE = Path(__file__).resolve().parent
SEED = HERE.parent / "examples" / "running_in_parallel"


async def measure(mode: str, iters: int) -> dict[str, _t.Any]:
    sys.path.insert(0, str(SEED))
    sys.path.insert(0, str(HERE))
    from common import PeakRSS
    import hello_ray  # the seed's components

    from prefect_plugboard import ConnectorSpec, FileWriter, RayConnector, RayProcess

    if mode == "warm":
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            await client.hello()
        await asyncio.sleep(3)  # the API up and idle
    ray_seconds = _time_ray_calls("init", "shutdown")
    with PeakRSS() as rss:
        started = time.perf_counter()
        process = RayProcess(
            components=[
                hello_ray.Iterator(name="input", iters=iters),
                hello_ray.Sleep(name="slow-sleep", sleep_seconds=0.5),
                hello_ray.Sleep(name="very-slow-sleep", sleep_seconds=1),
                hello_ray.Timestamper(name="timestamper"),
                FileWriter(name="save-results", path="ray.csv", field_names=["timestamp"]),
            ],
            connectors=[
                RayConnector(spec=ConnectorSpec(source="input.x", target="slow-sleep.x")),
                RayConnector(spec=ConnectorSpec(source="input.x", target="very-slow-sleep.x")),
                RayConnector(spec=ConnectorSpec(source="slow-sleep.y", target="timestamper.x")),
                RayConnector(
                    spec=ConnectorSpec(source="very-slow-sleep.y", target="timestamper.y")
                ),
                RayConnector(
                    spec=ConnectorSpec(
                        source="timestamper.timestamp", target="save-results.timestamp"
                    )
                ),
            ],
        )
        async with process:
            initialised = time.perf_counter()
            await process.run()
            ran = time.perf_counter()
        ended = time.perf_counter()
    with open("ray.csv") as f:
        stamps = [datetime.datetime.fromisoformat(r[0]) for r in list(csv.reader(f))[1:]]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    steady = [g for g in gaps if g > 0.2]
    total = ended - started
    return {
        "mode": mode,
        "iters": iters,
        "total_s": round(total, 2),
        "ray_init_s": round(ray_seconds["init"], 2),
        "ray_shutdown_s": round(ray_seconds["shutdown"], 2),
        # The measure: what is left beyond starting Ray and the model's own sleeps.
        "overhead_s": round(total - ray_seconds["init"] - iters, 2),
        "init_s": round(initialised - started, 2),
        "run_s": round(ran - initialised, 2),
        "destroy_s": round(ended - ran, 2),
        "rows": len(stamps),
        "mean_row_interval_s": round(sum(steady) / len(steady), 3) if steady else None,
        "peak_tree_rss_mib": round(rss.peak_mib),
    }


def _time_ray_calls(*names: str) -> dict[str, float]:
    """Wraps `ray.<name>` for each name to add up the seconds spent in it (the process starts
    and stops its own Ray inside `init()` and `destroy()`)."""
    import ray

    seconds = dict.fromkeys(names, 0.0)

    def timed(name: str, call: _t.Callable[..., _t.Any]) -> _t.Callable[..., _t.Any]:
        def wrapper(*args: _t.Any, **kwargs: _t.Any) -> _t.Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - started

        return wrapper

    for name in names:
        setattr(ray, name, timed(name, getattr(ray, name)))
    return seconds


def in_fresh_interpreter(mode: str, iters: int) -> dict[str, _t.Any]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("RAY_ADDRESS", None)
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--iters", str(iters)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return _t.cast(dict[str, _t.Any], json.loads(line[7:]))
    raise RuntimeError(proc.stderr[-3000:])


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--peer", help="python of the peer's venv (plugboard 0.9.0)")
    parser.add_argument("--child", choices=["warm", "cold"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(asyncio.run(measure(args.child, args.iters))))
        return
    results: dict[str, _t.Any] = {"bench": "seed_ray", "iters": args.iters}
    for mode in ("warm", "cold"):
        runs = [in_fresh_interpreter(mode, args.iters) for _ in range(args.repeat)]
        results[mode] = min(runs, key=lambda r: r["total_s"])
        results[f"{mode}_totals_s"] = [r["total_s"] for r in runs]
        best = results[mode]
        print(
            f"prefect-plugboard RayProcess, API {'up' if mode == 'warm' else 'not yet up'}: "
            f"{best['total_s']} s from RayProcess(...) to the end of `async with` "
            f"(init {best['init_s']} of which ray.init {best['ray_init_s']}, run {best['run_s']}, "
            f"destroy {best['destroy_s']} of which ray.shutdown {best['ray_shutdown_s']}; "
            f"overhead beyond ray.init and the {args.iters} s of sleeps {best['overhead_s']} s; "
            f"{best['rows']} rows, {best['mean_row_interval_s']} s apart; "
            f"peak RSS {best['peak_tree_rss_mib']} MiB; all runs {results[f'{mode}_totals_s']})"
        )
    if args.peer:
        from common import run_peer

        peer = run_peer(args.peer, "bench_parallel_tutorial.py", "ray", str(args.iters))
        results["peer"] = peer
        peer_total = peer["total_s"] + (peer.get("ray_init_s") or 0)
        print(
            f"plugboard 0.9.0 RayProcess: {peer_total:.2f} s (ray.init {peer.get('ray_init_s')}"
            f" + construct..destroy {peer['total_s']}; run {peer['run_s']}), "
            f"peak RSS {peer['peak_tree_rss_mib']:.0f} MiB"
        )
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    cli()
