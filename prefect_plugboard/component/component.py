"""`Component`: the base class of every long-lived, stateful node of a graph."""

from __future__ import annotations

from abc import ABC
import builtins
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
import inspect
import logging
import re
import sys
import types
import typing as _t

from prefect_plugboard.component import hand
from prefect_plugboard.component.io import IO
from prefect_plugboard.events.event import HANDLER_ATTRIBUTE, EventHandlerSpec
from prefect_plugboard.exceptions import IOSetupError, ValidationError
from prefect_plugboard.schemas.connector import ENTITY_PATTERN
from prefect_plugboard.schemas.resource import Resource
from prefect_plugboard.schemas.status import Status


__all__ = ["Component", "RunStats"]

_NAME = re.compile(rf"^{ENTITY_PATTERN}$")


@dataclass
class RunStats:
    """Figures about one component's run.

    Attributes:
        steps: How many times `step()` ran.
        messages_in: Input values consumed from channels (initial values not counted).
        messages_out: Values sent on connectors.
        busy_seconds: Time spent outside waits for input or for room downstream.
        waiting_seconds: Time spent waiting for input or for room downstream.
    """

    steps: int = 0
    messages_in: int = 0
    messages_out: int = 0
    busy_seconds: float = 0.0
    waiting_seconds: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        """Returns the figures as a plain dict."""
        return asdict(self)

    def summary(self) -> str:
        """The figures in words, e.g. `3 steps, 3 messages in, 3 out, busy 0.002s`."""
        return (
            f"{self.steps} steps, {self.messages_in} messages in, {self.messages_out} out, "
            f"busy {self.busy_seconds:.3f}s"
        )


