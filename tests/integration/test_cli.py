"""The `prefect-plugboard` command line against the session's API: its commands called in this
process as the command line calls them (arguments, working folder, exit code, the two output
streams), and once on a terminal, in a process of its own, as typed in one."""

import csv
import fcntl
import os
from pathlib import Path
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios

import pytest

from tests.helpers import cli


ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "running_in_parallel"
MODELS = ROOT / "tests" / "unit" / "models"
CLI = str(Path(sys.executable).parent / "prefect-plugboard")


def rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))[1:]


def on_terminal(*args: str, cwd: Path, api: str) -> tuple[int, str]:
    """Runs the command line on a pseudo-terminal, as typed in one; its exit code and output
    (what a terminal would have been sent, stdout and stderr together)."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "NO_COLOR")}
    env.update(PREFECT_API_URL=api, TERM="xterm-256color")
    process = subprocess.Popen(
        [CLI, *args], cwd=cwd, env=env, stdin=secondary, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    received = bytearray()
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the command has ended and closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(primary)
    return process.wait(timeout=60), received.decode(errors="replace")


CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} \| (?:INFO|WARNING|ERROR) ")


@pytest.mark.slow  # on a terminal: a process of its own
def test_run_writes_the_rows_where_the_user_is_and_says_what_to_do_next(
    tmp_path: Path, prefect_api: str
) -> None:
    # On a terminal: a live table of the components, and the log lines above it, each whole.
    code, output = on_terminal(
        "run",
        str(SEED / "model.yaml"),
        "-p",
        "component.input.arg.iters=3",
        cwd=tmp_path,
        api=prefect_api,
    )
    assert code == 0, output[-3000:]
    assert len(rows(tmp_path / "ray.csv")) == 3
    assert "Completed in" in output and "on a LocalProcess" in output
    assert "prefect flow-run inspect " in output
    assert "components running" in output  # the table was drawn
    lines = re.split(r"[\r\n]", CONTROL.sub("", output))
    logged = [line for line in lines if LOG_LINE.search(line)]
    assert any("Finished in state Completed" in line for line in logged), output[-3000:]
    glued = [line for line in logged if not LOG_LINE.match(line)]
    assert not glued, glued


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
def test_process_type_switches_a_local_model_to_ray(tmp_path: Path, prefect_api: str) -> None:
    result = cli(
        "run",
        str(SEED / "model.yaml"),
        "--process-type",
        "ray",
        "-p",
        "component.input.arg.iters=2",
        cwd=tmp_path,
        api=prefect_api,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(rows(tmp_path / "ray.csv")) == 2
    assert "on a RayProcess" in result.stdout


def test_validate_reports_every_problem_without_a_traceback(
    tmp_path: Path, prefect_api: str
) -> None:
    shutil.copy(MODELS / "shapes.py", tmp_path / "shapes.py")
    text = (MODELS / "model.yaml").read_text()
    (tmp_path / "good.yaml").write_text(text)
    (tmp_path / "bad.yaml").write_text(
        text.replace("factor: 10", "factr: 10").replace("target: scale.n", "target: scael.n")
    )
    good = cli("validate", "good.yaml", cwd=tmp_path, api=prefect_api)
    assert good.returncode == 0, good.stderr
    assert "good.yaml is valid: 3 components, 2 connectors, on a LocalProcess." in good.stdout
    assert "prefect-plugboard run good.yaml" in good.stdout
    bad = cli("validate", "bad.yaml", cwd=tmp_path, api=prefect_api)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "components[1].args.factr (bad.yaml:15): Scale has no argument 'factr'" in bad.stderr
    assert "connectors[0].target (bad.yaml:23): unknown component 'scael'" in bad.stderr


def test_a_failing_component_exits_non_zero_naming_it(tmp_path: Path, prefect_api: str) -> None:
    shutil.copy(MODELS / "shapes.py", tmp_path / "shapes.py")
    (tmp_path / "explode.yaml").write_text(
        "plugboard:\n  process:\n    args:\n      components:\n"
        "      - {type: shapes.Count, args: {name: count, limit: 5}}\n"
        "      - {type: shapes.Explode, args: {name: boom, at: 2}}\n"
        "      connectors:\n      - {source: count.n, target: boom.n}\n"
    )
    result = cli("run", "explode.yaml", cwd=tmp_path, api=prefect_api)
    assert result.returncode == 1
    assert "component 'boom' (Explode) failed: ArithmeticError: exploded at 2" in result.stderr
    assert "prefect flow-run inspect " in result.stdout


def test_diagram_prints_mermaid_and_a_link(tmp_path: Path, prefect_api: str) -> None:
    result = cli("diagram", str(SEED / "model.yaml"), cwd=tmp_path, api=prefect_api)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert (
        "    input@{ shape: rounded, label: Iterator<br>**input** } --> "
        "slow-sleep@{ shape: rounded, label: Sleep<br>**slow-sleep** }"
    ) in lines
    assert len(lines) == 6
    assert "https://mermaid.live/edit#pako:" in result.stderr


def test_validate_checks_a_models_study_with_the_lines_of_its_problems(
    tmp_path: Path, prefect_api: str
) -> None:
    tuning = ROOT / "examples" / "tuning"
    good = cli("validate", str(tuning / "model-with-tuner.yaml"), cwd=tmp_path, api=prefect_api)
    assert good.returncode == 0, good.stderr[-3000:]
    assert "its study: 40 trials" in good.stdout and "prefect-plugboard tune" in good.stdout
    shutil.copy(tuning / "projectile.py", tmp_path / "projectile.py")
    text = (tuning / "model-with-tuner.yaml").read_text()
    (tmp_path / "bad.yaml").write_text(
        text.replace("field_name: angle", "field_name: angel").replace(
            "object_name: max-height", "object_name: max-hieght"
        )
    )
    bad = cli("validate", "bad.yaml", cwd=tmp_path, api=prefect_api)
    assert bad.returncode == 1
    assert "2 problems in the study" in bad.stderr
    assert "bad.yaml:29" in bad.stderr and "no argument 'angel'; did you mean 'angle'" in bad.stderr
    assert "no component 'max-hieght'; did you mean 'max-height'" in bad.stderr
