"""Components: the long-lived, stateful nodes of a graph, and how they are driven."""

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.component.decorator import ComponentFunction, component
from prefect_plugboard.component.io import IO, IOController
from prefect_plugboard.component.runner import ComponentRunner
from prefect_plugboard.schemas.component import ComponentArgsDict


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
