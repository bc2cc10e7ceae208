"""Specifications of the connections between components."""

from __future__ import annotations

from enum import StrEnum
import re
import typing as _t

from pydantic import BaseModel, ConfigDict, model_validator


__all__ = ["ConnectorMode", "ConnectorSocket", "ConnectorSpec", "SocketLike"]

ENTITY_PATTERN = r"[a-zA-Z_][a-zA-Z0-9_\-]*"
DESCRIPTOR_PATTERN = r"[a-zA-Z_][a-zA-Z0-9_]*"
_REFERENCE = re.compile(rf"^({ENTITY_PATTERN})\.({DESCRIPTOR_PATTERN})$")


class ConnectorMode(StrEnum):
    """How a connector delivers messages.

    `pipeline`: every message goes to the one target, in order. `pubsub`: every message goes to
    every subscriber (used for events).
    """

    PIPELINE = "pipeline"
    PUBSUB = "pubsub"


class ConnectorSocket(BaseModel):
    """One end of a connector: an entity (a component name) and a descriptor (a field name).

    Written as `"component.field"` or as `{entity: component, descriptor: field}`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    descriptor: str

    @model_validator(mode="before")
    @classmethod
    def _from_reference(cls, value: _t.Any) -> _t.Any:
        if isinstance(value, str):
            match = _REFERENCE.match(value)
            if match is None:
                msg = (
                    f"{value!r} is not a 'component.field' reference (a name, a dot, a field "
                    "name; names start with a letter or '_')"
                )
                raise ValueError(msg)
            return {"entity": match.group(1), "descriptor": match.group(2)}
        if isinstance(value, dict):
            entity, descriptor = value.get("entity"), value.get("descriptor")
            if isinstance(entity, str) and not re.fullmatch(ENTITY_PATTERN, entity):
                msg = f"entity {entity!r} is not a valid component name"
                raise ValueError(msg)
            if isinstance(descriptor, str) and not re.fullmatch(DESCRIPTOR_PATTERN, descriptor):
                msg = f"descriptor {descriptor!r} is not a valid field name"
                raise ValueError(msg)
        return value

    @property
    def reference(self) -> str:
        """The `"entity.descriptor"` form."""
        return f"{self.entity}.{self.descriptor}"

    def __str__(self) -> str:
        return self.reference


SocketLike: _t.TypeAlias = ConnectorSocket | str | dict[str, str]


class ConnectorSpec(BaseModel):
    """A connection from a component's output field to another component's input field.

    Example:
        ```python
        ConnectorSpec(source="input.x", target="slow-sleep.x")
        ConnectorSpec(source={"entity": "input", "descriptor": "x"}, target="slow-sleep.x")
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: ConnectorSocket
    target: ConnectorSocket
    mode: ConnectorMode = ConnectorMode.PIPELINE

    if _t.TYPE_CHECKING:

        def __init__(
            self,
            *,
            source: SocketLike,
            target: SocketLike,
            mode: ConnectorMode | str = ConnectorMode.PIPELINE,
        ) -> None: ...

    @property
    def id(self) -> str:
        """A unique id, `"source..target"`."""
        return f"{self.source}..{self.target}"

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"
