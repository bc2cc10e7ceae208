"""Schemas: the pydantic models and typed dicts describing components, connectors, resources."""

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


__all__ = [
    "ComponentArgsDict",
    "ComponentArgsSpec",
    "ComponentSpec",
    "ConfigSpec",
    "ConnectorBuilderSpec",
    "ConnectorMode",
    "ConnectorSocket",
    "ConnectorSpec",
    "ProcessArgsSpec",
    "ProcessSpec",
    "Resource",
    "Status",
    "parse_quantity",
]
