"""`Connector`: one connection from an output field to an input field, with its settings."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
import typing as _t

from prefect_plugboard.connector.channel import DEFAULT_MAXSIZE
from prefect_plugboard.connector.memory_channel import Channel
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSocket, ConnectorSpec


if _t.TYPE_CHECKING:
    from prefect_plugboard.component.component import Component


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
        self._channel: Channel | None = None

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

    async def connect_send(self) -> Channel:
        """Returns the sending end of this connector's channel, to drive components by hand.

        Processes build their own channels; this is for tests that step a component
        directly (see `IO.connect`). Every call returns the same channel.
        """
        return self._memory_channel()

    async def connect_recv(self) -> Channel:
        """Returns a receiving end of this connector's channel, to drive components by hand.

        A pipeline connector has one receiving end (the sending end's channel); each call on a
        pub/sub connector adds a subscriber that gets every message sent after it joined.
        """
        channel = self._memory_channel()
        if self.spec.mode is ConnectorMode.PUBSUB:
            return channel.subscribe()
        return channel

    def _memory_channel(self) -> Channel:
        if self._channel is None:
            pubsub = self.spec.mode is ConnectorMode.PUBSUB
            make = Channel.broadcast if pubsub else Channel
            self._channel = make(self.maxsize, self.id)
        return self._channel

    def dict(self) -> builtins.dict[str, _t.Any]:
        """Returns the connector's id and spec as plain data."""
        return {"id": self.id, "spec": self.spec.model_dump(mode="json")}

    def __getstate__(self) -> builtins.dict[str, _t.Any]:
        state = self.__dict__.copy()
        state["_channel"] = None  # bound to one event loop; a copy starts without one
        return state

    def export(self) -> builtins.dict[str, _t.Any]:
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

    def build_event_connectors(self, components: Iterable[Component]) -> list[Connector]:
        """Returns one pub/sub connector per event type the components publish or handle.

        Processes wire events by themselves (one broadcast per event type, from every
        publisher to every subscriber), so passing these connectors to a process changes
        nothing; they describe the events, and drive components by hand (`IO.connect`).

        Args:
            components: The components of the model.

        Returns:
            The connectors, in the order their event types are first met.
        """
        types: dict[str, _t.Any] = {}
        for component in components:
            for event in (*component.io.input_events, *component.io.output_events):
                types.setdefault(event.type, event)
        return [
            self.build(
                ConnectorSpec(
                    source=ConnectorSocket(entity=event.safe_type(), descriptor="publishers"),
                    target=ConnectorSocket(entity=event.safe_type(), descriptor="subscribers"),
                    mode=ConnectorMode.PUBSUB,
                )
            )
            for event in types.values()
        ]

    def __repr__(self) -> str:
        return f"ConnectorBuilder({self.connector_cls.__name__}, {self.kwargs!r})"
