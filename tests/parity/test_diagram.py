"""Diagrams as plugboard draws them: components, connectors, and events as hexagons."""

from __future__ import annotations

from pathlib import Path

from parity_complex import Random
from parity_events import CollectHigh, CollectLow, FindHighLowValues

from prefect_plugboard.connector import AsyncioConnector, ConnectorBuilder
from prefect_plugboard.diagram import MermaidDiagram, markdown_diagram
from prefect_plugboard.library import FileWriter
from prefect_plugboard.process import LocalProcess, Process
from prefect_plugboard.schemas import ConnectorSpec
from tests.parity.conftest import Peer


def event_model() -> Process:
    components = [
        Random(name="random", iters=1),
        FindHighLowValues(name="find-high-low"),
        CollectHigh(name="collect-high"),
        CollectLow(name="collect-low"),
        FileWriter(name="save-high", path="high.csv", field_names=["value"]),
    ]
    pairs = [("random.x", "find-high-low.value"), ("collect-high.value", "save-high.value")]
    connectors = [AsyncioConnector(spec=ConnectorSpec(source=s, target=t)) for s, t in pairs]
    events = ConnectorBuilder(AsyncioConnector).build_event_connectors(components)
    return LocalProcess(components=components, connectors=[*connectors, *events])


def test_events_are_hexagons_with_dotted_links() -> None:
    diagram = MermaidDiagram.from_process(event_model())
    lines = diagram.diagram.splitlines()
    assert lines[0] == "flowchart LR"
    assert (
        "find-high-low@{ shape: rounded, label: FindHighLowValues<br>**find-high-low** } -.-> "
        "high_event@{ shape: hex, label: HighEvent }"
    ) in [line.strip() for line in lines]
    assert (
        "low_event@{ shape: hex, label: LowEvent } -.-> "
        "collect-low@{ shape: rounded, label: CollectLow<br>**collect-low** }"
    ) in [line.strip() for line in lines]
    assert diagram.url.startswith("https://mermaid.live/edit#pako:")
    assert str(diagram) == diagram.diagram
    assert markdown_diagram(event_model()) == f"```mermaid\n{diagram.diagram}\n```"


PEER_DIAGRAM = """
import json
from parity_complex import Random
from parity_events import CollectHigh, CollectLow, FindHighLowValues
from plugboard.connector import AsyncioConnector, ConnectorBuilder
from plugboard.diagram import MermaidDiagram
from plugboard.library import FileWriter
from plugboard.process import LocalProcess
from plugboard.schemas import ConnectorSpec

components = [
    Random(name="random", iters=1),
    FindHighLowValues(name="find-high-low"),
    CollectHigh(name="collect-high"),
    CollectLow(name="collect-low"),
    FileWriter(name="save-high", path="high.csv", field_names=["value"]),
]
pairs = [("random.x", "find-high-low.value"), ("collect-high.value", "save-high.value")]
connectors = [AsyncioConnector(spec=ConnectorSpec(source=s, target=t)) for s, t in pairs]
events = ConnectorBuilder(AsyncioConnector).build_event_connectors(components)
process = LocalProcess(components=components, connectors=connectors + events)
print(json.dumps(MermaidDiagram.from_process(process).diagram.splitlines()))
"""


def test_the_diagram_draws_what_plugboards_draws(peer: Peer, tmp_path: Path) -> None:
    theirs = {line.strip() for line in peer.run(PEER_DIAGRAM, cwd=tmp_path)}
    drawn = MermaidDiagram.from_process(event_model()).diagram
    assert {line.strip() for line in drawn.splitlines()} == theirs
