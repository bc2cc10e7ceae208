"""Typed keyword arguments shared by every component constructor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import typing as _t

from prefect_plugboard.schemas.resource import Resource


__all__ = ["ComponentArgsDict"]


class ComponentArgsDict(_t.TypedDict, total=False):
    """The keyword arguments every `Component` accepts.

    Use it to type a subclass's extra keyword arguments:
    `def __init__(self, iters: int, **kwargs: Unpack[ComponentArgsDict])`.

    Attributes:
        name: Unique name of the component in its process (letters, digits, `_` and `-`).
        initial_values: Values consumed by an input field, one per step, before its channel is
            read. Needed on an input inside a loop of the graph.
        parameters: Parameters for this component; merged over the process's parameters.
        resources: Compute resources, replacing the class's `resources`.
        constraints: Accepted for plugboard compatibility and not used (a warning says so).
    """

    name: _t.Required[str]
    initial_values: Mapping[str, Iterable[_t.Any]]
    parameters: Mapping[str, _t.Any]
    resources: Resource | Mapping[str, _t.Any] | None
    constraints: Mapping[str, _t.Any] | None