class Component:
    """A long-lived, stateful node of a graph: it steps whenever new inputs arrive.

    Subclasses declare their fields with a class attribute `io = IO(inputs=[...],
    outputs=[...])`, read inputs and set outputs as attributes, and override the async hooks
    `init()` (before the first step), `step()` and `destroy()` (after the last step, also after
    a failure or a stop).

    - A component with inputs steps once each time every input field has a new value.
    - A source (no inputs) steps repeatedly until it calls `await self.io.close()`.
    - After every step every output is sent with its current value (`None` until first set)
      on every connector leaving it.
    - When an input's stream ends, the component finishes and ends its own outputs.
    - `exports` and `io` are merged along the class hierarchy and sorted by name. A class
      that declares no field and no event, and has no `__init__` of its own that could add
      some, is refused (`IOSetupError`); so is, when its process starts, an instance that ends
      up with none.

    Called on an instance (`await component.init()`, `await component.step()`, `await
    component.run()`), the hooks drive the component by hand, as in a unit test: its
    `status` follows (`init`, `running`, `waiting`, `failed`), and after
    `await component.io.connect(connectors)` each step takes its inputs from the connectors'
    channels and sends its outputs on them. Processes call the class's hooks directly.

    Example:
        ```python
        class Scale(Component):
            io = IO(inputs=["x"], outputs=["y"])

            def __init__(self, factor: float, **kwargs: Unpack[ComponentArgsDict]) -> None:
                super().__init__(**kwargs)
                self._factor = factor

            async def step(self) -> None:
                self.y = self.x * self._factor
        ```

    Args:
        name: Unique name of the component in its process.
        initial_values: Per input field, values consumed one per step before its channel is
            read. An input inside a loop of the graph needs at least one.
        parameters: Parameters for this component, merged over the process's parameters.
        resources: Compute resources, replacing the class attribute `resources`.
        constraints: Accepted for plugboard compatibility and not used (a warning says so, as
            for a YAML `constraints:`); not exported.
        state: plugboard's state backend, accepted and not used (a warning says so): the
            state lives in Prefect's API (`process.state`); not exported.

    Attributes:
        io: This component's fields (declared on the class; each instance has its own copy).
        exports: Names of attributes reported after a run (also from Ray workers).
        resources: Compute resources the component needs (a class attribute is the default).
        status: Where the component is in its lifecycle.
    """

    io: IO = IO()
    exports: _t.ClassVar[list[str] | None] = None
    resources: Resource = Resource()
    _event_handlers: _t.ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {}
    _populatable: _t.ClassVar[frozenset[str]] = frozenset()

    name: str
    status: Status
    parameters: dict[str, _t.Any]
    initial_values: dict[str, list[_t.Any]]

    def __init_subclass__(cls, **kwargs: _t.Any) -> None:
        super().__init_subclass__(**kwargs)
        merged = IO()
        for base in reversed(cls.__mro__):
            declared = base.__dict__.get("io")
            if declared is None:
                continue
            if not isinstance(declared, IO):
                msg = (
                    f"{cls.__qualname__}.io must be an IO(...) declaration, "
                    f"got {type(declared).__name__}"
                )
                raise TypeError(msg)
            merged = merged.merge(declared)
        merged = merged.in_plugboard_order()  # sorted, whatever the declaration's order
        clashes = [n for n in (*merged.inputs, *merged.outputs) if n in _reserved_names()]
        if clashes:
            msg = (
                f"{cls.__qualname__} declares fields {clashes} that clash with Component "
                "attributes; rename them"
            )
            raise ValueError(msg)
        cls.io = merged
        cls._event_handlers = _collect_handlers(cls)
        merged.event_field_coverage = {
            event_type: list(fields)
            for event_type, (_, fields) in cls._event_handlers.items()
            if fields
        }
        populatable = frozenset(f for _, fields in cls._event_handlers.values() for f in fields)
        if populatable and cls._populatable != populatable:
            cls._populatable = populatable
            _track_populated_fields(cls)
        exports = {name for base in cls.__mro__ for name in base.__dict__.get("exports") or ()}
        if exports:
            cls.exports = sorted(exports)
        declared_resources = cls.__dict__.get("resources")
        if isinstance(declared_resources, Mapping):
            cls.resources = Resource.model_validate(declared_resources)
        if merged.is_empty and not _may_add_fields(cls) and not _rebuilt_by_cloudpickle():
            msg = (
                f"{cls.__qualname__} declares no input or output fields and no events; declare "
                "them with `io = IO(inputs=[...], outputs=[...])` (or make the class abstract)"
            )
            raise IOSetupError(msg)

    def __new__(cls, *args: _t.Any, **kwargs: _t.Any) -> _t.Self:
        """Creates the instance, keeping the constructor arguments for `export()`."""
        self = super().__new__(cls)
        self.__dict__["_constructor_args"] = (args, kwargs)
        return self

    def __init__(
        self,
        *,
        name: str,
        initial_values: Mapping[str, Iterable[_t.Any]] | None = None,
        parameters: Mapping[str, _t.Any] | None = None,
        resources: Resource | Mapping[str, _t.Any] | None = None,
        constraints: Mapping[str, _t.Any] | None = None,
        state: _t.Any = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            msg = (
                f"{type(self).__name__} name {name!r} is invalid: use letters, digits, '_' and "
                "'-', starting with a letter or '_'"
            )
            raise ValidationError([msg], subject=f"component {name!r}")
        self.name = name
        self.io = type(self).io.bind(self)
        self.status = Status.CREATED
        self.parameters = dict(parameters or {})
        self.initial_values = {k: list(v) for k, v in (initial_values or {}).items()}
        if resources is not None:
            self.resources = Resource.model_validate(resources)
        self._run_logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None
        self._run_stats = RunStats()
        warn_unused_plugboard_args(name, constraints=constraints, state=state)
        self._declare_fields((*self.io.inputs, *self.io.outputs))
        hand.install(self)
        self._base_initialised = True

    def _declare_fields(self, names: Iterable[str]) -> None:
        state = self.__dict__
        for field in names:
            if field in _reserved_names():
                msg = (
                    f"field {field!r} of component {self.name!r} clashes with a Component attribute"
                )
                raise ValueError(msg)
            state.setdefault(field, None)

    if _t.TYPE_CHECKING:
        # Fields are declared at run time, so type checkers are told that any attribute may
        # exist. At run time an unknown attribute is an AttributeError, not a silent None.
        def __getattr__(self, name: str) -> _t.Any: ...

        def __setattr__(self, name: str, value: _t.Any) -> None: ...

    # ----- lifecycle hooks ------------------------------------------------------------------

    async def init(self) -> None:
        """Prepares the component; runs once, before the first step, where the component runs."""

    async def step(self) -> None:
        """Does one step of work: read inputs as attributes, set outputs as attributes."""

    async def destroy(self) -> None:
        """Releases what the component holds.

        Runs once for every component whose `init()` ran, after its last step, also when it
        failed or was stopped.
        """

    async def run(self) -> None:
        """Drives the component by hand: `step()` until its input ends or it closes its output.

        Processes run components themselves; this is for tests, after
        `await component.io.connect(connectors)` and `await component.init()`.
        """
        await hand.run_by_hand(self)

    # ----- introspection --------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The component's id: its name."""
        return self.name

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        """A logger whose records go to this component's Prefect task run while it runs."""
        run_logger = self._run_logger
        if run_logger is not None:
            return run_logger
        return logging.getLogger(f"prefect_plugboard.component.{self.__dict__.get('name', '?')}")

    @property
    def run_stats(self) -> RunStats:
        """Figures about the last run: steps, messages in and out, busy time."""
        return self._run_stats

    @property
    def type_path(self) -> str:
        """The import path of the component's class, e.g. `"hello_ray.Iterator"`."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    def dict(self) -> dict[str, _t.Any]:
        """Returns the component's state: status, field values, exports and run figures."""
        state = self.__dict__
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type_path,
            "status": str(self.status),
            "input": {f: state.get(f) for f in self.io.inputs},
            "output": {f: state.get(f) for f in self.io.outputs},
            "exports": self.exported_values(),
            "io": self.io.dict(),
            "stats": self._run_stats.to_dict(),
        }

    def exported_values(self) -> builtins.dict[str, _t.Any]:
        """The current values of the attributes named in `exports` (`None` where unset)."""
        return {k: getattr(self, k, None) for k in self.exports or ()}

    def export(self) -> builtins.dict[str, _t.Any]:
        """Returns `{"type": ..., "args": {...}}`: what rebuilds this component (YAML, workers).

        Raises:
            TypeError: The constructor took positional arguments that have no name.
        """
        args, kwargs = self.__dict__.get("_constructor_args", ((), {}))
        try:
            bound = inspect.signature(type(self).__init__).bind(self, *args, **kwargs)
        except TypeError:
            bound = None
        exported: builtins.dict[str, _t.Any] = {}
        if bound is not None:
            for key, value in list(bound.arguments.items())[1:]:
                param = bound.signature.parameters[key]
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    exported.update(value)
                elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                    if value:
                        msg = f"cannot export {self.type_path}: it takes *args"
                        raise TypeError(msg)
                else:
                    exported[key] = value
        else:
            exported = dict(kwargs)
        for unused in _UNUSED_PLUGBOARD_ARGS:
            exported.pop(unused, None)
        if isinstance(exported.get("resources"), Resource):
            exported["resources"] = exported["resources"].model_dump()  # every field, as plugboard
        return {"type": self.type_path, "args": exported}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__dict__.get('name', '?')!r})"

    def __getstate__(self) -> builtins.dict[str, _t.Any]:
        state = self.__dict__.copy()
        state["_run_logger"] = None  # bound to one task run; rebuilt where it runs
        state.pop("init", None)  # the hand-driven hooks, bound to this instance
        state.pop("step", None)
        return state

    def __setstate__(self, state: builtins.dict[str, _t.Any]) -> None:
        self.__dict__.update(state)
        if "_base_initialised" in state:
            hand.install(self)


