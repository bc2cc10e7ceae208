"""The Ray backend: `RayProcess` and what it runs on the driver and on the workers.

Only `RayProcess` is public; it is also importable as `prefect_plugboard.RayProcess` and
`prefect_plugboard.process.RayProcess`. Modules here are imported on first use, and the ones
that run on workers (`host`, `link`, `stream`, `sender`, `reports`, `coordinator`) never import
Prefect; nor does the driver's end of the workers' links (`coordinator_server`).
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.process import RayProcess as RayProcess

_PUBLIC: dict[str, str] = {"RayProcess": "prefect_plugboard.process.ray.process"}

__all__ = ["RayProcess"]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
