"""Stopping what the tests started, by PID: servers, clusters and command-line processes."""

from __future__ import annotations

import contextlib
import os
import signal
import time


__all__ = ["alive", "stop_group"]


def stop_group(pid: int, first: int = signal.SIGTERM, grace: float = 20) -> None:
    """Stops the process group `pid` leads: `first`, then SIGKILL after `grace` s.

    `pid` need not be a child of this process (a daemon's, or one another worker started); a
    child is reaped.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, first)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether process `pid` is running (a zombie is not)."""
    with contextlib.suppress(ChildProcessError):  # not a child of ours
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie nobody reaps has ended too
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
