"""From a model file (or a dict) to a checked `Model`: every problem found at once.

`load_model` reads the YAML, follows an included process file, applies command-line
overrides and a process-type switch, and checks the result against the schema. Problems carry
their place in the file (`components[1].args.iters`, `model.yaml:14`) and are raised together
in one `ValidationError`; when only parts of the model fit the schema, the parts that do are
built as far as they can be (`building.analyse`), so their problems are reported too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import copy
import os
from pathlib import Path
import typing as _t

from pydantic import BaseModel, ValidationError as PydanticValidationError

from prefect_plugboard.builder.building import analyse
from prefect_plugboard.builder.model import Model, display_location
from prefect_plugboard.builder.overrides import apply_overrides
from prefect_plugboard.builder.type_paths import PLUGBOARD_ALIASES
from prefect_plugboard.builder.yaml_source import (
    Location,
    SourceMap,
    path_of,
    read_yaml_file,
    schema_message,
)
from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.schemas.config import ConfigSpec


__all__ = ["load_model"]

LOCAL = "prefect_plugboard.process.LocalProcess"
RAY = "prefect_plugboard.process.RayProcess"
ASYNCIO_CONNECTOR = "prefect_plugboard.connector.AsyncioConnector"
RAY_CONNECTOR = "prefect_plugboard.connector.RayConnector"
PROCESS_TYPES = {"local": LOCAL, "ray": RAY}


def load_model(
    source: str | os.PathLike[str] | Mapping[str, _t.Any],
    *,
    process_type: str | None = None,
    overrides: Mapping[str, _t.Any] | Iterable[str] | None = None,
) -> Model:
    """Reads a model from a YAML file or a dict and checks it against the schema.

    Args:
        source: A YAML file, or the model as a dict (the `plugboard:` root included).
        process_type: `"local"` or `"ray"` (or a class path) to run the model on another
            process type; connectors of the other kind are switched too.
        overrides: `{"component.input.arg.iters": 5}` or `["component.input.arg.iters=5"]`.

    Raises:
        ValidationError: Every problem found, each with its place.
    """
    if isinstance(source, Mapping):
        data, where, base_dir = copy.deepcopy(dict(source)), SourceMap(), None
    else:
        path = Path(source)
        data, where = read_yaml_file(path)
        base_dir = path.resolve().parent
    subject = where.file or "the model"
    if not isinstance(data, dict) or "plugboard" not in data:
        issue = Issue("a model needs a top-level `plugboard:` section", source=where.file)
        raise ValidationError([issue], subject=subject)
    issues: list[Issue] = []
    section = data.get("plugboard")
    if isinstance(section, dict) and isinstance(section.get("process"), str):
        _include(section, where, base_dir, issues)
    process = section.get("process") if isinstance(section, dict) else None
    if isinstance(process, dict):
        if overrides:
            issues += apply_overrides(process, overrides)
        if process_type:
            issues += _switch_process_type(process, process_type)
    try:
        spec = ConfigSpec.model_validate(data)
    except PydanticValidationError as exc:
        issues += [i for e in exc.errors() if (i := _schema_issue(e, where, data)) is not None]
        partial = _salvage(data, where, base_dir)
        if partial is not None:
            # Check what can be checked of the valid parts, to report every problem at once.
            issues += analyse(partial)[1]
        raise ValidationError(issues, subject=subject) from None
    if issues:
        raise ValidationError(issues, subject=subject)
    return Model(spec=spec, source=where, base_dir=base_dir)


def _salvage(data: dict[str, _t.Any], where: SourceMap, base_dir: Path | None) -> Model | None:
    """A model of the parts that passed the schema, when some did not, to check them too."""
    from prefect_plugboard.schemas import config

    section = data.get("plugboard")
    process = section.get("process") if isinstance(section, dict) else None
    args = process.get("args") if isinstance(process, dict) else None
    if not isinstance(process, dict) or not isinstance(args, dict):
        return None

    def valid(model: type[BaseModel], value: _t.Any) -> bool:
        try:
            model.model_validate(value)
        except PydanticValidationError:
            return False
        return True

    components: list[_t.Any] = _list(args.get("components"))
    connectors: list[_t.Any] = _list(args.get("connectors"))
    kept = [i for i, c in enumerate(components) if valid(config.ComponentSpec, c)]
    wired = [i for i, c in enumerate(connectors) if valid(config.ConnectorEntrySpec, c)]
    if not kept:
        return None
    unbuildable = {
        str(c["args"]["name"])
        for i, c in enumerate(components)
        if i not in kept
        and isinstance(c, dict)
        and isinstance(c.get("args"), dict)
        and "name" in c["args"]
    }
    builder = process.get("connector_builder") or {}
    candidate: dict[str, _t.Any] = {
        "connector_builder": builder if valid(config.ConnectorBuilderSpec, builder) else {},
        "args": {
            "components": [components[i] for i in kept],
            "connectors": [connectors[i] for i in wired],
        },
    }
    if valid(config.ProcessSpec, {**candidate, "type": process.get("type")}):
        candidate["type"] = process.get("type")
    name = args.get("name")
    if valid(config.ProcessArgsSpec, {**candidate["args"], "name": name}):
        candidate["args"]["name"] = name
    try:
        spec = ConfigSpec.model_validate({"plugboard": {"process": candidate}})
    except PydanticValidationError:
        return None
    return Model(spec, where, base_dir, kept, wired, frozenset(unbuildable))


def _list(value: _t.Any) -> list[_t.Any]:
    return value if isinstance(value, list) else []


def _include(
    section: dict[str, _t.Any], where: SourceMap, base: Path | None, issues: list[Issue]
) -> None:
    """Replaces `process: other.yaml` by that file's `plugboard.process`."""
    reference = section["process"]
    path = (base / reference) if base is not None else Path(reference)
    location = ("plugboard", "process")
    try:
        data, other = read_yaml_file(path)
    except ValidationError as exc:
        issues += exc.issues
        return
    process = data.get("plugboard", {}).get("process") if isinstance(data, dict) else None
    if not isinstance(process, dict):
        issues.append(
            Issue(
                f"{path} has no `plugboard.process` section",
                path_of(location),
                where.where(location),
            )
        )
        return
    section["process"] = process
    where.graft(location, _shifted(other, ("plugboard", "process")))


