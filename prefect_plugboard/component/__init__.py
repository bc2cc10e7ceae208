"""Components: the long-lived, stateful nodes of a graph, and how they are driven.

Names are imported on first use: a Ray worker (or the run's coordinator) that needs one
module of this package does not import the others.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.component import (
        Component as Component,
        RunStats as RunStats,
    )
    from prefect_plugboard.component.decorator import (
        ComponentFunction as ComponentFunction,
        component as component,
    )
    from prefect_plugboard.component.io import IO as IO, IOController as IOController
    from prefect_plugboard.component.runner import ComponentRunner as ComponentRunner
    from prefect_plugboard.schemas.component import ComponentArgsDict as ComponentArgsDict

_PUBLIC: dict[str, str] = {
    "IO": "prefect_plugboard.component.io",
    "Component": "prefect_plugboard.component.component",
    "ComponentArgsDict": "prefect_plugboard.schemas.component",
    "ComponentFunction": "prefect_plugboard.component.decorator",
    "ComponentRunner": "prefect_plugboard.component.runner",
    "IOController": "prefect_plugboard.component.io",
    "RunStats": "prefect_plugboard.component.component",
    "component": "prefect_plugboard.component.decorator",
}

__all__ = [
    "IO",
    "Component",
    "ComponentArgsDict",
    "ComponentFunction",
    "ComponentRunner",
    "IOController",
    "RunStats",
    "component",
]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
