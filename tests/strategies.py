"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st


__all__ = ["dags"]


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """A random DAG over nodes 0..n-1 (edges go forward; node 0 is the only source)."""
    n = draw(st.integers(2, 7))
    edges: set[tuple[int, int]] = set()
    for target in range(1, n):
        sources = draw(st.sets(st.integers(0, target - 1), min_size=1, max_size=target))
        edges |= {(s, target) for s in sources}
    return n, sorted(edges)
