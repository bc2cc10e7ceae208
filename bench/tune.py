"""Tuning benchmark: plugboard's tutorial study, 20 trials of ~0.2 s of compute each.

The same study on both sides (2 float parameters, 1 objective, `max_concurrent=2`, a local
process model whose `Trajectory` does a fixed amount of pure-Python arithmetic per step):
ours, every trial a Prefect flow run on a Ray worker, and, given `--peer PYTHON`, plugboard
0.9.0's `Tuner` (Ray Tune trials) in the same invocation. Ray is started first on both sides
and not timed; ours has the Prefect API up and idle first (its temporary server, in a
`PREFECT_HOME` of its own), as on a running installation. Each side reports the study's
wall time, trials per minute, the model's compute per trial (measured in that interpreter),
each trial's span and its overhead (span - compute).

    python bench/tune.py
    python bench/tune.py --peer /tmp/peer-venv/bin/python
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
import tempfile
import time
import typing as _t


HERE = Path(__file__).resolve().parent
TRIALS = 20
CONCURRENT = 2
TARGET_COMPUTE = 0.2  # s per trial


def calibrate() -> int:
    """The `work` per step that makes a trial's 100 steps about `TARGET_COMPUTE` s here."""
    sys.path.insert(0, str(HERE))
    from tune_model import burn

    started = time.process_time()
    burn(200_000)
    per_unit = (time.process_time() - started) / 200_000
    return max(1000, round(TARGET_COMPUTE / 100 / per_unit))


def compute_seconds(work: int) -> float:
    from tune_model import burn

    started = time.process_time()
    for _ in range(100):
        burn(work)
    return time.process_time() - started


async def measure(work: int, concurrent: int, trials: int = TRIALS) -> dict[str, _t.Any]:
    from prefect import flow
    import ray

    from prefect_plugboard.schemas import FloatParameterSpec, ObjectiveSpec
    from prefect_plugboard.schemas.config import ProcessArgsSpec, ProcessSpec
    from prefect_plugboard.tune import Tuner

    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)

    @flow
    async def warm_up() -> None:
        """A first flow run: the Prefect API up, its client warm."""

    api_started = time.perf_counter()
    await warm_up()
    api_seconds = time.perf_counter() - api_started
    await asyncio.sleep(3)  # the API idle again
    spec = ProcessSpec(
        type="prefect_plugboard.process.LocalProcess",
        args=ProcessArgsSpec(
            components=[
                {"type": "tune_model.Iterator", "args": {"name": "horizontal", "iters": 100}},
                {
                    "type": "tune_model.Trajectory",
                    "args": {"name": "trajectory", "angle": 30, "velocity": 20, "work": work},
                },
                {"type": "tune_model.MaxHeight", "args": {"name": "max-height"}},
            ],
            connectors=[
                {"source": "horizontal.x", "target": "trajectory.x"},
                {"source": "trajectory.y", "target": "max-height.y"},
            ],
        ),
    )
    tuner = Tuner(
        objective=ObjectiveSpec(object_name="max-height", field_name="max_y"),
        parameters=[
            FloatParameterSpec(
                object_name="trajectory", field_type="arg", field_name="angle", lower=0, upper=90
            ),
            FloatParameterSpec(
                object_name="trajectory",
                field_type="arg",
                field_name="velocity",
                lower=1,
                upper=100,
            ),
        ],
        num_samples=trials,
        mode="max",
        max_concurrent=concurrent,
    )
    began = time.perf_counter()
    best = await tuner.arun(spec)
    wall = time.perf_counter() - began
    ray.shutdown()
    grid = tuner.result_grid
    compute = compute_seconds(work)
    spans = [t.duration for t in grid if t.duration is not None]
    assert not isinstance(best, list)
    return {
        "trials": len(grid),
        "errors": grid.num_errors,
        "study_s": round(wall, 2),
        "trials_per_min": round(len(grid) / wall * 60, 1),
        "compute_s": round(compute, 3),
        "trial_span_s": round(statistics.mean(spans), 3),
        "overhead_per_trial_s": round(statistics.mean(spans) - compute, 3),
        "api_start_s": round(api_seconds, 2),
        "best": best.metrics["component.max-height.field.max_y"],
        "cpus": os.cpu_count(),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", help="python of the peer's venv (plugboard 0.9.0)")
    parser.add_argument("--work", type=int, help="arithmetic per step (default: ~0.2 s a trial)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="bench-tune-prefect-")
    sys.path.insert(0, str(HERE))
    from common import run_peer

    work = args.work or calibrate()
    ours = asyncio.run(measure(work, CONCURRENT))
    alone = asyncio.run(measure(work, 1, trials=10))
    result: dict[str, _t.Any] = {
        "bench": "tune",
        "work": work,
        "ours": ours,
        "one_at_a_time": alone,
    }
    print(
        f"prefect-plugboard: {ours['trials']} trials in {ours['study_s']} s = "
        f"{ours['trials_per_min']} trials/min; a trial spans {ours['trial_span_s']} s, "
        f"{ours['compute_s']} s of it the model's compute: {ours['overhead_per_trial_s']} s "
        f"overhead ({ours['errors']} failed)"
    )
    print(
        f"  one trial at a time: a trial spans {alone['trial_span_s']} s: "
        f"{alone['overhead_per_trial_s']} s beyond the model's compute"
    )
    if args.peer:
        peer = run_peer(
            args.peer, HERE / "peer" / "tune.py", str(TRIALS), str(CONCURRENT), str(work)
        )
        peer["overhead_per_trial_s"] = round(peer["trial_span_s"] - peer["compute_s"], 3)
        result["peer"] = peer
        result["ratio_trials_per_min"] = round(ours["trials_per_min"] / peer["trials_per_min"], 2)
        print(
            f"plugboard 0.9.0:   {peer['trials']} trials in {peer['study_s']} s = "
            f"{peer['trials_per_min']} trials/min; a trial spans {peer['trial_span_s']} s "
            f"(inside Tune's trainable), {peer['compute_s']} s of it the model's compute: "
            f"{peer['overhead_per_trial_s']} s overhead ({peer['errors']} failed)"
        )
        print(f"ratio: {result['ratio_trials_per_min']}x plugboard's trials/min")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    cli()
