"""Connectors: the connections between components and the channels that carry their messages."""

from prefect_plugboard.connector.asyncio_connector import AsyncioConnector
from prefect_plugboard.connector.channel import (
    DEFAULT_MAXSIZE,
    EMPTY,
    EndOfStream,
    Inbox,
    LocalSender,
    Sender,
)
from prefect_plugboard.connector.connector import Connector, ConnectorBuilder
from prefect_plugboard.connector.memory_channel import Channel
from prefect_plugboard.connector.ray_connector import RayConnector
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSocket, ConnectorSpec


__all__ = [
    "DEFAULT_MAXSIZE",
    "EMPTY",
    "AsyncioConnector",
    "Channel",
    "Connector",
    "ConnectorBuilder",
    "ConnectorMode",
    "ConnectorSocket",
    "ConnectorSpec",
    "EndOfStream",
    "Inbox",
    "LocalSender",
    "RayConnector",
    "Sender",
]
