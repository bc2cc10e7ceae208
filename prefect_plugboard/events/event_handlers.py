"""`EventHandlers`: plugboard's registry of event handlers, over `@MyEvent.handler`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
import typing as _t

from prefect_plugboard.events.event import Event, Handler


__all__ = ["EventHandlers"]


class EventHandlers:
    """Registers and finds component methods that handle events.

    `EventHandlers.add(MyEvent)` is the same decorator as `@MyEvent.handler`; `get` finds the
    handler a component class (or one of its bases) has for an event type.
    """

    @classmethod
    def add(
        cls, event: type[Event] | Event, populates_fields: Sequence[str] | None = None
    ) -> Callable[[Handler], Handler]:
        """Returns a decorator marking a component method as the handler of `event`'s type.

        Args:
            event: The event class (or an event of it).
            populates_fields: Input fields the handler sets (see `Event.handler`).
        """
        return (
            type(event).handler(populates_fields=populates_fields)
            if isinstance(event, Event)
            else event.handler(populates_fields=populates_fields)
        )

    @classmethod
    def get(cls, component_class: type, event: type[Event] | Event) -> Callable[..., _t.Any]:
        """Returns the function that handles `event`'s type on `component_class`.

        Raises:
            KeyError: The class has no handler for that event type.
        """
        handlers: dict[str, tuple[str, tuple[str, ...]]] = getattr(
            component_class, "_event_handlers", {}
        )
        if event.type not in handlers:
            msg = (
                f"no handler found for class {component_class.__name__!r} and event type "
                f"{event.type!r}"
            )
            raise KeyError(msg)
        function: Callable[..., _t.Any] = getattr(component_class, handlers[event.type][0])
        return function
