"""Schemas: the pydantic models and typed dicts describing components, connectors, resources.

The tuning specs (`FloatParameterSpec`, `ObjectiveSpec`, ...) are here too, as in plugboard;
they live in `prefect_plugboard.tune.specs` and load on first use.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports
from prefect_plugboard.schemas.component import ComponentArgsDict
from prefect_plugboard.schemas.config import (
    ComponentArgsSpec,
    ComponentSpec,
    ConfigSpec,
    ConnectorBuilderSpec,
    ProcessArgsSpec,
    ProcessSpec,
)
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSocket, ConnectorSpec
from prefect_plugboard.schemas.resource import Resource, parse_quantity
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect_plugboard.tune.specs import (
        CategoricalParameterSpec as CategoricalParameterSpec,
        Direction as Direction,
        FloatParameterSpec as FloatParameterSpec,
        IntParameterSpec as IntParameterSpec,
        ObjectiveSpec as ObjectiveSpec,
        OptunaSpec as OptunaSpec,
        ParameterSpec as ParameterSpec,
        TuneArgsDict as TuneArgsDict,
        TuneArgsSpec as TuneArgsSpec,
        TuneSpec as TuneSpec,
    )

_TUNE_SPECS = "prefect_plugboard.tune.specs"
_PUBLIC: dict[str, str] = {
    name: _TUNE_SPECS
    for name in (
        "CategoricalParameterSpec",
        "Direction",
        "FloatParameterSpec",
        "IntParameterSpec",
        "ObjectiveSpec",
        "OptunaSpec",
        "ParameterSpec",
        "TuneArgsDict",
        "TuneArgsSpec",
        "TuneSpec",
    )
}

__all__ = [
    "CategoricalParameterSpec",
    "ComponentArgsDict",
    "ComponentArgsSpec",
    "ComponentSpec",
    "ConfigSpec",
    "ConnectorBuilderSpec",
    "ConnectorMode",
    "ConnectorSocket",
    "ConnectorSpec",
    "Direction",
    "FloatParameterSpec",
    "IntParameterSpec",
    "ObjectiveSpec",
    "OptunaSpec",
    "ParameterSpec",
    "ProcessArgsSpec",
    "ProcessSpec",
    "Resource",
    "Status",
    "TuneArgsDict",
    "TuneArgsSpec",
    "TuneSpec",
    "parse_quantity",
]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
