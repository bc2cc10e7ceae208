"""From a checked `Model` to a `Process`: every problem found before anything starts.

`build_process` imports the classes a model names, checks each component's arguments against
its constructor and each connector against the process type, builds the components and
connectors, and checks the graph. Every problem is collected, with its place in the file, and
raised together in one `ValidationError`. Nothing here calls the Prefect API or Ray, except to
read the channel blocks a model names.
"""

from __future__ import annotations

from collections.abc import Mapping
import inspect
import logging
from pathlib import Path
import re
import sys
import typing as _t

from pydantic import ValidationError as PydanticValidationError

from prefect_plugboard._suggestions import did_you_mean
from prefect_plugboard.builder.model import Model, Report, display_location
from prefect_plugboard.builder.type_paths import STAND_INS, TypeNotFound, resolve_type
from prefect_plugboard.builder.yaml_source import Location
from prefect_plugboard.component.component import Component, warn_unused_plugboard_args
from prefect_plugboard.connector.connector import Connector, ConnectorBuilder
from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.process.process import Process
from prefect_plugboard.process.validation import validate_graph
from prefect_plugboard.schemas.component import ComponentArgsDict
from prefect_plugboard.schemas.config import ProcessSpec


__all__ = ["analyse", "build_process"]

_logger = logging.getLogger(__name__)

_COMMON_ARGS = {*ComponentArgsDict.__annotations__, "state"}


def build_process(model: Model) -> Process:
    """Builds the process a model describes, after checking everything it can.

    The model's folder is put on `sys.path` first, so `hello_ray.Iterator` beside the YAML
    imports (also on Ray workers: its module is shipped with the components).

    Raises:
        ValidationError: Every problem found: unknown or unimportable types, arguments that do
            not fit a constructor, bad resources, connectors naming unknown components or
            fields, duplicate names, unconnected inputs, loops without initial values, an
            asyncio connector on a Ray process, unknown channel blocks.
    """
    process, issues = analyse(model)
    if process is None:
        raise ValidationError(issues, subject=model.name)
    return process


def analyse(model: Model) -> tuple[Process | None, list[Issue]]:
    """Builds what can be built of a model; returns the process (if all went well) and issues."""
    if model.base_dir is not None and str(model.base_dir) not in sys.path:
        sys.path.insert(0, str(model.base_dir))
    issues: list[Issue] = []
    spec = model.process
    where = model.source

    def report(message: str, location: Location) -> None:
        issues.append(Issue(message, display_location(location), where.where(location)))

    process_cls = _resolve(spec.type, Process, "process", ("plugboard", "process", "type"), report)
    builder = _connector_builder(spec, process_cls, report)
    components, failed, origin = _components(model, report)
    failed |= model.unbuildable
    connectors = _connectors(model, builder, report)
    if process_cls is not None and connectors is not None:
        _check_channels(process_cls, model, connectors, report)
    if connectors is not None:
        declared = [c.args.name for c in spec.args.components] + sorted(model.unbuildable)
        for issue in validate_graph(components, connectors, unbuilt=failed, declared=declared):
            location = _location_of(issue.location, origin, model)
            issues.append(
                Issue(issue.message, display_location(location), where.where(location))
                if location
                else issue
            )
    if issues or process_cls is None or connectors is None:
        return None, issues
    return _instantiate(process_cls, model, components, connectors), issues


def _check_channels(
    process_cls: type[Process], model: Model, connectors: list[Connector], report: Report
) -> None:
    """Reports the first connector of a kind the process cannot use (they share a cause)."""
    for index, (entry, connector) in enumerate(
        zip(model.process.args.connectors, connectors, strict=True)
    ):
        problem = process_cls.connector_issue(type(connector))
        if problem:
            report(
                problem,
                model.locate("connectors", index, "channel")
                if entry.channel
                else ("plugboard", "process", "connector_builder", "block"),
            )
            return


def _resolve(path: str, base: type, kind: str, location: Location, report: Report) -> _t.Any:
    try:
        return resolve_type(path, base, kind)
    except TypeNotFound as exc:
        report(str(exc), location)
        return None


