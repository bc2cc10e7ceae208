"""`RayChannelBlock`: saved settings of the direct streams between Ray workers."""

from __future__ import annotations

import typing as _t

from pydantic import Field

from prefect_plugboard.blocks.channel_block import DOCUMENTATION_URL, ChannelBlock
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.connector.ray_connector import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_FRAME_BYTES,
    MAX_FRAME_BYTES,
    RayConnector,
)


__all__ = ["RayChannelBlock"]


class RayChannelBlock(ChannelBlock[RayConnector]):
    """Settings of the channels between the components of a `RayProcess`.

    Builds `RayConnector`s: each sender streams straight to its receiver, packing up to
    `batch_size` messages (and at most `max_frame_bytes`) per frame when busy; the receiver
    holds at most `maxsize` messages (plus what the network buffers hold) before senders wait.

    Example:
        ```python
        from prefect_plugboard.blocks import RayChannelBlock

        RayChannelBlock(maxsize=1024).save("ray-default")
        channel = RayChannelBlock.load("ray-default")
        process = RayProcess(components=[...], connectors=[...], connector_builder=channel)
        ```
    """

    _block_type_name = "Plugboard Ray Channel"
    _block_type_slug = "plugboard-ray-channel"
    _description = (
        "Settings of the channels between the components of a prefect-plugboard RayProcess, "
        "which stream directly between Ray workers: how many messages a receiver holds "
        "before senders wait, how many messages travel in one frame, and how large a frame "
        "may be."
    )
    _documentation_url = DOCUMENTATION_URL  # type: ignore[assignment]
    _code_example = """
        from prefect_plugboard import ConnectorSpec, RayProcess
        from prefect_plugboard.blocks import RayChannelBlock

        channel = RayChannelBlock.load("BLOCK_NAME")
        process = RayProcess(
            components=[...],
            connectors=[ConnectorSpec(source="a.x", target="b.x")],
            connector_builder=channel,  # every connector given as a spec gets its settings
        )
        """

    connector_class: _t.ClassVar[type[Connector]] = RayConnector

    maxsize: int = Field(
        strict=True,
        ge=0,
        title="Max size",
        description=(
            "Most messages waiting at a receiver before its senders wait (back-pressure); "
            "the network buffers hold more. 0 means unbounded."
        ),
    )
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        strict=True,
        ge=1,
        title="Batch size",
        description=(
            "Most messages sent in one frame. A message sent alone leaves at once; a busy "
            "sender packs up to this many."
        ),
    )

    max_frame_bytes: int = Field(
        default=DEFAULT_MAX_FRAME_BYTES,
        strict=True,
        ge=1,
        le=MAX_FRAME_BYTES,
        title="Max frame bytes",
        description=(
            "Most bytes in one frame (a larger batch is split), so also the largest message "
            "once pickled: bounds what a receiver buffers per connector. 64 MiB by default."
        ),
    )

    def connector_settings(self) -> dict[str, _t.Any]:
        """Returns the settings of every connector built from this block."""
        return {
            "maxsize": self.maxsize,
            "batch_size": self.batch_size,
            "max_frame_bytes": self.max_frame_bytes,
        }
