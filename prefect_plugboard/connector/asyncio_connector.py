"""`AsyncioConnector`: a channel between components on one event loop."""

from __future__ import annotations

import typing as _t

from prefect_plugboard.connector.connector import Connector


__all__ = ["AsyncioConnector"]


class AsyncioConnector(Connector):
    """A bounded in-memory channel between two components of a `LocalProcess`.

    Messages are handed over without copying or serialising. The channel holds at most
    `maxsize` messages (1024 by default); a sender facing a full channel waits, so a fast
    producer cannot grow memory without bound.

    Example:
        ```python
        AsyncioConnector(spec=ConnectorSpec(source="input.x", target="slow-sleep.x"))
        AsyncioConnector(spec=ConnectorSpec(source="a.y", target="b.y"), maxsize=10)
        ```
    """

    transport: _t.ClassVar[str] = "asyncio"
