"""Resolving the class paths named in YAML, plugboard's `plugboard.*` paths included."""

from __future__ import annotations

import importlib
import inspect
import sys
import typing as _t

from prefect_plugboard._suggestions import did_you_mean


__all__ = [
    "PLUGBOARD_ALIASES",
    "STAND_INS",
    "TypeNotFound",
    "plugboard_name",
    "resolve_type",
]

PLUGBOARD_ALIASES: dict[str, str] = {
    "plugboard.process.LocalProcess": "prefect_plugboard.process.LocalProcess",
    "plugboard.process.RayProcess": "prefect_plugboard.process.RayProcess",
    "plugboard.process.local_process.LocalProcess": "prefect_plugboard.process.LocalProcess",
    "plugboard.process.ray_process.RayProcess": "prefect_plugboard.process.RayProcess",
    "plugboard.connector.AsyncioConnector": "prefect_plugboard.connector.AsyncioConnector",
    "plugboard.connector.RayConnector": "prefect_plugboard.connector.RayConnector",
    "plugboard.connector.asyncio_channel.AsyncioConnector": (
        "prefect_plugboard.connector.AsyncioConnector"
    ),
    "plugboard.connector.ray_channel.RayConnector": "prefect_plugboard.connector.RayConnector",
    "plugboard.connector.ZMQConnector": "prefect_plugboard.connector.RayConnector",
    "plugboard.connector.zmq_channel.ZMQConnector": "prefect_plugboard.connector.RayConnector",
}
"""plugboard's class paths and the classes here that take their place."""

_PLUGBOARD_NAMES: dict[str, str] = {
    "prefect_plugboard.process.LocalProcess": "plugboard.process.LocalProcess",
    "prefect_plugboard.process.RayProcess": "plugboard.process.RayProcess",
    "prefect_plugboard.connector.AsyncioConnector": "plugboard.connector.AsyncioConnector",
    "prefect_plugboard.connector.RayConnector": "plugboard.connector.RayConnector",
}

_LIBRARY: dict[str, tuple[str, ...]] = {
    "data_reader": ("DataReader",),
    "data_writer": ("DataWriter",),
    "file_io": ("FileReader", "FileWriter"),
    "sql_io": ("SQLReader", "SQLWriter"),
    "websocket_io": ("WebsocketBase", "WebsocketReader", "WebsocketWriter"),
}
for _module, _names in _LIBRARY.items():
    for _name in _names:
        PLUGBOARD_ALIASES[f"plugboard.library.{_name}"] = f"prefect_plugboard.library.{_name}"
        PLUGBOARD_ALIASES[f"plugboard.library.{_module}.{_name}"] = (
            f"prefect_plugboard.library.{_module}.{_name}"
        )
        # plugboard's component registry knows a library class by its module's path only.
        _PLUGBOARD_NAMES[f"prefect_plugboard.library.{_name}"] = (
            f"plugboard.library.{_module}.{_name}"
        )
        _PLUGBOARD_NAMES[f"prefect_plugboard.library.{_module}.{_name}"] = (
            f"plugboard.library.{_module}.{_name}"
        )

_NOT_PROVIDED: dict[str, str] = {
    "plugboard.library.LLMChat": "LLM components need a model service; they are not provided",
    "plugboard.library.LLMImageProcessor": (
        "LLM components need a model service; they are not provided"
    ),
    "plugboard.library.llm.LLMChat": "LLM components need a model service; they are not provided",
    "plugboard.library.llm.LLMImageProcessor": (
        "LLM components need a model service; they are not provided"
    ),
}

STAND_INS: dict[str, str] = {
    "plugboard.connector.ZMQConnector": (
        "plugboard's ZMQConnector runs on RayConnector here: a direct stream between workers, "
        "on one node or several (and in memory on a LocalProcess)"
    ),
}
"""plugboard classes that a different class stands in for, and what to tell the user."""
STAND_INS["plugboard.connector.zmq_channel.ZMQConnector"] = STAND_INS[
    "plugboard.connector.ZMQConnector"
]


def plugboard_name(path: str) -> str | None:
    """Plugboard's name of the class at `path` here, if plugboard has the same class."""
    return _PLUGBOARD_NAMES.get(path)


class TypeNotFound(Exception):
    """A class path could not be resolved; the message says why and what might be meant."""


def resolve_type(path: str, base: type, kind: str) -> type:
    """Imports the class at `path` and checks it is a subclass of `base`.

    Args:
        path: `module.Class` (a `plugboard.*` path names its equivalent here).
        base: The class it must derive from.
        kind: What it is, for messages ("component", "process", "connector").

    Raises:
        TypeNotFound: The module cannot be imported (missing, or failing), the module has no
            such name (with a did-you-mean), or the class is not a `base`.
    """
    if path in _NOT_PROVIDED:
        msg = f"{path!r}: {_NOT_PROVIDED[path]}"
        raise TypeNotFound(msg)
    target = PLUGBOARD_ALIASES.get(path, path)
    if target.startswith("plugboard.") and target not in PLUGBOARD_ALIASES.values():
        known = ", ".join(sorted(PLUGBOARD_ALIASES))
        msg = (
            f"{path!r} is a plugboard class that prefect-plugboard does not provide; known: {known}"
        )
        raise TypeNotFound(msg)
    module_name, _, name = target.rpartition(".")
    module = _import(module_name, path)
    value = module
    for part in name.split("."):
        if not hasattr(value, part):
            raise TypeNotFound(_missing(path, module_name, module, part, base))
        value = getattr(value, part)
    # A function decorated with `@component` names the component class it made.
    if not inspect.isclass(value):
        value = getattr(value, "component_class", value)
    if not (inspect.isclass(value) and issubclass(value, base)):
        msg = f"{path!r} is not a {kind} class (a subclass of {base.__name__})"
        raise TypeNotFound(msg)
    return value


def _import(module_name: str, path: str) -> _t.Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            msg = (
                f"cannot import {path!r}: no module named {exc.name!r} (looked in the YAML "
                f"file's folder, {sys.path[0] or '.'}, and on the Python path)"
            )
        else:
            msg = f"cannot import {path!r}: importing {module_name!r} failed: {exc}"
        raise TypeNotFound(msg) from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        msg = (
            f"cannot import {path!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        )
        raise TypeNotFound(msg) from None


def _missing(path: str, module_name: str, module: _t.Any, name: str, base: type) -> str:
    candidates = [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and inspect.isclass(v) and issubclass(v, base) and v is not base
    ]
    own = [n for n in candidates if getattr(module, n).__module__ == module.__name__]
    candidates = own or candidates
    paths = {n: f"{module_name}.{n}" for n in sorted(candidates)}
    hint = did_you_mean(name, paths, listing="it has", cutoff=0.5) if candidates else ""
    return f"module {module_name!r} has no {name!r} ({path!r}){hint}"