def _shifted(source: SourceMap, prefix: Location) -> SourceMap:
    shifted = SourceMap(file=source.file)
    for path, line in source.lines.items():
        if path[: len(prefix)] == prefix:
            shifted.lines[path[len(prefix) :]] = line
    return shifted


def _switch_process_type(process: dict[str, _t.Any], process_type: str) -> list[Issue]:
    target = PROCESS_TYPES.get(process_type, process_type)
    if process_type not in PROCESS_TYPES and "." not in process_type:
        return [
            Issue(
                f"unknown process type {process_type!r}; use local, ray or a class path",
                "--process-type",
            )
        ]
    process["type"] = target
    builder = process.get("connector_builder")
    if not isinstance(builder, dict):
        return []
    current = PLUGBOARD_ALIASES.get(str(builder.get("type")), builder.get("type"))
    args = builder.get("args") or {}
    if target == RAY and current in (None, ASYNCIO_CONNECTOR):
        builder["type"] = RAY_CONNECTOR
    elif target == LOCAL and current == RAY_CONNECTOR:
        builder["type"] = ASYNCIO_CONNECTOR
        builder["args"] = {
            k: v for k, v in args.items() if k not in ("batch_size", "max_frame_bytes")
        }
    return []


def _schema_issue(error: _t.Any, where: SourceMap, data: _t.Any) -> Issue | None:
    raw = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    process = (
        data.get("plugboard", {}).get("process")
        if isinstance(data.get("plugboard"), dict)
        else None
    )
    wrong_member = "str" if isinstance(process, dict) else "ProcessSpec"
    if raw[:3] == ("plugboard", "process", wrong_member):
        return None  # pydantic also tried the other member of `process: ProcessSpec | str`
    location = _drop_union_tags(raw)
    message = schema_message(error, location, _known_keys)
    return Issue(message, display_location(location), where.where(location))


def _drop_union_tags(location: Location) -> Location:
    # pydantic puts the union member it tried into the location ("ProcessSpec", "str").
    return tuple(p for p in location if p not in {"ProcessSpec", "str", "ConnectorSocket"})


def _known_keys(location: Location) -> list[str]:
    from prefect_plugboard.schemas import config

    models = {
        (): config.ConfigSpec,
        ("plugboard",): config.PlugboardSection,
        ("plugboard", "process"): config.ProcessSpec,
        ("prefect",): config.PrefectSection,
        ("plugboard", "process", "args"): config.ProcessArgsSpec,
        ("plugboard", "process", "connector_builder"): config.ConnectorBuilderSpec,
    }
    generic = tuple("*" if isinstance(p, int) else p for p in location)
    model = models.get(generic) or {
        ("plugboard", "process", "args", "components", "*"): config.ComponentSpec,
        ("plugboard", "process", "args", "connectors", "*"): config.ConnectorEntrySpec,
        ("plugboard", "process", "args", "components", "*", "args", "resources"): None,
    }.get(generic)
    if model is None:
        from prefect_plugboard.schemas.resource import Resource

        return sorted(Resource.model_fields) if generic[-1:] == ("resources",) else []
    return sorted(_t.cast("type[BaseModel]", model).model_fields)
