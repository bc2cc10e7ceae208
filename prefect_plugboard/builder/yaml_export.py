"""A process written back as a model file, in the names plugboard reads too.

`Process.dump()` writes YAML that both prefect-plugboard and plugboard 0.9 load: classes that
have a plugboard counterpart are written under the name plugboard's own dumps use
(`plugboard.process.RayProcess`, `plugboard.connector.RayConnector`,
`plugboard.library.file_io.FileWriter`), which the loader here maps back; everything else under
its own import path. A class that no import path can reach (one
defined in a script, or inside a function) is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
import importlib
import inspect
import os
from pathlib import Path
import typing as _t

from pydantic import BaseModel
import yaml

from prefect_plugboard.builder.type_paths import plugboard_name


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.process import Process


__all__ = [
    "YAML_SUFFIXES",
    "check_dumpable",
    "dump_model",
    "export_model",
    "public_path",
    "yaml_type_path",
]

YAML_SUFFIXES = (".yaml", ".yml")
"""The file suffixes `dump()` writes (as plugboard's)."""


def public_path(cls: type) -> str:
    """The import path users see: `prefect_plugboard.process.RayProcess`, not the module's.

    A process or connector class is named by the shortest package that exports it
    (`prefect_plugboard.process`, not `prefect_plugboard.process.ray.process`); any other class
    by its module.
    """
    module = cls.__module__
    if module.startswith(("prefect_plugboard.process.", "prefect_plugboard.connector.")):
        parts = module.split(".")
        for depth in range(2, len(parts)):
            package = ".".join(parts[:depth])
            if getattr(importlib.import_module(package), cls.__name__, None) is cls:
                return f"{package}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def yaml_type_path(cls: type) -> str:
    """The name a model file gives `cls`: plugboard's name where there is one, else its path."""
    path = public_path(cls)
    return plugboard_name(path) or path


def check_dumpable(process: Process, path: str | os.PathLike[str]) -> None:
    """Refuses, before anything is written, a model that no YAML file could load back.

    Raises:
        ValueError: The file's suffix is not `.yaml`/`.yml`, or a class of the model is
            defined in a script (`__main__`) or inside a function.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in YAML_SUFFIXES:
        msg = (
            f"cannot dump process {process.name!r} to {os.fspath(path)!r}: a model file is YAML, "
            f"give the path a .yaml or .yml suffix (got {suffix or 'none'!r})"
        )
        raise ValueError(msg)
    named: list[tuple[str, type]] = [
        (f"component {c.name!r}", type(c)) for c in process._component_list if hasattr(c, "name")
    ]
    named += [(f"connector {c.spec}", type(c)) for c in process._connector_list]
    named.append((f"process {process.name!r}", type(process)))
    for what, cls in named:
        where = _unreachable(cls)
        if where:
            msg = (
                f"cannot dump {what}: its class {cls.__qualname__} is defined {where}, which a "
                "YAML file cannot name; move it to the top level of a module"
            )
            raise ValueError(msg)


def _unreachable(cls: type) -> str:
    if cls.__module__ == "__main__":
        return "in a script (`__main__`)"
    if "<locals>" in cls.__qualname__:
        return "inside a function"
    return ""


def export_model(process: Process) -> dict[str, _t.Any]:
    """The model as YAML-ready data (the `plugboard:` root), as `dump_model` writes it.

    Settings every connector shares go to `connector_builder.args`; a connector whose settings
    differ from the others' keeps them in its own `args` (which plugboard does not read).

    Raises:
        ValueError: The connectors are of several classes.
    """
    kinds = {type(c) for c in process._connector_list}
    if len(kinds) > 1:
        msg = "connectors of several classes cannot be written to one YAML model"
        raise ValueError(msg)
    builder_cls = kinds.pop() if kinds else process.default_connector
    defaults = _setting_defaults(builder_cls)
    settings = [
        {k: v for k, v in c.settings().items() if defaults.get(k) != v}
        for c in process._connector_list
    ]
    shared = settings[0] if settings and all(s == settings[0] for s in settings) else {}
    connectors = []
    for connector, own in zip(process._connector_list, settings, strict=True):
        entry = connector.export()
        if own and not shared:
            entry["args"] = own
        connectors.append(entry)
    builder: dict[str, _t.Any] = {"type": yaml_type_path(builder_cls)}
    if shared:
        builder["args"] = shared
    args: dict[str, _t.Any] = {"name": process.name}
    if process.parameters:
        args["parameters"] = process.parameters
    components = []
    for component in process._component_list:
        exported = component.export()
        exported["type"] = yaml_type_path(type(component))
        components.append(exported)
    args["components"] = components
    args["connectors"] = connectors
    process_spec = {
        "type": yaml_type_path(type(process)),
        "connector_builder": builder,
        "args": args,
    }
    return {"plugboard": {"process": process_spec}}


def dump_model(process: Process, path: str | os.PathLike[str]) -> None:
    """Writes the model to a YAML file (see `Process.dump`).

    Raises:
        ValueError: See `check_dumpable`; or a constructor argument cannot be written as YAML.
    """
    check_dumpable(process, path)
    data = process.export()
    try:
        text = yaml.safe_dump(_plain(data), sort_keys=False)
    except yaml.YAMLError as exc:
        msg = f"process {process.name!r} cannot be written as YAML: {exc}"
        raise ValueError(msg) from None
    Path(path).write_text(text, encoding="utf-8")


def _setting_defaults(cls: type) -> dict[str, _t.Any]:
    return {
        name: param.default
        for name, param in inspect.signature(cls).parameters.items()
        if param.default is not param.empty
    }


def _plain(value: _t.Any) -> _t.Any:
    """Turns a value into plain YAML data (paths to text, models to dicts, tuples to lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(exclude_defaults=True))
    if isinstance(value, StrEnum):
        return str(value)
    return value
