"""Processes: run a graph of components as a Prefect flow.

Names are imported on first use: a Ray worker that only needs one module of this package
does not pay for importing Prefect's flow machinery.
"""

from __future__ import annotations

import importlib
import typing as _t


if _t.TYPE_CHECKING:
    from prefect_plugboard.exceptions import (
        ResourceError as ResourceError,
    )
    from prefect_plugboard.process.local_process import (
        LocalProcess as LocalProcess,
    )
    from prefect_plugboard.process.process import (
        Process as Process,
    )
    from prefect_plugboard.process.ray_process import (
        RayProcess as RayProcess,
    )

_PUBLIC: dict[str, str] = {
    "LocalProcess": "prefect_plugboard.process.local_process",
    "Process": "prefect_plugboard.process.process",
    "RayProcess": "prefect_plugboard.process.ray_process",
    "ResourceError": "prefect_plugboard.exceptions",
}

__all__ = [
    "LocalProcess",
    "Process",
    "RayProcess",
    "ResourceError",
]


def __getattr__(name: str) -> _t.Any:
    module = _PUBLIC.get(name)
    if module is None:
        msg = f"module 'prefect_plugboard.process' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
