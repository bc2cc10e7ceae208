"""Which component modules a Ray worker finds by itself, and which must travel by value."""

from __future__ import annotations

import importlib
from pathlib import Path
import sys

import pytest
import yaml

import prefect_plugboard
from prefect_plugboard.process.ray.cluster import _installed


def test_a_module_beside_a_script_travels_the_others_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_components.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = importlib.import_module("my_components")
    try:
        assert not _installed(mine)  # found through a folder added at run time
        assert _installed(yaml)  # site-packages
        assert _installed(prefect_plugboard)  # an editable install: its import hook finds it
        assert _installed(importlib)  # the standard library
    finally:
        sys.modules.pop("my_components", None)
