"""How many trials run at once: what one trial asks of the cluster, and what the cluster has.

A trial runs all its components at once for the whole trial, so it is reserved as a whole:
its worker processes' bundles in one placement group (the sum of its components'
`Resource`; nothing extra for the trial itself, whose Prefect side runs on the driver).
The study runs `min(max_concurrent, trials the cluster holds at once)` trials side by side,
so trials never wait on each other for resources. This is the answer to plugboard's #190,
where a trial asked for a CPU more than its components and a study on 2 cores starved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
import math
import typing as _t

from prefect_plugboard.exceptions import Issue, ResourceError


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.placement import HostPlan


__all__ = ["live_nodes", "trials_at_once"]

_EPSILON = 1e-9


def _describe(amounts: Mapping[str, float]) -> str:
    parts = []
    for key, value in amounts.items():
        parts.append(f"{key} {value / 2**20:.0f}Mi" if key == "memory" else f"{key} {value:g}")
    return ", ".join(parts) or "nothing"


def live_nodes() -> list[dict[str, float]]:
    """What each live node of the connected Ray cluster has (CPU, GPU, memory, custom)."""
    import ray

    return [
        {
            key: float(value)
            for key, value in node["Resources"].items()
            if not key.startswith("node:") and key != "object_store_memory" and "_group_" not in key
        }
        for node in ray.nodes()
        if node.get("Alive")
    ]


def trials_at_once(
    hosts: Sequence[HostPlan],
    max_concurrent: int | None,
    cluster: Mapping[str, float],
    nodes: Sequence[Mapping[str, float]],
) -> int:
    """How many trials the study runs side by side.

    Args:
        hosts: One trial's worker processes, each with its bundle.
        max_concurrent: The user's limit (`None`: one trial per CPU of the cluster).
        cluster: What the whole cluster has (`ray.cluster_resources()`).
        nodes: What each live node has.

    Returns:
        At least 1.

    Raises:
        ResourceError: One trial cannot be placed on the cluster at all: a worker process
            asks more than any node has, or the trial more than the cluster has.
    """
    issues: list[Issue] = []
    trial: defaultdict[str, float] = defaultdict(float)
    for host in hosts:
        bundle = host.resources.to_bundle()
        for key, value in bundle.items():
            trial[key] += value
        if not any(all(n.get(k, 0.0) + _EPSILON >= v for k, v in bundle.items()) for n in nodes):
            names = ", ".join(host.components)
            issues.append(
                Issue(
                    f"one trial runs {names} in one worker process, which asks for "
                    f"{_describe(bundle)}, but no node has that much; the nodes have: "
                    f"{'; '.join(_describe(n) for n in nodes)}. Lower the components' "
                    "`resources` or add a larger node"
                )
            )
    short = {k: v for k, v in trial.items() if v > float(cluster.get(k, 0.0)) + _EPSILON}
    if short and not issues:
        issues.append(
            Issue(
                f"one trial asks for {_describe(short)} (its components together), but the "
                f"cluster has {_describe({k: float(cluster.get(k, 0.0)) for k in short})}. "
                "Lower the components' `resources` or add capacity"
            )
        )
    if issues:
        raise ResourceError(issues, subject="the study's resources")
    fit = min(
        (math.floor(float(cluster[k]) / v + _EPSILON) for k, v in trial.items() if v > 0),
        default=1,
    )
    limit = max_concurrent or max(1, math.floor(float(cluster.get("CPU", 1.0))))
    return max(1, min(limit, fit))
