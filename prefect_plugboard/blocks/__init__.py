"""Channels as Prefect blocks: connector settings saved in Prefect and loaded by name.

A channel block holds the settings of the channels a process builds between its components
(`maxsize`, ...). Saved once (`block.save("name")`, the Prefect UI, or
`prefect-plugboard blocks save FILE.yaml`), it is loaded by name and given to a process as
its `connector_builder`, to a flow as a parameter
(`{"$ref": {"block_document_slug": "plugboard-asyncio-channel/NAME"}}`), or asked for one
connector (`resolve_channel_block(reference, RayChannelBlock).build(spec)`).

This module is the package's `prefect.collections` entry point: Prefect imports it to find
the block types, so `Block.load("plugboard-asyncio-channel/NAME")` works in any process,
and `prefect block register -m prefect_plugboard.blocks` registers them.

Example:
    ```python
    from prefect_plugboard.blocks import AsyncioChannelBlock

    AsyncioChannelBlock(maxsize=16).save("small")
    process = LocalProcess(
        components=[...],
        connectors=[ConnectorSpec(source="a.x", target="b.x")],
        connector_builder=AsyncioChannelBlock.load("small"),
    )
    ```
"""

from prefect_plugboard.blocks.asyncio_channel import AsyncioChannelBlock
from prefect_plugboard.blocks.channel_block import ChannelBlock
from prefect_plugboard.blocks.loading import (
    channel_block_types,
    load_channel_block,
    resolve_channel_block,
)
from prefect_plugboard.blocks.ray_channel import RayChannelBlock


__all__ = [
    "AsyncioChannelBlock",
    "ChannelBlock",
    "RayChannelBlock",
    "channel_block_types",
    "load_channel_block",
    "resolve_channel_block",
]
