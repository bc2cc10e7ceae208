"""prefect-plugboard: run graphs of long-lived, stateful components on Prefect.

Every public name is importable from here and from the plugboard-style submodules
(`prefect_plugboard.component`, `.connector`, `.process`, `.schemas`, `.library`).
"""

from prefect_plugboard.component import IO, Component, ComponentArgsDict, IOController
from prefect_plugboard.connector import AsyncioConnector, Connector, ConnectorBuilder
from prefect_plugboard.exceptions import (
    ChannelClosedError,
    ComponentCrashedError,
    ComponentError,
    PlugboardError,
    ProcessStateError,
    ValidationError,
)
from prefect_plugboard.library import FileReader, FileWriter
from prefect_plugboard.process import LocalProcess, Process
from prefect_plugboard.schemas import ConnectorSpec, Resource, Status


__version__ = "0.1.0"

__all__ = [
    "IO",
    "AsyncioConnector",
    "ChannelClosedError",
    "Component",
    "ComponentArgsDict",
    "ComponentCrashedError",
    "ComponentError",
    "Connector",
    "ConnectorBuilder",
    "ConnectorSpec",
    "FileReader",
    "FileWriter",
    "IOController",
    "LocalProcess",
    "PlugboardError",
    "Process",
    "ProcessStateError",
    "Resource",
    "Status",
    "ValidationError",
    "__version__",
]
