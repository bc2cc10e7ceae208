"""Parity with plugboard 0.9: its example models and documented behaviours, here.

The models in `models/` are written for plugboard (see `parity_api`); the folder is put on
`sys.path` so that they import by name, as a YAML model's `type:` paths name them. Where the
peer's Python exists (`/tmp/peer-venv/bin/python`, or `PLUGBOARD_PEER_PYTHON`), some tests
run the same model in plugboard too and compare.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import sys
import textwrap
import typing as _t

import pytest

from tests.helpers import python_code


MODELS = Path(__file__).parent / "models"
PEER_PYTHON = Path(os.environ.get("PLUGBOARD_PEER_PYTHON", "/tmp/peer-venv/bin/python"))

if str(MODELS) not in sys.path:
    sys.path.insert(0, str(MODELS))


class Peer:
    """Runs Python scripts with plugboard 0.9 (the peer), the parity models importable."""

    def __init__(self, python: Path) -> None:
        self.python = python

    def run(self, script: str, cwd: Path, timeout: float = 120) -> _t.Any:
        """Runs `script` in `cwd`; returns the JSON it prints on its last line."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHON"))},
            "PYTHONPATH": str(MODELS),
            "PLUGBOARD_IO_READ_TIMEOUT": "1",  # its event models end on this poll
            "PLUGBOARD_LOG_LEVEL": "ERROR",
        }
        result = python_code(
            textwrap.dedent(script), cwd=cwd, env=env, timeout=timeout, python=self.python
        )
        assert result.returncode == 0, f"the peer failed:\n{result.stderr[-3000:]}"
        return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def peer() -> Peer:
    """plugboard 0.9's Python, or a skip when it is not installed here."""
    if not PEER_PYTHON.exists():
        pytest.skip(f"plugboard 0.9 (the peer) is not installed at {PEER_PYTHON}")
    return Peer(PEER_PYTHON)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Runs the test in a temporary working directory (models write relative paths)."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def kind(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs on a LocalProcess and on a RayProcess (session's Ray)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)
