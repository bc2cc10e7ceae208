"""Nothing is lost or reordered: properties over chains, fan-out, fan-in and loops."""

import asyncio
from collections import Counter as Multiset
import typing as _t

from hypothesis import given, settings, strategies as st

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    LocalProcess,
)
from prefect_plugboard.testing import Collector, ListSource, PassThrough, run_in_memory
from tests.strategies import dags


sizes = st.one_of(st.just(0), st.integers(min_value=1, max_value=4))
items = st.lists(st.integers(), max_size=60)
PROFILE = settings(max_examples=60, deadline=None)


def edge(source: str, target: str, maxsize: int) -> AsyncioConnector:
    return AsyncioConnector(spec=ConnectorSpec(source=source, target=target), maxsize=maxsize)


def run(process: LocalProcess) -> None:
    asyncio.run(asyncio.wait_for(run_in_memory(process), 10))


@PROFILE
@given(values=items, length=st.integers(0, 5), maxsizes=st.lists(sizes, min_size=6, max_size=6))
def test_chain_keeps_every_value_in_order(
    values: list[int], length: int, maxsizes: list[int]
) -> None:
    names = ["src", *[f"p{i}" for i in range(length)], "sink"]
    sink = Collector(name="sink")
    components: list[Component] = [ListSource(name="src", items=values)]
    components += [PassThrough(name=n) for n in names[1:-1]] + [sink]
    connectors = [
        edge(f"{a}.{'x' if a == 'src' else 'y'}", f"{b}.x", maxsizes[i])
        for i, (a, b) in enumerate(zip(names, names[1:], strict=False))
    ]
    run(LocalProcess(components=components, connectors=connectors))
    assert sink.received == values


@PROFILE
@given(values=items, targets=st.integers(1, 5), maxsize=sizes)
def test_fan_out_gives_every_target_everything_in_order(
    values: list[int], targets: int, maxsize: int
) -> None:
    sinks = [Collector(name=f"s{i}") for i in range(targets)]
    run(
        LocalProcess(
            components=[ListSource(name="src", items=values), *sinks],
            connectors=[edge("src.x", f"s{i}.x", maxsize) for i in range(targets)],
        )
    )
    assert all(s.received == values for s in sinks)


@PROFILE
@given(
    streams=st.lists(st.integers(0, 40), min_size=1, max_size=5),
    maxsizes=st.lists(sizes, min_size=5, max_size=5),
)
def test_fan_in_delivers_each_value_once_keeping_per_connector_order(
    streams: list[int], maxsizes: list[int]
) -> None:
    sources = [
        ListSource(name=f"src{i}", items=[(i, n) for n in range(count)])
        for i, count in enumerate(streams)
    ]
    sink = Collector(name="sink")
    run(
        LocalProcess(
            components=[*sources, sink],
            connectors=[edge(f"src{i}.x", "sink.x", maxsizes[i]) for i in range(len(streams))],
        )
    )
    assert len(sink.received) == sum(streams)
    for i, count in enumerate(streams):
        assert [n for s, n in sink.received if s == i] == list(range(count))


class Counter(Component):
    """Emits feedback + 1 until it reaches `limit`."""

    io = IO(inputs=["fb"], outputs=["out"])

    def __init__(self, limit: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._limit = limit

    async def step(self) -> None:
        self.out = self.fb + 1
        if self.out >= self._limit:
            await self.io.close()


@PROFILE
@given(limit=st.integers(1, 80), hops=st.integers(1, 4), maxsize=sizes)
def test_a_loop_with_initial_values_runs_every_round(limit: int, hops: int, maxsize: int) -> None:
    tap = Collector(name="tap")
    relays = [PassThrough(name=f"r{i}") for i in range(hops)]
    names = ["count", *[r.name for r in relays]]
    connectors = [edge("count.out", "tap.x", maxsize), edge("count.out", "r0.x", maxsize)]
    connectors += [
        edge(f"{a}.y", f"{b}.x", maxsize) for a, b in zip(names[1:], names[2:], strict=False)
    ]
    connectors.append(edge(f"{names[-1]}.y", "count.fb", maxsize))
    run(
        LocalProcess(
            components=[
                Counter(name="count", limit=limit, initial_values={"fb": [0]}),
                *relays,
                tap,
            ],
            connectors=connectors,
        )
    )
    assert tap.received == list(range(1, limit))


@PROFILE
@given(dag=dags(), values=st.lists(st.integers(), max_size=15), maxsize=sizes)
def test_every_value_reaches_every_node_once_per_path(
    dag: tuple[int, list[tuple[int, int]]], values: list[int], maxsize: int
) -> None:
    n, edges = dag
    taps = [Collector(name=f"tap{i}") for i in range(1, n)]
    components: list[Component] = [ListSource(name="n0", items=values)]
    components += [PassThrough(name=f"n{i}") for i in range(1, n)]
    components += taps
    connectors = [edge(f"n{s}.{'x' if s == 0 else 'y'}", f"n{t}.x", maxsize) for s, t in edges]
    connectors += [edge(f"n{i}.y", f"tap{i}.x", maxsize) for i in range(1, n)]
    run(LocalProcess(components=components, connectors=connectors))
    paths = [1] + [0] * (n - 1)
    for s, t in edges:  # edges are sorted by source, and sources precede targets
        paths[t] += paths[s]
    for i, tap in enumerate(taps, start=1):
        assert Multiset(tap.received) == Multiset(
            {v: paths[i] * c for v, c in Multiset(values).items()}
        )
