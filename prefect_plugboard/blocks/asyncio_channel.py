"""`AsyncioChannelBlock`: saved settings of in-memory channels on one event loop."""

from __future__ import annotations

import typing as _t

from pydantic import Field

from prefect_plugboard.blocks.channel_block import DOCUMENTATION_URL, ChannelBlock
from prefect_plugboard.connector.asyncio_connector import AsyncioConnector
from prefect_plugboard.connector.connector import Connector


__all__ = ["AsyncioChannelBlock"]


class AsyncioChannelBlock(ChannelBlock[AsyncioConnector]):
    """Settings of in-memory channels between the components of a `LocalProcess`.

    Builds `AsyncioConnector`s: messages are handed over without copying, and a sender facing
    a full channel waits (back-pressure).

    Example:
        ```python
        from prefect_plugboard.blocks import AsyncioChannelBlock

        AsyncioChannelBlock(maxsize=1024).save("asyncio-default")
        channel = AsyncioChannelBlock.load("asyncio-default")
        process = LocalProcess(components=[...], connectors=[...], connector_builder=channel)
        ```
    """

    _block_type_name = "Plugboard Asyncio Channel"
    _block_type_slug = "plugboard-asyncio-channel"
    _description = (
        "Settings of the in-memory channels between the components of a prefect-plugboard "
        "LocalProcess: how many messages a channel holds before its sender waits."
    )
    _documentation_url = DOCUMENTATION_URL  # type: ignore[assignment]
    _code_example = """
        from prefect_plugboard import ConnectorSpec, LocalProcess
        from prefect_plugboard.blocks import AsyncioChannelBlock

        channel = AsyncioChannelBlock.load("BLOCK_NAME")
        process = LocalProcess(
            components=[...],
            connectors=[ConnectorSpec(source="a.x", target="b.x")],
            connector_builder=channel,  # every connector given as a spec gets its settings
        )
        """

    connector_class: _t.ClassVar[type[Connector]] = AsyncioConnector

    maxsize: int = Field(
        strict=True,
        ge=0,
        title="Max size",
        description=(
            "Most messages a channel holds before its sender waits (back-pressure). "
            "0 means unbounded."
        ),
    )

    def connector_settings(self) -> dict[str, _t.Any]:
        """Returns the settings of every connector built from this block: `maxsize`."""
        return {"maxsize": self.maxsize}
