"""`@component`: a component made from a function that maps inputs to outputs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
import inspect
import secrets
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.component.io import IO
from prefect_plugboard.exceptions import StepResultError


__all__ = ["ComponentFunction", "component"]

_Function = Callable[..., Mapping[str, _t.Any] | Awaitable[Mapping[str, _t.Any]]]


def component(
    inputs: Iterable[str] | None = None, outputs: Iterable[str] | None = None
) -> Callable[[_Function], ComponentFunction]:
    """Makes a component class from a function, sync or async, that returns a dict.

    Each step calls the function with the input fields as keyword arguments and sets the
    output fields from the dict it returns; a step whose function returns anything else raises
    `StepResultError` (a `ValueError`, as in plugboard). The decorated name still calls the
    function; `.component(name=...)` builds a component, and the function's import path
    (`my_module.pow2`) names the component class in a YAML model, also on Ray.

    Example:
        ```python
        @component(inputs=["in_1"], outputs=["out_1"])
        def pow2(in_1: int) -> dict[str, int]:
            return {"out_1": in_1**2}

        pow2(3)  # {"out_1": 9}
        squares = pow2.component(name="squares")
        ```

    Args:
        inputs: The input fields, which are the function's parameters.
        outputs: The output fields, which are the keys of the dict it returns.

    Returns:
        A decorator that turns the function into a `ComponentFunction`.
    """
    field_inputs = list(inputs or ())
    field_outputs = list(outputs or ())

    def decorate(function: _Function) -> ComponentFunction:
        return ComponentFunction(function, _component_class(function, field_inputs, field_outputs))

    return decorate


class ComponentFunction:
    """A function decorated with `@component`: call it, or build components from it.

    Attributes:
        component_class: The component class made from the function.
        wrapped_function: The function itself.
    """

    def __init__(self, function: _Function, component_class: type[Component]) -> None:
        self.wrapped_function = function
        self.component_class = component_class
        self.__name__ = getattr(function, "__name__", "component")
        self.__qualname__ = getattr(function, "__qualname__", self.__name__)
        self.__module__ = function.__module__
        self.__doc__ = function.__doc__

    def component(self, name: str | None = None, **kwargs: _t.Any) -> Component:
        """Builds a component that steps by calling the function.

        Args:
            name: The component's name; by default the function's name and a random suffix.
            **kwargs: The other `ComponentArgsDict` arguments (`initial_values`, ...).
        """
        name = name or f"{self.__name__}_{secrets.token_hex(3)}"
        return self.component_class(name=name, **kwargs)

    def __call__(self, *args: _t.Any, **kwargs: _t.Any) -> _t.Any:
        """Calls the function."""
        return self.wrapped_function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<component function {self.__module__}.{self.__qualname__}>"


def _component_class(function: _Function, inputs: list[str], outputs: list[str]) -> type[Component]:
    name = getattr(function, "__name__", "component")
    is_async = inspect.iscoroutinefunction(function)

    async def step(self: Component) -> None:
        state = self.__dict__
        result = function(**{f: state[f] for f in self.io.inputs})
        if is_async:
            result = await _t.cast(Awaitable[Mapping[str, _t.Any]], result)
        if not isinstance(result, Mapping):
            msg = (
                f"{name}, the step of component {self.name!r}, must return a dict of its "
                f"outputs ({', '.join(outputs) or 'none'}), got {type(result).__name__}"
            )
            raise StepResultError(msg)
        for key, value in result.items():
            setattr(self, key, value)

    doc = (function.__doc__ or "").strip()
    namespace = {
        "__doc__": f"Component made from the function {name}.\n\n{doc}".strip(),
        "__module__": function.__module__,
        "__qualname__": getattr(function, "__qualname__", name),
        "io": IO(inputs=inputs, outputs=outputs),
        "step": step,
        "wrapped_function": staticmethod(function),
    }
    return type(name, (Component,), namespace)
