"""The ordering and delivery properties hold with real task runs, inside one user flow."""

import asyncio
from collections import Counter as Multiset
import typing as _t
from uuid import UUID

from hypothesis import given, settings, strategies as st
from prefect import flow
from prefect.runtime import flow_run
import pytest

from prefect_plugboard import AsyncioConnector, Component, ConnectorSpec, LocalProcess
from prefect_plugboard.testing import Collector, ListSource, PassThrough
from tests.prefect_api import settled_task_runs
from tests.strategies import dags


@pytest.mark.slow  # many flow runs
def test_random_graphs_deliver_every_value_once_per_path_as_task_runs() -> None:
    components_started: list[int] = []

    @settings(max_examples=12, deadline=None, database=None)
    @given(dag=dags(), values=st.lists(st.integers(), max_size=10), maxsize=st.integers(0, 3))
    def check(dag: tuple[int, list[tuple[int, int]]], values: list[int], maxsize: int) -> None:
        n, edges = dag
        taps = [Collector(name=f"tap{i}") for i in range(1, n)]
        components: list[Component] = [ListSource(name="n0", items=values)]
        components += [PassThrough(name=f"n{i}") for i in range(1, n)]
        components += taps
        connectors = [
            AsyncioConnector(
                spec=ConnectorSpec(source=f"n{s}.{'x' if s == 0 else 'y'}", target=f"n{t}.x"),
                maxsize=maxsize,
            )
            for s, t in edges
        ]
        connectors += [
            AsyncioConnector(
                spec=ConnectorSpec(source=f"n{i}.y", target=f"tap{i}.x"), maxsize=maxsize
            )
            for i in range(1, n)
        ]
        process = LocalProcess(components=components, connectors=connectors)
        asyncio.run(asyncio.wait_for(process.run(), 30))
        components_started.append(len(components))
        paths = [1] + [0] * (n - 1)
        for s, t in edges:
            paths[t] += paths[s]
        for i, tap in enumerate(taps, start=1):
            expected = Multiset({v: paths[i] * c for v, c in Multiset(values).items()})
            assert Multiset(tap.received) == expected

    @flow(name="property-checks")
    def property_checks() -> _t.Any:
        check()
        return flow_run.id

    flow_run_id = UUID(property_checks())
    runs = asyncio.run(settled_task_runs(flow_run_id, sum(components_started), timeout=60))
    assert all(run.state is not None and run.state.is_completed() for run in runs)
