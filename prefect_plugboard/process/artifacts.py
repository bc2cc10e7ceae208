"""What a run shows in the Prefect UI besides its task runs: the graph and a summary table."""

from __future__ import annotations

import logging
import re
import typing as _t

from prefect_plugboard.diagram import mermaid_diagram, mermaid_live_url


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.process import Process


__all__ = ["artifact_key", "publish_graph", "publish_summary"]

_logger = logging.getLogger(__name__)


def artifact_key(process_name: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) for a process."""
    slug = re.sub(r"[^a-z0-9]+", "-", process_name.lower()).strip("-") or "process"
    return f"{slug}-{what}"


def graph_markdown(process: Process) -> str:
    """The graph as Markdown: a Mermaid diagram, a mermaid.live link and a list of links."""
    diagram = mermaid_diagram(process)
    lines = [
        f"### Process `{process.name}` ({type(process).__name__})",
        "",
        "```mermaid",
        diagram,
        "```",
        "",
        f"[Open the diagram in mermaid.live]({mermaid_live_url(diagram)})",
        "",
        "| from | to | channel |",
        "|---|---|---|",
    ]
    for connector in process.connectors.values():
        spec, kind = connector.spec, type(connector).__name__
        lines.append(f"| `{spec.source}` | `{spec.target}` | {kind} |")
    events = sorted({e.type for c in process.components.values() for e in c.io.output_events})
    if events:
        lines += ["", f"Events: {', '.join(f'`{e}`' for e in events)}"]
    return "\n".join(lines)


def summary_rows(process: Process) -> list[dict[str, _t.Any]]:
    """One row per component: status, steps, messages in and out, busy time, exports."""
    rows = []
    for name, component in process.components.items():
        stats = component.run_stats
        exports = component.exported_values()
        rows.append(
            {
                "component": name,
                "type": type(component).__name__,
                "status": str(component.status),
                "steps": stats.steps,
                "messages in": stats.messages_in,
                "messages out": stats.messages_out,
                "busy (s)": round(stats.busy_seconds, 3),
                "exports": ", ".join(f"{k}={_short(v)}" for k, v in exports.items()),
            }
        )
    return rows


def _short(value: _t.Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def publish_graph(process: Process) -> None:
    """Publishes the graph as a Markdown artifact of the current flow run (best effort)."""
    from prefect.artifacts import acreate_markdown_artifact

    try:
        await acreate_markdown_artifact(
            markdown=graph_markdown(process),
            key=artifact_key(process.name, "graph"),
            description=f"The graph of process {process.name!r}",
        )
    except Exception:  # the run matters more than its pictures
        _logger.warning("Could not publish the graph of %r", process.name, exc_info=True)


async def publish_summary(process: Process, outcome: str) -> None:
    """Publishes each component's figures as a table artifact (best effort).

    Args:
        process: The process whose run has just ended.
        outcome: How the run ended, for the artifact's description (`completed`,
            `failed: ...`, `stopped: ...`).
    """
    from prefect.artifacts import acreate_table_artifact

    try:
        await acreate_table_artifact(
            table=summary_rows(process),
            key=artifact_key(process.name, "components"),
            description=f"Process {process.name!r} {outcome}",
        )
    except Exception:  # the run has ended anyway
        _logger.warning("Could not publish the summary of %r", process.name, exc_info=True)
