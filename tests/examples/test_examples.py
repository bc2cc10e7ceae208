"""Every example under examples/ runs, as a script, against the session's Prefect API."""

import csv
import os
from pathlib import Path
import subprocess
import sys

import pytest


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Each runnable example, with arguments that keep it short, and what it must leave behind.
RUNS: dict[str, tuple[list[str], dict[str, int]]] = {
    "quickstart/squares.py": ([], {"squares.csv": 5}),
    "running_in_parallel/hello_ray.py": (["3"], {"ray.csv": 3}),
}


def runnable_examples() -> set[str]:
    return {
        str(path.relative_to(EXAMPLES))
        for path in EXAMPLES.rglob("*.py")
        if 'if __name__ == "__main__":' in path.read_text()
    }


def test_every_runnable_example_is_exercised() -> None:
    assert runnable_examples() == set(RUNS)


@pytest.mark.parametrize("script", sorted(RUNS))
def test_example_runs_as_a_script(script: str, tmp_path: Path, prefect_api: str) -> None:
    args, outputs = RUNS[script]
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name, rows in outputs.items():
        with (tmp_path / name).open() as f:
            assert len(list(csv.reader(f))) == rows + 1, f"{name}: header + {rows} rows expected"
