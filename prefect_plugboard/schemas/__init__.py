"""Schemas: the pydantic models and typed dicts describing components, connectors, resources."""

from prefect_plugboard.schemas.component import ComponentArgsDict
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSocket, ConnectorSpec
from prefect_plugboard.schemas.resource import Resource, parse_quantity
from prefect_plugboard.schemas.status import Status


__all__ = [
    "ComponentArgsDict",
    "ConnectorMode",
    "ConnectorSocket",
    "ConnectorSpec",
    "Resource",
    "Status",
    "parse_quantity",
]
