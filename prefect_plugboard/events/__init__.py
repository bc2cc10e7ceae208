"""Events: typed messages that components publish and handle, and `StopEvent`."""

from prefect_plugboard.events.connector_builder import EventConnectorBuilder
from prefect_plugboard.events.event import Event, EventHandlerSpec, StopEvent, SystemEvent
from prefect_plugboard.events.event_handlers import EventHandlers


__all__ = [
    "Event",
    "EventConnectorBuilder",
    "EventHandlerSpec",
    "EventHandlers",
    "StopEvent",
    "SystemEvent",
]
