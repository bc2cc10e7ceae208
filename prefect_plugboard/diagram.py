"""Mermaid diagrams of a process's graph."""

from __future__ import annotations

import base64
import json
import typing as _t
import zlib

from prefect_plugboard.schemas.connector import ConnectorMode


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.process import Process


__all__ = ["mermaid_diagram", "mermaid_live_url"]


def _node(process: Process, name: str) -> str:
    component = process.components[name]
    return f"{name}@{{ shape: rounded, label: {type(component).__name__}<br>**{name}** }}"


def mermaid_diagram(process: Process) -> str:
    """Returns the graph as a Mermaid flowchart: one rounded node per component.

    Example:
        ```text
        flowchart LR
            input@{ shape: rounded, label: Iterator<br>**input** } --> slow@{ ... }
        ```
    """
    lines = ["flowchart LR"]
    linked: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for connector in process.connectors.values():
        spec = connector.spec
        if spec.mode is not ConnectorMode.PIPELINE:
            continue
        source, target = spec.source.entity, spec.target.entity
        if source not in process.components or target not in process.components:
            continue
        if (source, target) in seen:
            continue
        seen.add((source, target))
        linked |= {source, target}
        lines.append(f"    {_node(process, source)} --> {_node(process, target)}")
    lines += [f"    {_node(process, n)}" for n in process.components if n not in linked]
    return "\n".join(lines)


def mermaid_live_url(diagram: str) -> str:
    """A https://mermaid.live link that opens the diagram in the editor."""
    state = json.dumps({"code": diagram, "mermaid": {"theme": "default"}}).encode()
    encoded = base64.urlsafe_b64encode(zlib.compress(state, 9)).decode().rstrip("=")
    return f"https://mermaid.live/edit#pako:{encoded}"
