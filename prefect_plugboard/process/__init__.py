"""Processes: run a graph of components as a Prefect flow.

Names are imported on first use: a Ray worker that only needs one module of this package
does not pay for importing Prefect's flow machinery.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.builder.spec_builder import (
        ProcessBuilder as ProcessBuilder,
    )
    from prefect_plugboard.exceptions import (
        NotInitialisedError as NotInitialisedError,
        ResourceError as ResourceError,
    )
    from prefect_plugboard.process.local_process import (
        LocalProcess as LocalProcess,
    )
    from prefect_plugboard.process.process import (
        Process as Process,
    )
    from prefect_plugboard.process.ray.process import (
        RayProcess as RayProcess,
    )

_PUBLIC: dict[str, str] = {
    "NotInitialisedError": "prefect_plugboard.exceptions",
    "ProcessBuilder": "prefect_plugboard.builder.spec_builder",
    "LocalProcess": "prefect_plugboard.process.local_process",
    "Process": "prefect_plugboard.process.process",
    "RayProcess": "prefect_plugboard.process.ray.process",
    "ResourceError": "prefect_plugboard.exceptions",
}

__all__ = [
    "LocalProcess",
    "NotInitialisedError",
    "Process",
    "ProcessBuilder",
    "RayProcess",
    "ResourceError",
]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
