"""plugboard's tuning tutorial on prefect-plugboard: the launch that flies highest.

The model (`projectile.py`) is given as a process spec, as in the tutorial; the study varies
the launch angle and speed and maximises the highest point. Every trial is a child flow run
of the study's `tune` flow run, and the study ends with a table of its trials:

    python examples/tuning/hello_tuner.py          # 40 trials, 4 at a time
    python examples/tuning/hello_tuner.py 8        # fewer trials

The same study in YAML: `prefect-plugboard tune examples/tuning/model-with-tuner.yaml`.
"""

import sys

from prefect_plugboard.schemas import FloatParameterSpec, ObjectiveSpec
from prefect_plugboard.schemas.config import ProcessArgsSpec, ProcessSpec
from prefect_plugboard.tune import Tuner


def main(num_samples: int = 40) -> None:
    process_spec = ProcessSpec(
        type="prefect_plugboard.process.LocalProcess",
        args=ProcessArgsSpec(
            components=[
                {"type": "projectile.Iterator", "args": {"name": "horizontal", "iters": 100}},
                {
                    "type": "projectile.Trajectory",
                    "args": {"name": "trajectory", "angle": 30, "velocity": 20},
                },
                {"type": "projectile.MaxHeight", "args": {"name": "max-height"}},
            ],
            connectors=[
                {"source": "horizontal.x", "target": "trajectory.x"},
                {"source": "trajectory.y", "target": "max-height.y"},
            ],
        ),
    )
    tuner = Tuner(
        objective=ObjectiveSpec(
            object_type="component",
            object_name="max-height",
            field_type="field",
            field_name="max_y",
        ),
        parameters=[
            FloatParameterSpec(
                object_type="component",
                object_name="trajectory",
                field_type="arg",
                field_name="angle",
                lower=0,
                upper=90,
            ),
            FloatParameterSpec(
                object_type="component",
                object_name="trajectory",
                field_type="arg",
                field_name="velocity",
                lower=0,
                upper=100,
            ),
        ],
        num_samples=num_samples,
        max_concurrent=4,
        mode="max",
    )
    result = tuner.run(spec=process_spec)
    assert not isinstance(result, list)  # one objective: one best trial
    print(
        "Best parameters: "
        f"angle={result.config['component.trajectory.arg.angle']:.2f}, "
        f"velocity={result.config['component.trajectory.arg.velocity']:.2f}"
    )
    print(f"Best max height: {result.metrics['component.max-height.field.max_y']:.2f}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:2]))
