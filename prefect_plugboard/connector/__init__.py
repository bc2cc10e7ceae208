"""Connectors: the connections between components and the channels that carry their messages.

Names are imported on first use: a Ray worker that needs the channels does not pay for the
connector classes' schemas.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.connector.asyncio_connector import (
        AsyncioConnector as AsyncioConnector,
    )
    from prefect_plugboard.connector.channel import (
        DEFAULT_MAXSIZE as DEFAULT_MAXSIZE,
        EMPTY as EMPTY,
        EndOfStream as EndOfStream,
        Inbox as Inbox,
        LocalSender as LocalSender,
        Sender as Sender,
    )
    from prefect_plugboard.connector.connector import (
        Connector as Connector,
        ConnectorBuilder as ConnectorBuilder,
    )
    from prefect_plugboard.connector.memory_channel import Channel as Channel
    from prefect_plugboard.connector.ray_connector import RayConnector as RayConnector
    from prefect_plugboard.schemas.connector import (
        ConnectorMode as ConnectorMode,
        ConnectorSocket as ConnectorSocket,
        ConnectorSpec as ConnectorSpec,
    )

_CHANNEL = "prefect_plugboard.connector.channel"
_SCHEMA = "prefect_plugboard.schemas.connector"
_PUBLIC: dict[str, str] = {
    "AsyncioConnector": "prefect_plugboard.connector.asyncio_connector",
    "Channel": "prefect_plugboard.connector.memory_channel",
    "Connector": "prefect_plugboard.connector.connector",
    "ConnectorBuilder": "prefect_plugboard.connector.connector",
    "ConnectorMode": _SCHEMA,
    "ConnectorSocket": _SCHEMA,
    "ConnectorSpec": _SCHEMA,
    "DEFAULT_MAXSIZE": _CHANNEL,
    "EMPTY": _CHANNEL,
    "EndOfStream": _CHANNEL,
    "Inbox": _CHANNEL,
    "LocalSender": _CHANNEL,
    "RayConnector": "prefect_plugboard.connector.ray_connector",
    "Sender": _CHANNEL,
}

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


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
