"""plugboard 0.9.0 side of `bench/tune.py`: the same study with plugboard's `Tuner`.

Run with the peer's python (`/tmp/peer-venv/bin/python bench/peer/tune.py 20 2 20000`);
prints one `RESULT {json}` line. Ray is started first (not timed), with every CPU of the
machine; the study is timed from `tuner.run(...)` to its return.
"""

import json
import logging
import os
from pathlib import Path
import sys
import time

from plugboard.schemas import (
    FloatParameterSpec,
    ObjectiveSpec,
    ProcessArgsSpec,
    ProcessSpec,
)
from plugboard.tune import Tuner
import ray


sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_peer_model import burn


def main() -> None:
    samples, concurrent, work = (int(a) for a in sys.argv[1:4])
    started = time.process_time()
    for _ in range(100):
        burn(work)
    compute = time.process_time() - started
    spec = ProcessSpec(
        args=ProcessArgsSpec(
            components=[
                {"type": "tune_peer_model.Iterator", "args": {"name": "horizontal", "iters": 100}},
                {
                    "type": "tune_peer_model.Trajectory",
                    "args": {"name": "trajectory", "angle": 30, "velocity": 20, "work": work},
                },
                {"type": "tune_peer_model.MaxHeight", "args": {"name": "max-height"}},
            ],
            connectors=[
                {"source": "horizontal.x", "target": "trajectory.x"},
                {"source": "trajectory.y", "target": "max-height.y"},
            ],
        ),
        type="plugboard.process.LocalProcess",
    )
    tuner = Tuner(
        objective=ObjectiveSpec(object_name="max-height", field_type="field", field_name="max_y"),
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
        num_samples=samples,
        mode="max",
        max_concurrent=concurrent,
    )
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    began = time.perf_counter()
    best = tuner.run(spec=spec)
    wall = time.perf_counter() - began
    grid = tuner.result_grid
    spans = [r.metrics["time_total_s"] for r in grid if r.metrics]
    ray.shutdown()
    result = {
        "trials": len(grid),
        "errors": grid.num_errors,
        "study_s": round(wall, 2),
        "trials_per_min": round(len(grid) / wall * 60, 1),
        "compute_s": round(compute, 3),
        "trial_span_s": round(sum(spans) / len(spans), 3) if spans else None,
        "best": best.metrics["component.max-height.field.max_y"],
        "cpus": os.cpu_count(),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
