"""Which components share a Ray worker process: the hosts of a run.

Starting a worker process costs about a second of CPU here (Python, Ray, the component's
modules), so a graph of many small components should not start one process per component.
Components that ask for less than a whole CPU, and for no GPU and no custom resource, share
a worker process, up to one CPU's worth per process; each of them still runs in its own
thread, so components that block (`time.sleep`, I/O, NumPy) overlap as on separate workers,
while pure-Python computation takes turns on the interpreter lock. A component that asks for
a CPU or more, a GPU or a custom resource gets a worker of its own, placed and assigned
exactly what it asked for. That is `"small"` sharing, the default; `"none"` gives every
component a worker of its own, `"all"` puts every component in one worker (which asks for what
they ask together), as a `LocalProcess` would run them, but on the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.schemas.resource import Resource


__all__ = ["SHARED_CPU_LIMIT", "HostPlan", "WorkerSharing", "plan_hosts", "total"]

WorkerSharing = _t.Literal["small", "none", "all"]
"""How components share worker processes: see the module's docstring."""

SHARED_CPU_LIMIT = 1.0
"""The most CPU that the components sharing one worker process ask for together."""
_EPSILON = 1e-9


@dataclass(frozen=True)
class HostPlan:
    """One worker process of a run: the components it runs and what it asks Ray for.

    Attributes:
        components: The components' names.
        resources: What they ask for together.
    """

    components: tuple[str, ...]
    resources: Resource


def total(resources: Sequence[Resource]) -> Resource:
    """What several components ask for together."""
    custom: dict[str, float] = {}
    for r in resources:
        for key, value in r.resources.items():
            custom[key] = custom.get(key, 0.0) + value
    return Resource(
        cpu=sum(r.cpu for r in resources),
        gpu=sum(r.gpu for r in resources),
        memory=sum(r.memory for r in resources),
        resources=custom,
    )


def _shareable(resources: Resource) -> bool:
    return resources.cpu < SHARED_CPU_LIMIT and not resources.gpu and not resources.resources


def plan_hosts(components: Sequence[Component], sharing: WorkerSharing = "small") -> list[HostPlan]:
    """Groups components into worker processes, keeping their order.

    Args:
        components: The components, upstream first (neighbours then share a process).
        sharing: `"small"`, `"none"` or `"all"` (see the module's docstring).

    Returns:
        One plan per worker process.
    """
    if sharing == "all":
        return [
            HostPlan(tuple(c.name for c in components), total([c.resources for c in components]))
        ]
    share = sharing == "small"
    hosts: list[HostPlan] = []
    group: list[Component] = []
    group_cpu = 0.0

    def close_group() -> None:
        nonlocal group, group_cpu
        if group:
            hosts.append(
                HostPlan(tuple(c.name for c in group), total([c.resources for c in group]))
            )
        group, group_cpu = [], 0.0

    for component in components:
        resources = component.resources
        if not (share and _shareable(resources)):
            hosts.append(HostPlan((component.name,), resources))
            continue
        if group and group_cpu + resources.cpu > SHARED_CPU_LIMIT + _EPSILON:
            close_group()
        group.append(component)
        group_cpu += resources.cpu
    close_group()
    return hosts
