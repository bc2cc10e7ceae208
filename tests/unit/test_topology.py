"""Loops and start order over "who feeds whom"."""

from __future__ import annotations

from hypothesis import given, strategies as st

from prefect_plugboard.process.topology import strongly_connected, upstream_order


def test_loops_are_grouped_in_graph_order() -> None:
    graph = {"c": [], "a": ["b"], "b": ["a", "c"], "d": ["d"]}
    assert strongly_connected(graph) == [["c"], ["a", "b"], ["d"]]


def test_a_loop_comes_before_what_it_feeds_whatever_the_given_order() -> None:
    assert upstream_order({"c": [], "a": ["b"], "b": ["a", "c"]}) == ["a", "b", "c"]


def test_a_loop_is_entered_where_it_is_fed_from_outside() -> None:
    graph = {"a": ["b"], "b": ["a", "sink"], "src": ["b"], "sink": []}
    assert upstream_order(graph) == ["src", "b", "a", "sink"]


def test_independent_parts_keep_the_given_order() -> None:
    graph = {"y": [], "x": ["y2"], "y2": [], "z": []}
    assert upstream_order(graph) == ["y", "x", "y2", "z"]
    assert upstream_order({"p": [], "q": [], "r": []}) == ["p", "q", "r"]


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    nodes = [f"n{i}" for i in range(draw(st.integers(1, 8)))]
    return {node: draw(st.lists(st.sampled_from(nodes), max_size=3, unique=True)) for node in nodes}


@given(graphs())
def test_every_link_outside_a_loop_points_downstream(graph: dict[str, list[str]]) -> None:
    order = upstream_order(graph)
    assert sorted(order) == sorted(graph)
    group_of = {n: i for i, group in enumerate(strongly_connected(graph)) for n in group}
    position = {n: i for i, n in enumerate(order)}
    for source, targets in graph.items():
        for target in targets:
            if group_of[source] != group_of[target]:
                assert position[source] < position[target], (source, target, order)


@given(graphs())
def test_groups_are_exactly_the_mutually_reachable_nodes(graph: dict[str, list[str]]) -> None:
    def reach(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for succ in graph[todo.pop()]:
                if succ not in seen:
                    seen.add(succ)
                    todo.append(succ)
        return seen

    reachable = {n: reach(n) for n in graph}
    for group in strongly_connected(graph):
        for node in graph:
            together = group[0] in reachable[node] and node in reachable[group[0]]
            assert (node in group) == together
