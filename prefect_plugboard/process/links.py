"""The links between components: which feeds which, in an order that starts upstream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.process.event_routes import EventRoutes
from prefect_plugboard.process.topology import upstream_order
from prefect_plugboard.schemas.connector import ConnectorMode


__all__ = ["Links"]


class Links:
    """Who feeds whom, through connectors and events.

    Args:
        components: The components by name.
        connectors: The connectors.
    """

    def __init__(
        self, components: Mapping[str, Component], connectors: Iterable[Connector]
    ) -> None:
        self.components = components
        self.feeds: dict[str, list[str]] = {name: [] for name in components}
        for connector in connectors:
            spec = connector.spec
            source, target = spec.source.entity, spec.target.entity
            if spec.mode is ConnectorMode.PIPELINE and source != target and source in self.feeds:
                if target in self.feeds and target not in self.feeds[source]:
                    self.feeds[source].append(target)
        routes = EventRoutes.of(components.values())
        for name in components:
            for subscribers in routes.targets(name).values():
                for subscriber in subscribers:
                    if subscriber not in self.feeds[name]:
                        self.feeds[name].append(subscriber)

    def upstream_first(self) -> list[str]:
        """The components, each after what feeds it, where the graph allows.

        A loop comes as a whole after what feeds it, entered where it is fed from outside.
        """
        return upstream_order(self.feeds)

    def upstream_of(self) -> dict[str, list[str]]:
        """Per component, what feeds it, leaving out the links that close a loop.

        This is what Prefect's run graph can draw: its layout needs a graph without loops.
        """
        position = {name: index for index, name in enumerate(self.upstream_first())}
        upstream: dict[str, list[str]] = {name: [] for name in self.components}
        for source, targets in self.feeds.items():
            for target in targets:
                if position[source] < position[target]:
                    upstream[target].append(source)
        return upstream
