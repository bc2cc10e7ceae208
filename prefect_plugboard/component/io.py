"""`IO`: the declaration of a component's input and output fields."""

from __future__ import annotations

from collections.abc import Iterable
import re
import typing as _t

from prefect_plugboard.schemas.connector import DESCRIPTOR_PATTERN


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.component import Component
    from prefect_plugboard.component.hand import HandWiring
    from prefect_plugboard.connector.connector import Connector
    from prefect_plugboard.events.event import Event


__all__ = ["IO", "IOController"]

_FIELD_NAME = re.compile(rf"^{DESCRIPTOR_PATTERN}$")


_T = _t.TypeVar("_T")


def _unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


class IO:
    """Declares the fields a component reads and writes, and lets it end its output.

    Declared on the component class (`io = IO(inputs=["x"], outputs=["y"])`) and merged along
    the class hierarchy; every component instance gets its own copy as `self.io`.

    Args:
        inputs: Names of the input fields. The component steps once each time every input has
            a new value, and reads them as attributes (`self.x`).
        outputs: Names of the output fields, set as attributes (`self.y = ...`). After every
            step each output is sent with its current value on every connector leaving it.
        input_events: Event classes the component handles (with `@MyEvent.handler` methods).
        output_events: Event classes the component publishes with `queue_event`.
        event_field_coverage: Per event type, the input fields its handler populates (filled
            in from the component's `@MyEvent.handler(populates_fields=[...])` methods).
    """

    __slots__ = (
        "_close_requested",
        "_event_queue",
        "_hand",
        "_owner",
        "event_field_coverage",
        "input_events",
        "inputs",
        "output_events",
        "outputs",
    )

    def __init__(
        self,
        inputs: Iterable[str] | None = None,
        outputs: Iterable[str] | None = None,
        input_events: Iterable[type[Event]] | None = None,
        output_events: Iterable[type[Event]] | None = None,
        event_field_coverage: _t.Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.inputs: tuple[str, ...] = _unique(inputs or ())
        self.outputs: tuple[str, ...] = _unique(outputs or ())
        self.input_events: tuple[type[Event], ...] = _unique(input_events or ())
        self.output_events: tuple[type[Event], ...] = _unique(output_events or ())
        for event in (*self.input_events, *self.output_events):
            if not isinstance(getattr(event, "type", None), str):
                msg = (
                    f"{getattr(event, '__qualname__', event)!r} is not an Event class with a "
                    "`type`; give it `type: ClassVar[str] = '...'`"
                )
                raise TypeError(msg)
        for name in (*self.inputs, *self.outputs):
            _check_field_name(name)
        overlap = set(self.inputs) & set(self.outputs)
        if overlap:
            msg = f"fields {sorted(overlap)} are declared both as inputs and as outputs"
            raise ValueError(msg)
        self.event_field_coverage: dict[str, list[str]] = {
            k: list(v) for k, v in (event_field_coverage or {}).items()
        }
        self._owner: Component | None = None
        self._close_requested = False
        self._event_queue: list[Event] = []
        self._hand: HandWiring | None = None

    def __repr__(self) -> str:
        return f"IO(inputs={list(self.inputs)!r}, outputs={list(self.outputs)!r})"

    def __getstate__(self) -> dict[str, _t.Any]:
        state = {slot: getattr(self, slot) for slot in self.__slots__}
        state["_hand"] = None  # channels of one event loop, for driving by hand
        return state

    def __setstate__(self, state: dict[str, _t.Any]) -> None:
        for slot, value in state.items():
            setattr(self, slot, value)

    def merge(self, other: IO) -> IO:
        """Returns a new `IO` with this one's fields followed by `other`'s."""
        return IO(
            inputs=(*self.inputs, *other.inputs),
            outputs=(*self.outputs, *other.outputs),
            input_events=(*self.input_events, *other.input_events),
            output_events=(*self.output_events, *other.output_events),
            event_field_coverage={**self.event_field_coverage, **other.event_field_coverage},
        )

    def in_plugboard_order(self) -> IO:
        """Returns a copy with fields sorted by name and events by class, as plugboard has them."""
        return IO(
            sorted(self.inputs),
            sorted(self.outputs),
            sorted(self.input_events, key=str),
            sorted(self.output_events, key=str),
            self.event_field_coverage,
        )

    def bind(self, owner: Component) -> IO:
        """Returns a copy of this declaration for one component instance."""
        bound = IO(
            self.inputs,
            self.outputs,
            self.input_events,
            self.output_events,
            self.event_field_coverage,
        )
        bound._owner = owner
        return bound

    @property
    def is_empty(self) -> bool:
        """Whether it declares no field and no event."""
        return not (self.inputs or self.outputs or self.input_events or self.output_events)

    def dict(self) -> dict[str, _t.Any]:
        """Returns the declaration as plain data: fields, event types, initial values."""
        owner = self._owner
        return {
            "namespace": owner.name if owner is not None else None,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "input_events": [e.safe_type() for e in self.input_events],
            "output_events": [e.safe_type() for e in self.output_events],
            "initial_values": (
                {k: list(v) for k, v in owner.initial_values.items()} if owner is not None else {}
            ),
            "event_field_coverage": {k: list(v) for k, v in self.event_field_coverage.items()},
        }

    async def connect(self, connectors: Iterable[Connector]) -> None:
        """Connects this component to the channels of `connectors`, to drive it by hand.

        Processes wire their components themselves; this is for tests that call
        `await component.init()` and `await component.step()` directly: each step then takes
        one value per connected input field (initial values first), handles the events that
        have arrived, and sends every output on its connectors. Connectors that do not
        involve this component are ignored.

        Example:
            ```python
            into = AsyncioConnector(spec=ConnectorSpec(source="src.x", target="double.x"))
            out_of = AsyncioConnector(spec=ConnectorSpec(source="double.y", target="sink.y"))
            await double.io.connect([into, out_of])
            await double.init()
            await (await into.connect_send()).send(2)
            await double.step()
            assert await (await out_of.connect_recv()).recv() == 4
            ```

        Raises:
            TypeError: This is a class's declaration, not a component's own `self.io`.
        """
        from prefect_plugboard.component.hand import connect

        if self._owner is None:
            msg = "only a component's own `self.io` can be connected"
            raise TypeError(msg)
        await connect(self._owner, connectors)

    def add_inputs(self, *names: str) -> None:
        """Adds input fields to this component instance, e.g. from a constructor argument.

        Call it from `__init__`, after `super().__init__()`.
        """
        self._extend(names, "inputs")

    def add_outputs(self, *names: str) -> None:
        """Adds output fields to this component instance, e.g. from a constructor argument.

        Call it from `__init__`, after `super().__init__()`.
        """
        self._extend(names, "outputs")

    def _extend(self, names: tuple[str, ...], kind: _t.Literal["inputs", "outputs"]) -> None:
        if self._owner is None:
            msg = "fields can only be added to a component's own `self.io`, in its __init__"
            raise TypeError(msg)
        other = self.outputs if kind == "inputs" else self.inputs
        for name in names:
            _check_field_name(name)
            if name in other:
                msg = f"field {name!r} cannot be both an input and an output"
                raise ValueError(msg)
        setattr(self, kind, _unique((*getattr(self, kind), *names)))
        self._owner._declare_fields(names)

    @property
    def is_closed(self) -> bool:
        """Whether the component has closed its output (no more steps will follow)."""
        return self._close_requested

    def queue_event(self, event: Event) -> None:
        """Publishes an event after the current step (or handler) returns.

        It must be of a type declared in `output_events`; a `StopEvent` may always be queued
        and stops the whole model.

        Raises:
            ValueError: The event's type is not one of the component's output events.
        """
        from prefect_plugboard.events.event import StopEvent

        if not isinstance(event, StopEvent) and type(event) not in self.output_events:
            declared = ", ".join(e.__name__ for e in self.output_events) or "none"
            owner = self._owner.name if self._owner is not None else "?"
            msg = (
                f"component {owner!r} cannot publish {type(event).__name__} ({event.type!r}): "
                f"it is not in its output_events ({declared})"
            )
            raise ValueError(msg)
        self._event_queue.append(event)

    async def close(self) -> None:
        """Ends this component's output streams after the current step.

        The outputs of the step that calls `close()` are not sent; every value sent before it
        reaches its targets before they see the end of the stream. A source (a component
        without inputs) must call it to finish.
        """
        self._close_requested = True


IOController = IO
"""Alias of `IO`, under the name plugboard uses."""


def _check_field_name(name: str) -> None:
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        msg = (
            f"{name!r} is not a valid field name: use letters, digits and '_', "
            "starting with a letter or '_'"
        )
        raise ValueError(msg)
