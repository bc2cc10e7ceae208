"""`EventConnectorBuilder`: plugboard's way of wiring events, kept for its code to run."""

from __future__ import annotations

from collections.abc import Iterable
import typing as _t

from prefect_plugboard.connector.connector import Connector, ConnectorBuilder
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSpec


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.component import Component


__all__ = ["EventConnectorBuilder"]


class EventConnectorBuilder:
    """Builds the pub/sub connectors that describe a graph's events.

    Processes wire events by themselves (one broadcast channel per event type, from every
    publisher to every subscriber), so these connectors are only a description: passing
    them to a process changes nothing. The class exists so that plugboard code that builds
    them runs unchanged.

    Args:
        connector_builder: The builder of the connectors (its class is used).
    """

    def __init__(self, connector_builder: ConnectorBuilder) -> None:
        self.connector_builder = connector_builder

    def build(self, components: Iterable[Component]) -> dict[str, Connector]:
        """Returns one pub/sub connector per event type that a component publishes or handles."""
        types: dict[str, _t.Any] = {}
        for component in components:
            for event in (*component.io.input_events, *component.io.output_events):
                types.setdefault(event.type, event)
        connectors = {}
        for event in types.values():
            spec = ConnectorSpec(
                source=f"{event.safe_type()}.publishers",
                target=f"{event.safe_type()}.subscribers",
                mode=ConnectorMode.PUBSUB,
            )
            connectors[spec.id] = self.connector_builder.build(spec)
        return connectors
