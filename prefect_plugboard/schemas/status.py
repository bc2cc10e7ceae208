"""The lifecycle status shared by components and processes."""

from __future__ import annotations

from enum import StrEnum


__all__ = ["Status"]


class Status(StrEnum):
    """Where a component or process is in its lifecycle.

    `created` → `init` → `running` ⇄ `waiting` → `completed` | `failed` | `stopped`.
    """

    CREATED = "created"
    INIT = "init"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_terminal(self) -> bool:
        """Whether nothing more will happen: completed, failed or stopped."""
        return self in (Status.COMPLETED, Status.FAILED, Status.STOPPED)
