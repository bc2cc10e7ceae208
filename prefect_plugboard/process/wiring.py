"""How a graph is wired, whatever carries its messages: one plan per component.

Every input field gets one inbox; each connector into it is one sender. The inbox holds as
many messages as the largest `maxsize` among those connectors (unbounded if any is 0). A
component that handles events gets one event inbox, fed by one sender per publisher.
`LocalProcess` builds in-memory channels from these plans; other transports their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.channel import DEFAULT_MAXSIZE, Sender
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.process.event_routes import EventRoutes
from prefect_plugboard.schemas.connector import ConnectorMode


__all__ = ["InputPlan", "OutputTarget", "WorkerPlan", "event_senders", "plan_wiring"]

_S = _t.TypeVar("_S", bound=Sender)


@dataclass(frozen=True)
class InputPlan:
    """An input field: how many messages it holds and how many connectors feed it.

    Attributes:
        maxsize: Most messages its inbox holds (`0`: unbounded).
        senders: How many connectors feed it.
        max_frame_bytes: The largest `max_frame_bytes` among those connectors, for a
            transport that sends messages in frames (its receiver takes no larger frame);
            `None` if none of them has the setting.
    """

    maxsize: int
    senders: int
    max_frame_bytes: int | None = None


@dataclass(frozen=True)
class OutputTarget:
    """One connector leaving an output field.

    Attributes:
        connector: The connector's id.
        component: The component it feeds.
        field: The input field it feeds.
        settings: The connector's settings (`maxsize`, and what its transport adds).
    """

    connector: str
    component: str
    field: str
    settings: Mapping[str, _t.Any]


@dataclass(frozen=True)
class WorkerPlan:
    """How one component is wired: its inputs and, per output field, its connectors.

    Attributes:
        inputs: Per input field, its inbox's size and senders.
        outputs: Per output field, the connectors leaving it.
        events_in: The event inbox of a component that handles events.
        event_targets: Per event type the component publishes, the components to send it to.
    """

    inputs: Mapping[str, InputPlan] = field(default_factory=dict)
    outputs: Mapping[str, tuple[OutputTarget, ...]] = field(default_factory=dict)
    events_in: InputPlan | None = None
    event_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def plan_wiring(
    components: Mapping[str, Component], connectors: Iterable[Connector]
) -> dict[str, WorkerPlan]:
    """Returns each component's wiring plan, by name."""
    into: defaultdict[tuple[str, str], list[Connector]] = defaultdict(list)
    out: defaultdict[tuple[str, str], list[OutputTarget]] = defaultdict(list)
    for connector in connectors:
        spec = connector.spec
        if spec.mode is not ConnectorMode.PIPELINE:
            continue
        into[(spec.target.entity, spec.target.descriptor)].append(connector)
        out[(spec.source.entity, spec.source.descriptor)].append(
            OutputTarget(
                connector=connector.id,
                component=spec.target.entity,
                field=spec.target.descriptor,
                settings=connector.settings(),
            )
        )
    routes = EventRoutes.of(components.values())
    plans = {}
    for name, component in components.items():
        inputs = {}
        for input_field in component.io.inputs:
            feeding = into[(name, input_field)]
            sizes = [c.maxsize for c in feeding]
            if sizes:  # an input no connector feeds is populated by an event handler
                settings = [c.settings() for c in feeding]
                frames = [s["max_frame_bytes"] for s in settings if "max_frame_bytes" in s]
                inputs[input_field] = InputPlan(
                    0 if 0 in sizes else max(sizes), len(sizes), max(frames, default=None)
                )
        outputs = {f: tuple(out[(name, f)]) for f in component.io.outputs if out[(name, f)]}
        events_in = (
            InputPlan(DEFAULT_MAXSIZE, len(routes.feeds(name)))
            if component.io.input_events
            else None
        )
        event_targets = {t: tuple(s) for t, s in routes.targets(name).items() if s}
        plans[name] = WorkerPlan(inputs, outputs, events_in, event_targets)
    return plans


def event_senders(
    plan: WorkerPlan, to_subscriber: Callable[[str], _S]
) -> tuple[dict[str, list[Sender]], list[_S]]:
    """A publisher's event senders: one per subscriber, shared by the event types it hears.

    Args:
        plan: The publisher's plan.
        to_subscriber: Opens the sender to one subscriber.

    Returns:
        Per event type, the senders to its subscribers; and every sender opened, once each.
    """
    opened: dict[str, _S] = {}
    by_type: dict[str, list[Sender]] = {}
    for event_type, subscribers in plan.event_targets.items():
        for subscriber in subscribers:
            if subscriber not in opened:
                opened[subscriber] = to_subscriber(subscriber)
            by_type.setdefault(event_type, []).append(opened[subscriber])
    return by_type, list(opened.values())
