"""Checks of a graph's structure, run before any component starts.

Every problem is collected, so one error names them all: duplicate names, connectors naming
unknown components or fields, unconnected inputs, loops without initial values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from prefect_plugboard._suggestions import did_you_mean
from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.exceptions import Issue
from prefect_plugboard.process.topology import strongly_connected
from prefect_plugboard.schemas.connector import ConnectorMode, ConnectorSocket


__all__ = ["find_cycles", "unread_outputs", "validate_graph"]


def validate_graph(
    components: Sequence[object],
    connectors: Sequence[object],
    *,
    unbuilt: Collection[str] = (),
    declared: Sequence[str] = (),
) -> list[Issue]:
    """Returns every structural problem of a graph; an empty list means it can run.

    Args:
        components: The components, in the order given to the process.
        connectors: The connectors, in the order given to the process.
        unbuilt: Names of components that exist in the model but could not be built (their
            own problems are reported elsewhere): connectors to them are not checked.
        declared: Every component name of the model, for "known components" and did-you-mean.

    Returns:
        The problems found, each located as `components[i]` or `connectors[j]`.
    """
    issues: list[Issue] = []
    by_name: dict[str, Component] = {}
    first_index: dict[str, int] = {}
    for index, component in enumerate(components):
        where = f"components[{index}]"
        if not isinstance(component, Component):
            issues.append(Issue(f"expected a Component, got {type(component).__name__}", where))
            continue
        if not component.__dict__.get("_base_initialised"):
            issues.append(
                Issue(
                    f"{type(component).__name__}.__init__ did not call super().__init__(**kwargs)",
                    where,
                )
            )
            continue
        name = component.name
        if name in by_name:
            issues.append(
                Issue(
                    f"duplicate component name {name!r} (also components[{first_index[name]}])",
                    where,
                )
            )
            continue
        by_name[name] = component
        first_index[name] = index
        if component.io.is_empty:
            issues.append(
                Issue(
                    f"component {name!r} ({type(component).__name__}) has no input or output "
                    "fields and no events: it could never step; declare them with IO(...) or "
                    "add them in its __init__ (self.io.add_inputs(...))",
                    where,
                )
            )
        inputs = component.io.inputs
        for field in component.initial_values:
            if field not in inputs:
                issues.append(
                    Issue(
                        f"component {name!r} has initial_values for {field!r}, which is not one "
                        f"of its inputs{did_you_mean(field, inputs, listing='its inputs')}",
                        f"{where}.initial_values",
                    )
                )

    names = list(dict.fromkeys([*by_name, *declared]))
    connected: defaultdict[str, set[str]] = defaultdict(set)
    seen_ids: dict[str, int] = {}
    for index, connector in enumerate(connectors):
        where = f"connectors[{index}]"
        if not isinstance(connector, Connector):
            issues.append(Issue(f"expected a Connector, got {type(connector).__name__}", where))
            continue
        spec = connector.spec
        if spec.mode is ConnectorMode.PUBSUB:
            continue  # event connectors are checked with the events
        if spec.id in seen_ids:
            issues.append(
                Issue(f"duplicate connector {spec} (also connectors[{seen_ids[spec.id]}])", where)
            )
            continue
        seen_ids[spec.id] = index
        if spec.source.entity not in unbuilt:
            _check_socket(spec.source, "output", by_name, names, f"{where}.source", issues)
        if spec.target.entity in unbuilt:
            continue
        if _check_socket(spec.target, "input", by_name, names, f"{where}.target", issues):
            connected[spec.target.entity].add(spec.target.descriptor)

    for name, component in by_name.items():
        by_events = {f for _, fields in type(component)._event_handlers.values() for f in fields}
        missing = [f for f in component.io.inputs if f not in connected[name] | by_events]
        if missing:
            issues.append(
                Issue(
                    f"component {name!r} ({type(component).__name__}) has unconnected inputs: "
                    f"{', '.join(missing)}; connect each to an output",
                    f"components[{first_index[name]}]",
                )
            )

    issues += _event_issues(by_name, first_index)
    valid_connectors = [c for c in connectors if isinstance(c, Connector)]
    for cycle in find_cycles(by_name, valid_connectors):
        issues.append(
            Issue(
                "circular connection without initial values: "
                f"{' -> '.join([*cycle, cycle[0]])}. Set initial_values on an input inside the "
                "loop so that it can start",
            )
        )
    return issues


def unread_outputs(
    components: Sequence[object], connectors: Sequence[object]
) -> list[tuple[str, str, list[str]]]:
    """The output fields that no connector reads: `(component, class name, fields)` each."""
    read: defaultdict[str, set[str]] = defaultdict(set)
    for connector in connectors:
        if isinstance(connector, Connector) and connector.spec.mode is ConnectorMode.PIPELINE:
            read[connector.spec.source.entity].add(connector.spec.source.descriptor)
    found = []
    for component in components:
        if isinstance(component, Component) and component.__dict__.get("_base_initialised"):
            unread = [f for f in component.io.outputs if f not in read[component.name]]
            if unread:
                found.append((component.name, type(component).__name__, unread))
    return found


def _event_issues(by_name: dict[str, Component], first_index: dict[str, int]) -> list[Issue]:
    """Events nobody publishes, and handlers that populate fields the component lacks."""
    published = {e.type for c in by_name.values() for e in c.io.output_events}
    issues = []
    for name, component in by_name.items():
        where = f"components[{first_index[name]}]"
        for event in component.io.input_events:
            others = {
                e.type for o in by_name.values() if o is not component for e in o.io.output_events
            }
            if event.type not in others:
                alone = (
                    " (only by itself; a component does not hear its own events)"
                    if event.type in published
                    else ""
                )
                issues.append(
                    Issue(
                        f"component {name!r} ({type(component).__name__}) handles "
                        f"{event.__name__} ({event.type!r}), but no component publishes it{alone}; "
                        f"declare it on the publisher with IO(output_events=[{event.__name__}])",
                        where,
                    )
                )
        for event_type, (method, fields) in type(component)._event_handlers.items():
            unknown = [f for f in fields if f not in component.io.inputs]
            if unknown:
                issues.append(
                    Issue(
                        f"{type(component).__name__}.{method} ({event_type!r} handler) populates "
                        f"{unknown}, which are not inputs of component {name!r}",
                        where,
                    )
                )
    return issues


def _check_socket(
    socket: ConnectorSocket,
    kind: str,
    by_name: dict[str, Component],
    names: list[str],
    where: str,
    issues: list[Issue],
) -> bool:
    component = by_name.get(socket.entity)
    if component is None:
        issues.append(
            Issue(
                f"unknown component {socket.entity!r} in {socket.reference!r}"
                f"{did_you_mean(socket.entity, names, listing='known components')}",
                where,
            )
        )
        return False
    fields = component.io.outputs if kind == "output" else component.io.inputs
    if socket.descriptor not in fields:
        other = component.io.inputs if kind == "output" else component.io.outputs
        hint = (
            f" ({socket.descriptor!r} is an {'input' if kind == 'output' else 'output'})"
            if socket.descriptor in other
            else did_you_mean(socket.descriptor, fields, listing=f"its {kind}s")
        )
        issues.append(
            Issue(
                f"component {socket.entity!r} ({type(component).__name__}) has no {kind} "
                f"{socket.descriptor!r}{hint}",
                where,
            )
        )
        return False
    return True


def find_cycles(
    components: dict[str, Component], connectors: Sequence[Connector]
) -> list[list[str]]:
    """Finds loops of the graph that no initial value can start.

    An edge into an input with `initial_values` can always fire, so such edges are left out;
    each strongly connected group of what remains (or a component feeding itself) is a loop
    that would wait forever. One loop is reported per group.

    Args:
        components: The components by name.
        connectors: The connectors.

    Returns:
        One loop per group, as the component names along it.
    """
    graph: dict[str, list[str]] = {name: [] for name in components}
    for connector in connectors:
        spec = connector.spec
        source, target = spec.source.entity, spec.target.entity
        if spec.mode is ConnectorMode.PUBSUB or source not in graph or target not in graph:
            continue
        if components[target].initial_values.get(spec.target.descriptor):
            continue
        if target not in graph[source]:
            graph[source].append(target)
    cycles: list[list[str]] = []
    for group in strongly_connected(graph):
        if len(group) > 1 or group[0] in graph[group[0]]:
            cycles.append(_cycle_within(graph, set(group), group[0]))
    return cycles


def _cycle_within(graph: dict[str, list[str]], group: set[str], start: str) -> list[str]:
    """Returns a shortest loop from `start` back to itself inside `group` (breadth first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in graph[node]:
                if succ not in group:
                    continue
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return list(reversed(path))
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    return [start]
