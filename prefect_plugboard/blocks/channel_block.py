"""`ChannelBlock`: the base of the channel settings saved in Prefect as blocks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
import typing as _t

from prefect.blocks.core import Block

from prefect_plugboard.connector.connector import Connector, ConnectorBuilder
from prefect_plugboard.schemas.connector import ConnectorSpec


__all__ = ["DOCUMENTATION_URL", "ChannelBlock"]

ConnectorT = _t.TypeVar("ConnectorT", bound=Connector)

DOCUMENTATION_URL = "https://docs.prefect.io/v3/concepts/blocks"
"""Where the Prefect UI's "documentation" link of every channel block type leads."""


class ChannelBlock(Block, ABC, _t.Generic[ConnectorT]):
    """Settings of the channels between components, saved in Prefect and loaded by name.

    A channel block builds connectors from specs, so it can be given to a process as its
    `connector_builder`: every connector given as a spec then gets the block's settings.
    Subclasses name the connector class they build (`ChannelBlock[RayConnector]`, and
    `connector_class`) and map their fields to its settings.

    Example:
        ```python
        channel = AsyncioChannelBlock.load("asyncio-default")
        process = LocalProcess(
            components=[...],
            connectors=[ConnectorSpec(source="a.x", target="b.x")],
            connector_builder=channel,
        )
        ```
    """

    connector_class: _t.ClassVar[type[Connector]]
    """The connector class this block builds (the class it is parametrised with)."""

    @abstractmethod
    def connector_settings(self) -> dict[str, _t.Any]:
        """Returns the keyword arguments every connector built from this block gets."""

    def connector_builder(self) -> ConnectorBuilder:
        """Returns a `ConnectorBuilder` with this block's connector class and settings."""
        return ConnectorBuilder(self.connector_class, **self.connector_settings())

    def build(self, spec: ConnectorSpec | Mapping[str, _t.Any]) -> ConnectorT:
        """Returns a connector for `spec` with this block's settings.

        Args:
            spec: The source and target fields, e.g. `ConnectorSpec(source="a.x",
                target="b.x")` or a dict of the same.
        """
        return _t.cast(ConnectorT, self.connector_class(spec, **self.connector_settings()))

    @property
    def reference(self) -> str:
        """How to name this block in messages and to `Block.load`.

        `"<block type slug>/<document name>"` once the block is saved or loaded; `"unsaved
        <class name>"` before.
        """
        name = self._block_document_name
        if name is None or self._is_anonymous:
            return f"unsaved {type(self).__name__}"
        return f"{self.get_block_type_slug()}/{name}"