def _connector_builder(
    spec: ProcessSpec, process_cls: type[Process] | None, report: Report
) -> _t.Any:
    location: Location = ("plugboard", "process", "connector_builder")
    builder_spec = spec.connector_builder
    if builder_spec.block is not None:
        return _load_block(builder_spec.block, process_cls, (*location, "block"), report)
    if builder_spec.type is not None:
        connector_cls = _resolve(
            builder_spec.type, Connector, "connector", (*location, "type"), report
        )
        if connector_cls is None:
            return None
        args = builder_spec.args
        if builder_spec.type in STAND_INS:
            _logger.info("%s.", STAND_INS[builder_spec.type])
            args = {k: v for k, v in args.items() if k not in _ZMQ_ONLY}
        problem = process_cls.connector_issue(connector_cls) if process_cls else None
        if problem:
            report(problem, (*location, "type"))
            return None
        return _checked_builder(connector_cls, args, (*location, "args"), report)
    default = process_cls.default_connector if process_cls is not None else Connector
    return _checked_builder(default, builder_spec.args, (*location, "args"), report)


_ZMQ_ONLY = frozenset({"zmq_address"})
"""Settings of plugboard's ZMQConnector that its stand-in here has no use for."""


def _checked_builder(
    connector_cls: type[Connector], args: Mapping[str, _t.Any], location: Location, report: Report
) -> ConnectorBuilder | None:
    # plugboard's `parameters` (which its connectors ignore) is accepted, and unused here too.
    parameters = args.get("parameters")
    if parameters:
        _logger.warning(
            "%s %r: accepted for plugboard compatibility and not used (plugboard's connectors "
            "ignore it too); remove it to silence this warning",
            display_location((*location, "parameters")),
            parameters,
        )
    args = {k: v for k, v in args.items() if k != "parameters"}
    accepted = _keyword_names(connector_cls.__init__) - {"spec"}
    unknown = [k for k in args if k not in accepted]
    for key in unknown:
        report(
            f"{connector_cls.__name__} has no setting {key!r}"
            + did_you_mean(key, sorted(accepted), listing="its settings"),
            (*location, key),
        )
    return None if unknown else ConnectorBuilder(connector_cls, **args)


def _load_block(
    reference: str, process_cls: type[Process] | None, location: Location, report: Report
) -> _t.Any:
    try:
        from prefect_plugboard.blocks import load_channel_block
    except ImportError:  # pragma: no cover - blocks ship with the package
        report("channel blocks are not available", location)
        return None
    try:
        block = load_channel_block(reference)
    except ValidationError as exc:
        for issue in exc.issues:
            report(issue.message, location)
        return None
    return block


def _components(model: Model, report: Report) -> tuple[list[Component], set[str], list[int]]:
    """Builds the components; returns them, the names that failed, and each one's index."""
    components: list[Component] = []
    failed: set[str] = set()
    origin: list[int] = []
    for index, component_spec in enumerate(model.process.args.components):
        location = model.locate("components", index)
        name = component_spec.args.name
        cls = _resolve(component_spec.type, Component, "component", (*location, "type"), report)
        if cls is None:
            failed.add(name)
            continue
        kwargs = _component_kwargs(component_spec.args)
        problems = _check_arguments(cls, kwargs)
        for key, message in problems:
            report(message, (*location, "args", key) if key else (*location, "args"))
        if problems:
            failed.add(name)
            continue
        try:
            components.append(cls(**kwargs))
            origin.append(index)
        except Exception as exc:  # noqa: BLE001 - the user's constructor refused the arguments
            report(
                f"{component_spec.type} could not be built: {type(exc).__name__}: {exc}",
                (*location, "args"),
            )
            failed.add(name)
    return components, failed, origin


def _component_kwargs(args: _t.Any) -> dict[str, _t.Any]:
    kwargs: dict[str, _t.Any] = {"name": args.name, **(args.model_extra or {})}
    for field in ("initial_values", "parameters", "resources"):
        if field in args.model_fields_set:
            kwargs[field] = getattr(args, field)
    # Not passed on (a constructor of the user's need not take it): said here instead.
    warn_unused_plugboard_args(args.name, constraints=args.constraints)
    return kwargs


def _keyword_names(function: _t.Callable[..., _t.Any]) -> set[str]:
    names = set()
    for param in list(inspect.signature(function).parameters.values())[1:]:
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            names.add(param.name)
    return names


