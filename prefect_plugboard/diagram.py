"""Mermaid diagrams of a process's graph: components, the connectors between them, events.

Components are rounded nodes and connectors solid arrows; each event type is a hexagon, with
dotted arrows from its publishers and to its subscribers (the library's own `StopEvent` is
left out), as plugboard draws them.
"""

from __future__ import annotations

import base64
import json
import typing as _t
import zlib

from prefect_plugboard.events.event import SystemEvent
from prefect_plugboard.schemas.connector import ConnectorMode


if _t.TYPE_CHECKING:
    from prefect_plugboard.events.event import Event
    from prefect_plugboard.process.process import Process


__all__ = ["MermaidDiagram", "markdown_diagram", "mermaid_diagram", "mermaid_live_url"]


def _node(process: Process, name: str) -> str:
    component = process.components[name]
    return f"{name}@{{ shape: rounded, label: {type(component).__name__}<br>**{name}** }}"


def _event_node(event: type[Event]) -> str:
    return f"{event.safe_type()}@{{ shape: hex, label: {event.__name__} }}"


def mermaid_diagram(process: Process) -> str:
    """Returns the graph as a Mermaid flowchart.

    Example:
        ```text
        flowchart LR
            input@{ shape: rounded, label: Iterator<br>**input** } --> slow@{ ... }
            clock@{ shape: rounded, label: Clock<br>**clock** } -.-> tick@{ shape: hex, ... }
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
    for name, component in process.components.items():
        for event in component.io.output_events:
            if not issubclass(event, SystemEvent):
                linked.add(name)
                lines.append(f"    {_node(process, name)} -.-> {_event_node(event)}")
    for name, component in process.components.items():
        for event in component.io.input_events:
            if not issubclass(event, SystemEvent):
                linked.add(name)
                lines.append(f"    {_event_node(event)} -.-> {_node(process, name)}")
    lines += [f"    {_node(process, n)}" for n in process.components if n not in linked]
    return "\n".join(lines)


def mermaid_live_url(diagram: str) -> str:
    """A https://mermaid.live link that opens the diagram in the editor."""
    state = json.dumps({"code": diagram, "mermaid": {"theme": "default"}}).encode()
    encoded = base64.urlsafe_b64encode(zlib.compress(state, 9)).decode().rstrip("=")
    return f"https://mermaid.live/edit#pako:{encoded}"


class MermaidDiagram:
    """A process's graph as a Mermaid flowchart, as plugboard's `MermaidDiagram`.

    Example:
        ```python
        diagram = MermaidDiagram.from_process(process)
        print(diagram.diagram)  # the flowchart
        print(diagram.url)  # opens it in mermaid.live
        ```

    Args:
        spec: The flowchart's text.
    """

    def __init__(self, spec: str) -> None:
        self._spec = spec

    @classmethod
    def from_process(cls, process: Process, **kwargs: _t.Any) -> MermaidDiagram:
        """The diagram of `process`'s components, connectors and events."""
        return cls(mermaid_diagram(process), **kwargs)

    @property
    def diagram(self) -> str:
        """The flowchart's text."""
        return self._spec

    @property
    def url(self) -> str:
        """A https://mermaid.live link that opens the diagram in the editor."""
        return mermaid_live_url(self._spec)

    def __str__(self) -> str:
        return self._spec


def markdown_diagram(process: Process) -> str:
    """The diagram of `process` as a fenced `mermaid` block, ready for Markdown."""
    return f"```mermaid\n{mermaid_diagram(process)}\n```"
