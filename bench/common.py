"""Helpers shared by the benchmarks: peak RSS of a process tree, the peer runner."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import threading
import time
import typing as _t


# No telemetry from a machine without a network: set before any script imports Prefect (its
# temporary server would otherwise write a telemetry row, and trip on a locked SQLite file).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect's temporary server migrates a new database at its first start (each benchmark gives
# it a fresh home): 20 s, its default, is too short beside a starting Ray on 2 busy cores.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


PEER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "peer"


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int | None = None) -> float:
    """Summed RSS (MiB) of `root` (default: this process) and all its descendants."""
    kids = _children()
    stack, seen = [root or os.getpid()], set()
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(kids.get(pid, []))
    return sum(_rss_kib(p) for p in seen) / 1024


class PeakRSS:
    """Samples the RSS of this process tree in a thread; `peak_mib` and `samples` after."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = tree_rss_mib()
            self.samples.append(value)
            self.peak_mib = max(self.peak_mib, value)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_peer(
    python: str, script: str | Path, *args: str, timeout: float = 900
) -> dict[str, _t.Any]:
    """Runs a benchmark script with the peer's python; returns its `RESULT` line as a dict.

    Args:
        python: The peer venv's python.
        script: A script of the peer's own benchmarks (a name in `PEER_DIR`), or the path of
            one written here with plugboard's API (`bench/peer/`).
        *args: Its arguments.
        timeout: Seconds before giving up.
    """
    started = time.perf_counter()
    path = script if isinstance(script, Path) else PEER_DIR / script
    proc = subprocess.run(
        [python, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, _t.Any] = json.loads(line[len("RESULT ") :])
            result["wall_s"] = round(time.perf_counter() - started, 2)
            return result
    tail = "\n".join(proc.stderr.splitlines()[-15:])
    msg = f"peer {script} {' '.join(args)} printed no RESULT line (exit {proc.returncode}):\n{tail}"
    raise RuntimeError(msg)