def _passed_on_names(cls: type[Component]) -> tuple[set[str], set[str]]:
    """Keyword arguments a constructor passes on with `**kwargs`: accepted, and required.

    Accepted: the named arguments of the base classes' constructors it forwards to, and the
    keys of a `**kwargs: Unpack[SomeArgsDict]` annotation; required: that dict's required keys.
    """
    accepted: set[str] = set()
    for klass in cls.__mro__[1:]:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        accepted |= _keyword_names(init)
        params = inspect.signature(init).parameters.values()
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    required: set[str] = set()
    try:
        hints = _t.get_type_hints(cls.__init__, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: names only
        hints = {}
    for hint in hints.values():
        if _t.get_origin(hint) is _t.Unpack:
            (args_dict,) = _t.get_args(hint)
            accepted |= set(getattr(args_dict, "__optional_keys__", ()))
            required |= set(getattr(args_dict, "__required_keys__", ()))
    accepted |= required
    return accepted, required - {"name"}


def _check_arguments(cls: type[Component], kwargs: Mapping[str, _t.Any]) -> list[tuple[str, str]]:
    """Arguments that do not fit `cls`'s constructor: unknown ones, and required ones missing."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    takes_common = any(p.kind is p.VAR_KEYWORD for p in params)
    named = _keyword_names(cls.__init__)
    passed_on, required = _passed_on_names(cls) if takes_common else (set(), set())
    accepted = named | passed_on | (_COMMON_ARGS if takes_common else set())
    problems = []
    for key in kwargs:
        if key not in accepted:
            hint = did_you_mean(key, sorted(accepted), listing="it takes")
            problems.append((key, f"{cls.__name__} has no argument {key!r}{hint}"))
    for param in params:
        if (
            param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
            and param.default is param.empty
            and param.name not in kwargs
        ):
            problems.append(("", f"{cls.__name__} needs the argument {param.name!r}"))
    for key in sorted(required - set(kwargs) - named):
        problems.append(("", f"{cls.__name__} needs the argument {key!r}"))
    return problems


def _connectors(model: Model, builder: _t.Any, report: Report) -> list[Connector] | None:
    if builder is None:
        return None
    connectors: list[Connector] = []
    ok = True
    for index, entry in enumerate(model.process.args.connectors):
        location = model.locate("connectors", index)
        connector_spec = {"source": entry.source, "target": entry.target, "mode": entry.mode}
        factory = builder
        if entry.channel is not None:
            factory = _load_block(entry.channel, None, (*location, "channel"), report)
            if factory is None:
                ok = False
                continue
        elif entry.args:
            base = builder if isinstance(builder, ConnectorBuilder) else None
            if base is None:
                report(
                    "`args` cannot change a block's settings; save another block",
                    (*location, "args"),
                )
                ok = False
                continue
            factory = _checked_builder(
                base.connector_cls, {**base.kwargs, **entry.args}, (*location, "args"), report
            )
            if factory is None:
                ok = False
                continue
        try:
            connectors.append(factory.build(connector_spec))
        except (PydanticValidationError, ValueError) as exc:
            report(f"connector could not be built: {exc}", location)
            ok = False
    return connectors if ok else None


_INDEXED = re.compile(r"^(components|connectors)\[(\d+)\](?:\.(.*))?$")


def _location_of(location: str, origin: list[int], model: Model) -> Location | None:
    """Maps a graph issue's location (`components[i]` of the built list) onto the file."""
    match = _INDEXED.match(location or "")
    if match is None:
        return None
    kind, index, rest = match.group(1), int(match.group(2)), match.group(3)
    if kind == "components":
        if index >= len(origin):
            return None
        index = origin[index]
    parts: tuple[str, ...] = tuple(rest.split(".")) if rest else ()
    if kind == "components" and parts == ("initial_values",):
        parts = ("args", "initial_values")
    return model.locate(kind, index, *parts)


def _instantiate(
    process_cls: type[Process],
    model: Model,
    components: list[Component],
    connectors: list[Connector],
) -> Process:
    spec = model.process
    kwargs: dict[str, _t.Any] = {
        "components": components,
        "connectors": connectors,
        # A model without a name is named after its file, as the Prefect UI then shows it.
        "name": spec.args.name or (Path(model.source.file).stem if model.source.file else None),
        "parameters": spec.args.parameters,
    }
    prefect = model.spec.prefect
    accepted = set(inspect.signature(process_cls.__init__).parameters)
    for key, value in (
        ("ray_address", prefect.ray_address),
        ("ray_init_kwargs", prefect.ray_init_kwargs or None),
        ("placement_timeout", prefect.placement_timeout),
        ("stop_grace", prefect.stop_grace),
        ("worker_sharing", prefect.worker_sharing),
    ):
        if value is not None and key in accepted:
            kwargs[key] = value
    return process_cls(**kwargs)