_UNUSED_PLUGBOARD_ARGS = {
    "constraints": "are accepted for plugboard compatibility and not used",
    "state": (
        "is accepted for plugboard compatibility and not used: the state lives in Prefect's "
        "API (`process.state`)"
    ),
}


def warn_unused_plugboard_args(name: str, **given: _t.Any) -> None:
    """Logs a warning for each plugboard argument given that has no use here."""
    for key, value in given.items():
        if value is not None and value != {}:
            logging.getLogger("prefect_plugboard.component").warning(
                "Component %r: `%s` %s", name, key, _UNUSED_PLUGBOARD_ARGS[key]
            )


def _may_add_fields(cls: type[Component]) -> bool:
    """Whether a class may get its fields later: abstract, or with an `__init__` of its own."""
    if ABC in cls.__bases__ or inspect.isabstract(cls):
        return True
    return any("__init__" in vars(klass) for klass in cls.__mro__[: cls.__mro__.index(Component)])


def _rebuilt_by_cloudpickle() -> bool:
    """Whether the class being made is cloudpickle's empty skeleton of a shipped class.

    cloudpickle (Ray) rebuilds a class by value as an empty class first and fills in its
    attributes afterwards, so the class looks as if it declared nothing while it is made.
    """
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "_make_skeleton_class":
            return True
        frame = frame.f_back
    return False


def _track_populated_fields(cls: type[Component]) -> None:
    """Makes assignments to fields that event handlers populate visible to the runner.

    While a handler runs, the runner puts a set under `_assigned_fields`; an assignment to a
    field some handler populates adds the field's name to it. Only classes with such
    handlers get this `__setattr__`, so no other component pays for it.
    """

    def __setattr__(self: Component, name: str, value: _t.Any) -> None:
        super(cls, self).__setattr__(name, value)
        if name in type(self)._populatable:
            assigned = self.__dict__.get("_assigned_fields")
            if assigned is not None:
                assigned.add(name)

    cls.__setattr__ = __setattr__  # type: ignore[method-assign]


def _collect_handlers(cls: type[Component]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Event type -> (method name, fields it populates), along the class hierarchy."""
    handlers: dict[str, tuple[str, tuple[str, ...]]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            spec = getattr(value, HANDLER_ATTRIBUTE, None)
            if isinstance(spec, EventHandlerSpec):
                handlers[spec.event.type] = (name, spec.populates_fields)
    declared = {e.type for e in cls.io.input_events}
    undeclared = sorted(set(handlers) - declared)
    if undeclared:
        msg = (
            f"{cls.__qualname__} handles events {undeclared} that its io does not declare; "
            "add them to IO(input_events=[...])"
        )
        raise TypeError(msg)
    return handlers


_RESERVED: frozenset[str] | None = None


def _reserved_names() -> frozenset[str]:
    global _RESERVED  # computed once, after Component exists
    if _RESERVED is None:
        public = {n for n in dir(Component) if not n.startswith("_")}
        _RESERVED = frozenset(public | {"name", "status", "parameters", "initial_values"})
    return _RESERVED
