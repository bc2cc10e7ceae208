"""Package attributes imported on first use (PEP 562)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import importlib
import sys
import typing as _t


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], _t.Any], Callable[[], list[str]]]:
    """Build a package's `__getattr__` and `__dir__` from a name -> module table.

    Args:
        package: The package's `__name__`.
        table: Each public name and the module that defines it.

    Returns:
        The `__getattr__` and `__dir__` functions to assign in the package.
    """

    def __getattr__(name: str) -> _t.Any:
        module = table.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[package]), *table])

    return __getattr__, __dir__
