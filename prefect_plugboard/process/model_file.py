"""What a model file may name, and the names it uses: those plugboard reads too.

`Process.dump()` writes YAML that both prefect-plugboard and plugboard 0.9 load: classes that
have a plugboard counterpart are written under plugboard's name (`plugboard.process.LocalProcess`,
`plugboard.connector.RayConnector`, `plugboard.library.FileWriter`), which the loader here maps
back; everything else under its own import path. A class that no import path can reach (one
defined in a script, or inside a function) is refused before anything is written.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
import typing as _t


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.process import Process


__all__ = ["YAML_SUFFIXES", "check_dumpable", "public_path", "yaml_type_path"]

YAML_SUFFIXES = (".yaml", ".yml")
"""The file suffixes `dump()` writes (as plugboard's)."""


def public_path(cls: type) -> str:
    """The import path users see: `prefect_plugboard.process.LocalProcess`, not the module's."""
    module = cls.__module__
    if module.startswith(("prefect_plugboard.process.", "prefect_plugboard.connector.")):
        package = module.rsplit(".", 1)[0]
        if getattr(importlib.import_module(package), cls.__name__, None) is cls:
            return f"{package}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def yaml_type_path(cls: type) -> str:
    """The name a model file gives `cls`: plugboard's name where there is one, else its path."""
    from prefect_plugboard.builder.type_paths import plugboard_name

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
