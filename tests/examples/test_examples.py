"""Every example under examples/ runs against the session's Prefect API.

Most run in this process, as `python FILE ARGS` or `prefect-plugboard COMMAND FILE ARGS` would
run them (the script's folder first on `sys.path`, its arguments in `sys.argv`, the working
directory a fresh folder), so they cost no interpreter start; those on Ray use the session's
Ray, as a user's script joins a running cluster. Two run as scripts in a process of their own:
the seed's `hello_ray.py ray`, the command behind `make run`, which starts a Ray of its own
and stops it, and `resources_example.py`, the seed's code, which stops Ray when it ends. Each
file runs once, in one of its modes: the seed's LocalProcess mode runs in test_seed.py, the
events model on Ray in test_events_runs.py.
"""

import csv
from dataclasses import dataclass, field
import os
from pathlib import Path
import runpy
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
    alone: bool = False  # in a process of its own (it starts or stops Ray)

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
    Run(
        "running_in_parallel/hello_ray.py", ("ray", "3"), rows={"ray.csv": 3}, ray="own", alone=True
    ),
    Run(
        "running_in_parallel/resources_example.py",
        prints=f"Final result from GPU task: {sum(i**2 for i in range(40000)) * 2}",
        ray="join",
        alone=True,
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
def test_example_runs(
    run: Run,
    tmp_path: Path,
    prefect_api: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if run.ray == "join":
        request.getfixturevalue("ray_cluster")
    if run.alone:
        output = run_alone(run, tmp_path, prefect_api, request)
    else:
        monkeypatch.chdir(tmp_path)
        run_here(run, monkeypatch)
        output = capsys.readouterr().out
    for name, rows in run.rows.items():
        with (tmp_path / name).open() as f:
            assert len(list(csv.reader(f))) == rows + 1, f"{name}: header + {rows} rows expected"
    assert run.prints in output


def run_here(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs the example in this process, as its command would; fails if it exits non-zero."""
    path = EXAMPLES / run.script
    if run.script.endswith(".yaml"):
        from prefect_plugboard.cli import app

        try:
            app([run.command, str(path), *run.args], standalone_mode=False)
        except SystemExit as exit_:
            assert exit_.code in (0, None), f"prefect-plugboard exited with {exit_.code}"
        return
    monkeypatch.setattr(sys, "argv", [str(path), *run.args])
    monkeypatch.syspath_prepend(str(path.parent))
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code in (0, None), f"{run.script} exited with {exit_.code}"


def run_alone(run: Run, tmp_path: Path, prefect_api: str, request: pytest.FixtureRequest) -> str:
    """Runs the example as a script, in a process of its own; its standard output."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PREFECT_API_URL"] = prefect_api
    if run.ray == "join":
        env["RAY_ADDRESS"] = request.getfixturevalue("ray_address")
        env["RAY_AUTH_MODE"] = "token"  # Ray 2.60 asks a joining driver for its token
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / run.script), *run.args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout
