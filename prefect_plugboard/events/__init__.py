"""Events: typed messages that components publish and handle, and `StopEvent`."""

from prefect_plugboard.events.connector_builder import EventConnectorBuilder
from prefect_plugboard.events.event import Event, EventHandlerSpec, StopEvent, SystemEvent


__all__ = ["Event", "EventConnectorBuilder", "EventHandlerSpec", "StopEvent", "SystemEvent"]
