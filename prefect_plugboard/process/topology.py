"""Graph algorithms over "who feeds whom": loops (strongly connected groups) and a start order.

A graph here maps each node to the nodes it feeds, in a meaningful order (the order the
components were given in); every result keeps to that order where the graph leaves a choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import heapq


__all__ = ["strongly_connected", "upstream_order"]

Graph = Mapping[str, Sequence[str]]


def strongly_connected(graph: Graph) -> list[list[str]]:
    """The graph's strongly connected groups (Tarjan's algorithm, iterative).

    A node on no loop is a group of its own. Groups, and the nodes within each, come out in
    the graph's order (by their first node).
    """
    position = {node: i for i, node in enumerate(graph)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = graph[node]
            if child < len(successors):
                work.append((node, child + 1))
                succ = successors[child]
                if succ not in index:
                    work.append((succ, 0))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group, key=position.__getitem__))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    groups.sort(key=lambda group: position[group[0]])
    return groups


def upstream_order(graph: Graph) -> list[str]:
    """Every node after the nodes that feed it, as far as loops allow.

    Loops are taken as wholes: a loop comes after everything feeding it and before everything
    it feeds. Inside a loop, the order starts at the first member fed from outside it (or its
    first member) and follows the loop's own links. Ties keep the graph's order.
    """
    position = {node: i for i, node in enumerate(graph)}
    groups = strongly_connected(graph)
    group_of = {node: g for g, members in enumerate(groups) for node in members}
    waiting_on = [0] * len(groups)
    fed_from_outside: set[str] = set()
    for source, targets in graph.items():
        for target in set(targets):
            if group_of[source] != group_of[target]:
                waiting_on[group_of[target]] += 1
                fed_from_outside.add(target)
    ready = [(position[members[0]], g) for g, members in enumerate(groups) if not waiting_on[g]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, g = heapq.heappop(ready)
        members = groups[g]
        entry = next((m for m in members if m in fed_from_outside), members[0])
        order += _follow(graph, set(members), entry, position)
        for source in members:
            for target in set(graph[source]):
                h = group_of[target]
                if h != g:
                    waiting_on[h] -= 1
                    if not waiting_on[h]:
                        heapq.heappush(ready, (position[groups[h][0]], h))
    return order


def _follow(graph: Graph, members: set[str], entry: str, position: Mapping[str, int]) -> list[str]:
    """The members of a loop, breadth first along its links from `entry`."""
    order = [entry]
    seen = {entry}
    for node in order:
        for succ in sorted(graph[node], key=position.__getitem__):
            if succ in members and succ not in seen:
                seen.add(succ)
                order.append(succ)
    return order
