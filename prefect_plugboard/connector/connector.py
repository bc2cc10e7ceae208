"""`Connector`: one connection from an output field to an input field, with its settings."""

from __future__ import annotations

from collections.abc import Mapping
import typing as _t

from prefect_plugboard.connector.channel import DEFAULT_MAXSIZE
from prefect_plugboard.schemas.connector import ConnectorSpec


__all__ = ["Connector", "ConnectorBuilder"]


class Connector:
    """Connects a component's output field to another component's input field.

    A connector holds the settings of its channel; the process running the graph builds the
    channel where the components run. Several connectors may leave one output (fan-out: every
    target gets every value) or enter one input (fan-in: their messages merge, in order per
    connector, and each step consumes one).

    Args:
        spec: The source and target, e.g. `ConnectorSpec(source="a.x", target="b.x")` or a
            dict of the same.
        maxsize: Most messages in flight on this connector before the sender waits
            (back-pressure). `0` means unbounded.
    """

    transport: _t.ClassVar[str] = "any"
    """The kind of channel: `"asyncio"` (one event loop), `"ray"` (between Ray workers)."""

    def __init__(
        self, spec: ConnectorSpec | Mapping[str, _t.Any], *, maxsize: int = DEFAULT_MAXSIZE
    ) -> None:
        self.spec = spec if isinstance(spec, ConnectorSpec) else ConnectorSpec.model_validate(spec)
        if not isinstance(maxsize, int) or maxsize < 0:
            msg = f"maxsize of connector {self.spec} must be an int >= 0 (0: unbounded)"
            raise ValueError(msg)
        self.maxsize = maxsize

    @property
    def id(self) -> str:
        """The connector's id, `"source..target"`."""
        return self.spec.id

    @classmethod
    def builder(cls, **kwargs: _t.Any) -> ConnectorBuilder:
        """Returns a builder of connectors of this class with the given settings."""
        return ConnectorBuilder(cls, **kwargs)

    def settings(self) -> dict[str, _t.Any]:
        """Returns the connector's settings (constructor arguments other than the spec)."""
        return {"maxsize": self.maxsize}

    def export(self) -> dict[str, _t.Any]:
        """Returns the connector as YAML-ready data: its spec and non-default settings."""
        return {
            "source": self.spec.source.reference,
            "target": self.spec.target.reference,
            **({"mode": str(self.spec.mode)} if self.spec.mode != "pipeline" else {}),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec})"


class ConnectorBuilder:
    """Builds connectors of one class with shared settings from specs.

    Args:
        connector_cls: The connector class to build.
        **kwargs: Settings passed to every connector, e.g. `maxsize`.
    """

    def __init__(self, connector_cls: type[Connector], **kwargs: _t.Any) -> None:
        self.connector_cls = connector_cls
        self.kwargs = kwargs

    def build(self, spec: ConnectorSpec | Mapping[str, _t.Any]) -> Connector:
        """Returns a connector for `spec` with this builder's settings."""
        return self.connector_cls(spec, **self.kwargs)

    def __repr__(self) -> str:
        return f"ConnectorBuilder({self.connector_cls.__name__}, {self.kwargs!r})"
