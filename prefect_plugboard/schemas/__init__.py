"""Schemas: the pydantic models and typed dicts describing components, connectors, resources.

Names are imported on first use: a Ray worker needs the resources, not the YAML models.

The tuning specs (`FloatParameterSpec`, `ObjectiveSpec`, ...) are here too, as in plugboard;
they live in `prefect_plugboard.tune.specs` and load on first use.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.schemas.component import ComponentArgsDict as ComponentArgsDict
    from prefect_plugboard.schemas.config import (
        ComponentArgsSpec as ComponentArgsSpec,
        ComponentSpec as ComponentSpec,
        ConfigSpec as ConfigSpec,
        ConnectorBuilderSpec as ConnectorBuilderSpec,
        ProcessArgsSpec as ProcessArgsSpec,
        ProcessSpec as ProcessSpec,
    )
    from prefect_plugboard.schemas.connector import (
        ConnectorMode as ConnectorMode,
        ConnectorSocket as ConnectorSocket,
        ConnectorSpec as ConnectorSpec,
    )
    from prefect_plugboard.schemas.resource import (
        Resource as Resource,
        parse_quantity as parse_quantity,
    )
    from prefect_plugboard.schemas.status import Status as Status
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
_CONFIG = "prefect_plugboard.schemas.config"
_PUBLIC: dict[str, str] = {
    "ComponentArgsDict": "prefect_plugboard.schemas.component",
    "ComponentArgsSpec": _CONFIG,
    "ComponentSpec": _CONFIG,
    "ConfigSpec": _CONFIG,
    "ConnectorBuilderSpec": _CONFIG,
    "ProcessArgsSpec": _CONFIG,
    "ProcessSpec": _CONFIG,
    "ConnectorMode": "prefect_plugboard.schemas.connector",
    "ConnectorSocket": "prefect_plugboard.schemas.connector",
    "ConnectorSpec": "prefect_plugboard.schemas.connector",
    "Resource": "prefect_plugboard.schemas.resource",
    "parse_quantity": "prefect_plugboard.schemas.resource",
    "Status": "prefect_plugboard.schemas.status",
}
_PUBLIC |= {
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
