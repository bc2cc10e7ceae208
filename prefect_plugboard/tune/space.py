"""The search space of a study, and what a trial's config changes in the model.

A trial's config maps full names (`component.trajectory.arg.angle`) to values; each becomes
an override of the model, as `prefect-plugboard run -p` takes them. A define-by-run space
function may also name a parameter plugboard's tutorial way, `trajectory.angle`: it stands
for the declared parameter of that component and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import functools
import importlib
import inspect
import logging
import typing as _t

from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.tune.specs import (
    CategoricalParameterSpec,
    FloatParameterSpec,
    IntParameterSpec,
)


__all__ = ["SearchSpace", "resolve_space_function"]

_logger = logging.getLogger(__name__)

Parameter = FloatParameterSpec | IntParameterSpec | CategoricalParameterSpec


class SearchSpace:
    """The declared parameters of a study, and the overrides a trial's config makes.

    Args:
        parameters: The declared parameters.
    """

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        self.parameters = list(parameters)
        self._by_name = {p.full_name: p for p in self.parameters}
        short: dict[str, list[str]] = {}
        for p in self.parameters:
            if p.object_type == "component":
                short.setdefault(f"{p.object_name}.{p.field_name}", []).append(p.full_name)
        self._short = {k: v[0] for k, v in short.items() if len(v) == 1}

    @property
    def names(self) -> list[str]:
        """The parameters' full names."""
        return list(self._by_name)

    def ray_space(self) -> dict[str, _t.Any]:
        """The space as Ray Tune's sampling domains, by full name."""
        from ray import tune

        space: dict[str, _t.Any] = {}
        for p in self.parameters:
            if isinstance(p, FloatParameterSpec):
                space[p.full_name] = tune.uniform(p.lower, p.upper)
            elif isinstance(p, IntParameterSpec):
                space[p.full_name] = tune.randint(p.lower, p.upper)
            else:
                space[p.full_name] = tune.choice(p.categories)
        return space

    def overrides(self, config: Mapping[str, _t.Any]) -> dict[str, _t.Any]:
        """The model overrides for a trial's config.

        Full names are overrides as they are; `object.field` names the declared parameter
        of that component and field; anything else (a define-by-run function's own
        intermediate values) changes nothing in the model.
        """
        overrides: dict[str, _t.Any] = {}
        for name, value in config.items():
            full = name if _is_full_name(name) else self._short.get(name)
            if full is None:
                _logger.debug("Trial value %r names no parameter; the model keeps its own", name)
                continue
            parameter = self._by_name.get(full)
            if (
                parameter is not None
                and parameter.field_type == "initial_value"
                and not isinstance(value, list)
            ):
                value = [value]  # one initial value, consumed at the first step
            overrides[full] = value
        return overrides

    def check_points(self, points: Sequence[Mapping[str, _t.Any]]) -> list[Issue]:
        """Problems with warm-start points: names that are no parameter, values off range."""
        issues = []
        for index, point in enumerate(points):
            where = f"tune.args.algorithm.points_to_evaluate[{index}]"
            for name, value in point.items():
                parameter = self._by_name.get(name)
                if parameter is None:
                    issues.append(
                        Issue(
                            f"{name!r} is not a parameter of the study; its parameters: "
                            f"{', '.join(self.names)}",
                            where,
                        )
                    )
                    continue
                problem = _off_range(parameter, value)
                if problem:
                    issues.append(Issue(f"{name}: {problem}", where))
            missing = [n for n in self.names if n not in point]
            if missing:
                issues.append(Issue(f"gives no value for {', '.join(missing)}", where))
        return issues


def _off_range(parameter: Parameter, value: _t.Any) -> str:
    if isinstance(parameter, CategoricalParameterSpec):
        return "" if value in parameter.categories else f"{value!r} is not one of the categories"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"{value!r} is not a number"
    if isinstance(parameter, IntParameterSpec):
        if value != int(value) or not parameter.lower <= value < parameter.upper:
            return f"{value!r} is not an integer in [{parameter.lower}, {parameter.upper})"
        return ""
    if not parameter.lower <= value <= parameter.upper:
        return f"{value!r} is outside [{parameter.lower:g}, {parameter.upper:g}]"
    return ""


def _is_full_name(name: str) -> bool:
    parts = name.split(".")
    return (len(parts) >= 4 and parts[0] == "component") or (
        len(parts) >= 4 and parts[:3] == ["process", "default", "parameter"]
    )


def resolve_space_function(path: str, spec: _t.Any) -> Callable[[_t.Any], _t.Any]:
    """Imports a define-by-run search space `module.function`.

    Args:
        path: Where the function is.
        spec: The process's spec, passed as `spec=` if the function takes it.

    Raises:
        ValidationError: The module or function cannot be found, or is not callable.
    """
    module_name, _, name = path.rpartition(".")
    where = "tune.args.algorithm.space"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        raise ValidationError(
            [Issue(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}", where)],
            subject="the study",
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ValidationError(
            [Issue(f"module {module_name!r} has no function {name!r}", where)],
            subject="the study",
        )
    try:
        takes_spec = "spec" in inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        takes_spec = False
    return functools.partial(function, spec=spec) if takes_spec else function
