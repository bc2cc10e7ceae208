"""`AsyncioConnector`: a channel between components on one event loop."""

from __future__ import annotations

from collections.abc import Mapping
import typing as _t

from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.schemas.connector import ConnectorSpec


if _t.TYPE_CHECKING:
    from prefect_plugboard.blocks.asyncio_channel import AsyncioChannelBlock


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

    @classmethod
    def from_block(
        cls,
        block: AsyncioChannelBlock | str,
        spec: ConnectorSpec | Mapping[str, _t.Any],
    ) -> AsyncioConnector:
        """Returns a connector for `spec` with the settings of a saved channel block.

        Example:
            ```python
            spec = ConnectorSpec(source="a.x", target="b.x")
            AsyncioConnector.from_block("plugboard-asyncio-channel/asyncio-default", spec)
            ```

        Args:
            block: An `AsyncioChannelBlock`, or the `"<block type slug>/<name>"` of a saved
                one (loaded from the Prefect API).
            spec: The source and target fields.

        Raises:
            ValidationError: The block cannot be loaded, or is not an `AsyncioChannelBlock`.
        """
        from prefect_plugboard.blocks import AsyncioChannelBlock, resolve_channel_block

        channel = resolve_channel_block(
            block, AsyncioChannelBlock, needed_by=f"{cls.__name__}.from_block"
        )
        return cls(spec, **channel.connector_settings())
