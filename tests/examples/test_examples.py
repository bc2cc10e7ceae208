"""Every example under examples/ runs, as a script, against the session's Prefect API.

Examples on Ray join the session's Ray cluster (`RAY_ADDRESS`), as a user's script joins a
running cluster, except the seed's `hello_ray.py ray`, the command behind `make run`, which
starts a Ray of its own and stops it. Each file runs once, in one of its modes: the seed's
LocalProcess mode runs in test_seed.py, the events model on Ray in test_events_runs.py.
"""

import csv
from dataclasses import dataclass, field
import os
from pathlib import Path
import subprocess
import sys
import typing as _t

import pytest


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class Run:
    """One run of an example: its arguments, the CSV rows and output it must produce."""

    script: str
    args: tuple[str, ...] = ()
    rows: dict[str, int] = field(default_factory=dict)
    prints: str = ""
    ray: str = ""  # "join" the session's cluster, or "own" Ray started by the example
    command: str = "run"  # how `prefect-plugboard` runs a YAML model

    @property
    def id(self) -> str:
        return f"{self.script} {' '.join(self.args)}".strip()


RUNS = [
    Run("quickstart/squares.py", rows={"squares.csv": 5}),
    Run("events/clock_model.py", ("local", "6"), {"actions.csv": 6}, "ticks [0, 1, 2, 3, 4, 5]"),
    Run("events/clock-model.yaml", (), {"actions.csv": 6}),
    Run("running_in_parallel/model.yaml", ("-p", "component.input.arg.iters=3"), {"ray.csv": 3}),
    Run(
        "running_in_parallel/model-ray.yaml",
        ("-p", "component.input.arg.iters=3"),
        {"ray.csv": 3},
        ray="join",
    ),
    Run("running_in_parallel/resources-example.yaml", prints="Completed in", ray="join"),
    Run("running_in_parallel/hello_ray.py", ("ray", "3"), rows={"ray.csv": 3}, ray="own"),
    Run(
        "running_in_parallel/resources_example.py",
        prints=f"Final result from GPU task: {sum(i**2 for i in range(40000)) * 2}",
        ray="join",
    ),
    Run("tuning/hello_tuner.py", ("2",), prints="Best max height:", ray="join"),
    Run(
        "tuning/model-with-tuner.yaml",
        ("--num-samples", "2"),
        prints="2 of 2 trials completed",
        ray="join",
        command="tune",
    ),
]


def _param(run: Run) -> _t.Any:
    marks = [pytest.mark.ray] if run.ray else []
    return pytest.param(run, id=run.id, marks=marks)


def test_every_example_is_exercised() -> None:
    runnable = {
        str(path.relative_to(EXAMPLES))
        for path in EXAMPLES.rglob("*.py")
        if 'if __name__ == "__main__":' in path.read_text()
    }
    # The channel block documents of examples/blocks/ are saved by test_blocks.py.
    models = {
        str(path.relative_to(EXAMPLES))
        for path in EXAMPLES.rglob("*.yaml")
        if path.parent.name != "blocks"
    }
    assert runnable | models == {run.script for run in RUNS}


@pytest.mark.slow
@pytest.mark.parametrize("run", [_param(run) for run in RUNS])
def test_example_runs_as_a_script(
    run: Run, tmp_path: Path, prefect_api: str, request: pytest.FixtureRequest
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PREFECT_API_URL"] = prefect_api
    if run.ray == "join":
        env["RAY_ADDRESS"] = request.getfixturevalue("ray_address")
        env["RAY_AUTH_MODE"] = "token"  # Ray 2.60 asks a joining driver for its token
    command = (
        [str(Path(sys.executable).parent / "prefect-plugboard"), run.command]
        if run.script.endswith(".yaml")
        else [sys.executable]
    )
    result = subprocess.run(
        [*command, str(EXAMPLES / run.script), *run.args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name, rows in run.rows.items():
        with (tmp_path / name).open() as f:
            assert len(list(csv.reader(f))) == rows + 1, f"{name}: header + {rows} rows expected"
    assert run.prints in result.stdout
