"""Compute resources a component asks for, in Kubernetes-style units."""

from __future__ import annotations

import re
import typing as _t

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator


__all__ = ["Resource", "parse_quantity"]

_DECIMAL_SUFFIXES: dict[str, float] = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_BINARY_SUFFIXES: dict[str, float] = {
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$")
# Ray keeps fractional resources to four decimal places.
_RAY_PRECISION = 4


def parse_quantity(value: float | int | str) -> float:
    """Parses a number or a Kubernetes-style quantity string.

    Args:
        value: A number, or a string such as `"500m"` (0.5), `"5k"` (5000) or `"512Mi"`
            (536870912).

    Returns:
        The quantity as a float.

    Raises:
        ValueError: The string is not a number with a known suffix, or the value is negative.
    """
    if isinstance(value, bool):
        msg = f"expected a number or a quantity string such as '500m', got {value!r}"
        raise ValueError(msg)
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _QUANTITY.match(str(value))
        if match is None:
            msg = f"{value!r} is not a quantity; use a number or e.g. '500m', '2', '512Mi', '2Gi'"
            raise ValueError(msg)
        digits, suffix = match.groups()
        scale = _DECIMAL_SUFFIXES.get(suffix) or _BINARY_SUFFIXES.get(suffix)
        if scale is None:
            known = ", ".join(s for s in [*_DECIMAL_SUFFIXES, *_BINARY_SUFFIXES] if s)
            msg = f"{value!r} has an unknown suffix {suffix!r}; known suffixes: {known}"
            raise ValueError(msg)
        number = float(digits) * scale
    if number < 0:
        msg = f"a resource quantity cannot be negative, got {value!r}"
        raise ValueError(msg)
    return number


QUANTITY_PATTERN = r"^\s*(\d+(\.\d+)?|\.\d+)\s*(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\s*$"
QUANTITY_JSON_SCHEMA: dict[str, _t.Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": QUANTITY_PATTERN},
    ]
}
"""JSON Schema of a quantity: a number, or a string such as "500m" or "512Mi"."""

_Quantity = _t.Annotated[float, WithJsonSchema(QUANTITY_JSON_SCHEMA)]


class Resource(BaseModel):
    """The compute resources a component needs while it runs.

    Values are numbers or Kubernetes-style strings: decimal suffixes (`"500m"` is 0.5, `"5k"` is
    5000) and binary ones (`"512Mi"`, `"2Gi"`). A class attribute `resources = Resource(...)`
    sets a component class's default; the `resources` constructor argument (or YAML key)
    replaces it for one component.

    Attributes:
        cpu: CPUs, fractions allowed. The small default lets many long-lived components share a
            core, as they mostly wait for input.
        gpu: GPUs, fractions allowed.
        memory: Memory in bytes, reserved for scheduling (Ray does not enforce it).
        resources: Custom resources by name, e.g. `{"custom_hardware": 2}`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: _Quantity = Field(default=0.001, description="CPUs, e.g. 1, 0.5 or '500m'.")
    gpu: _Quantity = Field(default=0, description="GPUs, e.g. 1 or 0.5.")
    memory: _t.Annotated[int, WithJsonSchema(QUANTITY_JSON_SCHEMA)] = Field(
        default=0, description="Memory in bytes, e.g. 536870912 or '512Mi'."
    )
    resources: dict[str, _Quantity] = Field(
        default_factory=dict, description="Custom resources by name, e.g. {custom_hardware: 2}."
    )

    if _t.TYPE_CHECKING:
        # Strings are accepted and parsed; tell type checkers so.
        def __init__(
            self,
            *,
            cpu: float | str = ...,
            gpu: float | str = ...,
            memory: int | float | str = ...,
            resources: _t.Mapping[str, float | str] = ...,
        ) -> None: ...

    @field_validator("cpu", "gpu", mode="before")
    @classmethod
    def _parse_amount(cls, value: _t.Any) -> float:
        return parse_quantity(value)

    @field_validator("memory", mode="before")
    @classmethod
    def _parse_memory(cls, value: _t.Any) -> int:
        return round(parse_quantity(value))

    @field_validator("resources", mode="before")
    @classmethod
    def _parse_custom(cls, value: _t.Any) -> dict[str, float]:
        if not isinstance(value, _t.Mapping):
            msg = f"custom resources must be a mapping of name to amount, got {value!r}"
            raise ValueError(msg)
        return {str(name): parse_quantity(amount) for name, amount in value.items()}

    def to_ray_options(self) -> dict[str, _t.Any]:
        """Returns the Ray scheduling options for these resources.

        `num_cpus` is always present (a Ray task without it asks for a whole CPU); the other
        keys only when non-zero.

        Returns:
            A dict with `num_cpus` and, where requested, `num_gpus`, `memory` and `resources`.
        """
        options: dict[str, _t.Any] = {"num_cpus": round(self.cpu, _RAY_PRECISION)}
        if self.gpu:
            options["num_gpus"] = round(self.gpu, _RAY_PRECISION)
        if self.memory:
            options["memory"] = self.memory
        custom = {k: round(v, _RAY_PRECISION) for k, v in self.resources.items() if v}
        if custom:
            options["resources"] = custom
        return options

    def to_bundle(self) -> dict[str, float]:
        """Returns these resources as a Ray placement-group bundle (`CPU`, `GPU`, ...)."""
        opts = self.to_ray_options()
        bundle: dict[str, float] = {"CPU": opts["num_cpus"]}
        if "num_gpus" in opts:
            bundle["GPU"] = opts["num_gpus"]
        if "memory" in opts:
            bundle["memory"] = float(opts["memory"])
        bundle.update(opts.get("resources", {}))
        return bundle
