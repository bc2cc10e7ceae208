"""Helpers shared by the test modules."""

from __future__ import annotations

import typing as _t

from prefect_plugboard.schemas.status import Status


class _HasStatus(_t.Protocol):
    status: Status


def status(subject: _HasStatus) -> Status:
    """`subject.status` as it is now (a call, so type checkers do not narrow it across awaits)."""
    return subject.status
