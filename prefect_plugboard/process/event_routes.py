"""Who hears whom: the broadcast routes of a graph's events, one per event type."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prefect_plugboard.component.component import Component


__all__ = ["EVENTS_FIELD", "EventRoutes"]

EVENTS_FIELD = "__events__"
"""Name under which a component's event inbox is reached (a name no field can have)."""


@dataclass(frozen=True)
class EventRoutes:
    """The broadcast routes of a graph's events.

    Every component that publishes an event type sends each event to every other component
    that handles that type, over one channel per (publisher, subscriber) pair: each
    subscriber gets each event once, in the order its publisher sent them. A component does
    not receive its own events.

    Attributes:
        publishers: Per event type, the names of the components that publish it.
        subscribers: Per event type, the names of the components that handle it.
    """

    publishers: dict[str, list[str]]
    subscribers: dict[str, list[str]]

    @classmethod
    def of(cls, components: Iterable[Component]) -> EventRoutes:
        """The routes between the given components."""
        publishers: dict[str, list[str]] = {}
        subscribers: dict[str, list[str]] = {}
        for component in components:
            for event in component.io.output_events:
                publishers.setdefault(event.type, []).append(component.name)
            for event in component.io.input_events:
                subscribers.setdefault(event.type, []).append(component.name)
        return cls(publishers, subscribers)

    def feeds(self, subscriber: str) -> list[str]:
        """The components whose events reach `subscriber` (each counted once)."""
        found: dict[str, None] = {}
        for event_type, names in self.subscribers.items():
            if subscriber in names:
                found.update(
                    (p, None) for p in self.publishers.get(event_type, []) if p != subscriber
                )
        return list(found)

    def targets(self, publisher: str) -> dict[str, list[str]]:
        """Per event type `publisher` publishes, the components that receive it."""
        return {
            event_type: [s for s in self.subscribers.get(event_type, []) if s != publisher]
            for event_type, names in self.publishers.items()
            if publisher in names
        }
