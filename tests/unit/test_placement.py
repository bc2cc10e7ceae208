"""Which components share a Ray worker process (no Ray needed to decide it)."""

from __future__ import annotations

from prefect_plugboard import Resource
from prefect_plugboard.process.ray.placement import HostPlan, plan_hosts, total
from prefect_plugboard.testing import PassThrough


def component(name: str, **resources: object) -> PassThrough:
    return PassThrough(name=name, resources=resources or None)


def test_small_components_share_a_worker_up_to_one_cpu_in_their_order() -> None:
    components = [component(f"c{i}", cpu=0.3) for i in range(5)]
    hosts = plan_hosts(components)
    assert [h.components for h in hosts] == [("c0", "c1", "c2"), ("c3", "c4")]
    assert [round(h.resources.cpu, 6) for h in hosts] == [0.9, 0.6]


def test_fifty_components_of_a_fiftieth_of_a_cpu_fit_one_worker() -> None:
    hosts = plan_hosts([component(f"c{i}", cpu=0.02) for i in range(50)])
    assert len(hosts) == 1 and len(hosts[0].components) == 50


def test_a_whole_cpu_a_gpu_or_a_custom_resource_gets_a_worker_of_its_own() -> None:
    components = [
        component("a"),
        component("cpu", cpu=1),
        component("gpu", cpu=0.1, gpu=1),
        component("custom", cpu=0.1, resources={"custom_hardware": 1}),
        component("b", memory="1Gi"),
    ]
    hosts = plan_hosts(components)
    assert [h.components for h in hosts] == [("cpu",), ("gpu",), ("custom",), ("a", "b")]
    assert hosts[-1].resources == Resource(cpu=0.002, memory="1Gi")


def test_no_sharing_and_all_in_one() -> None:
    components = [component("a"), component("b", cpu=2, gpu=1), component("c")]
    assert [h.components for h in plan_hosts(components, "none")] == [("a",), ("b",), ("c",)]
    assert plan_hosts(components, "all") == [
        HostPlan(("a", "b", "c"), total([c.resources for c in components]))
    ]
    assert total([c.resources for c in components]) == Resource(cpu=2.002, gpu=1)
