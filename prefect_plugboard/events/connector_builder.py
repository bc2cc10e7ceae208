"""`EventConnectorBuilder`: plugboard's way of wiring events, kept for its code to run."""

from __future__ import annotations

from collections.abc import Iterable
import typing as _t

from prefect_plugboard.connector.connector import Connector, ConnectorBuilder


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.component import Component


__all__ = ["EventConnectorBuilder"]


class EventConnectorBuilder:
    """Builds the pub/sub connectors that describe a graph's events.

    Processes wire events by themselves (one broadcast channel per event type, from every
    publisher to every subscriber), so these connectors are only a description: passing
    them to a process changes nothing. The class exists so that plugboard code that builds
    them runs unchanged; `ConnectorBuilder.build_event_connectors` does the same.

    Args:
        connector_builder: The builder of the connectors (its class is used).
    """

    def __init__(self, connector_builder: ConnectorBuilder) -> None:
        self.connector_builder = connector_builder

    def build(self, components: Iterable[Component]) -> dict[str, Connector]:
        """Returns one pub/sub connector per event type that a component publishes or handles."""
        return {c.id: c for c in self.connector_builder.build_event_connectors(components)}
