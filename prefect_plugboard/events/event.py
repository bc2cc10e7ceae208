"""`Event`: typed messages that components publish and handle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
import re
import typing as _t
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


__all__ = [
    "HANDLER_ATTRIBUTE",
    "Event",
    "EventHandlerSpec",
    "Handler",
    "StopEvent",
    "SystemEvent",
]

_EVENT_TYPE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_\-.]*$")
HANDLER_ATTRIBUTE = "__plugboard_event_handler__"
"""Attribute by which `@MyEvent.handler` marks a component method."""

Handler = _t.TypeVar("Handler", bound=Callable[..., Awaitable[_t.Any]])


class EventHandlerSpec(_t.NamedTuple):
    """What `@MyEvent.handler` records on a method."""

    event: type[Event]
    populates_fields: tuple[str, ...]


class Event(BaseModel):
    """A typed message that a component publishes and others handle.

    Subclasses set a class-level `type` (letters, digits, `_`, `-`, `.`) and usually narrow
    `data` to a pydantic model. Components declare what they publish and handle with
    `IO(output_events=[...], input_events=[...])`; publish with `self.io.queue_event(event)`
    (or by returning an event from a handler); handle with a method decorated
    `@MyEvent.handler`. Every subscriber gets every event exactly once, in order per publisher.

    Example:
        ```python
        class Tick(BaseModel):
            n: int


        class TickEvent(Event):
            type: ClassVar[str] = "tick"
            data: Tick


        class Listener(Component):
            io = IO(input_events=[TickEvent])

            @TickEvent.handler
            async def on_tick(self, event: TickEvent) -> None:
                self.seen.append(event.data.n)
        ```

    Attributes:
        type: The event type (a class attribute).
        id: A unique id, generated.
        timestamp: When the event was created (UTC), generated.
        source: Who published it, usually the component's name.
        version: The version of the event's schema.
        data: The payload.
        metadata: Free-form string metadata.
    """

    model_config = ConfigDict(frozen=True)

    type: _t.ClassVar[str]

    id: UUID = Field(default_factory=uuid4)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str
    version: str = "0.1.0"
    data: dict[str, _t.Any] | BaseModel
    metadata: dict[str, str] = Field(default_factory=dict)

    def __init_subclass__(cls, **kwargs: _t.Any) -> None:
        super().__init_subclass__(**kwargs)
        # A class rebuilt by cloudpickle (on a Ray worker) gets its attributes after this
        # runs, so a missing `type` is refused where the class is used (IO, instances).
        event_type = cls.__dict__.get("type")
        if event_type is not None and not _EVENT_TYPE.match(str(event_type)):
            msg = (
                f"event type {event_type!r} of {cls.__qualname__} is invalid: use letters, "
                "digits, '_', '-' and '.', starting with a letter"
            )
            raise ValueError(msg)

    def model_post_init(self, context: _t.Any, /) -> None:
        """Refuses instances of an event class that has no `type`."""
        if not isinstance(getattr(type(self), "type", None), str):
            name = type(self).__qualname__
            msg = f"event class {name} needs a class attribute `type: ClassVar[str]`"
            raise TypeError(msg)

    @classmethod
    def safe_type(cls) -> str:
        """The type with `.` and `-` replaced by `_`, for names that allow neither."""
        return cls.type.replace(".", "_").replace("-", "_")

    @_t.overload
    @classmethod
    def handler(cls, method: Handler) -> Handler: ...

    @_t.overload
    @classmethod
    def handler(
        cls, *, populates_fields: Sequence[str] | None = None
    ) -> Callable[[Handler], Handler]: ...

    @classmethod
    def handler(
        cls, method: Handler | None = None, *, populates_fields: Sequence[str] | None = None
    ) -> Handler | Callable[[Handler], Handler]:
        """Marks an async component method as the handler of this event type.

        Use as `@MyEvent.handler` or `@MyEvent.handler(populates_fields=["x"])`; the latter
        says that the handler sets input field `x`, which then counts as a new value of `x`
        for the component's next step. A handler may return an event: it is published.
        """

        def mark(function: Handler) -> Handler:
            setattr(
                function, HANDLER_ATTRIBUTE, EventHandlerSpec(cls, tuple(populates_fields or ()))
            )
            return function

        return mark(method) if method is not None else mark


class SystemEvent(Event):
    """Base of the events the library itself understands."""

    type: _t.ClassVar[str] = "system"


class StopEvent(SystemEvent):
    """Stops the whole model: every component ends `stopped`, what was written stays.

    Any component may publish it (`self.io.queue_event(StopEvent(source=self.name,
    data={}))`) without declaring it; `await process.stop()` does the same from outside.
    """

    type: _t.ClassVar[str] = "system.stop"
