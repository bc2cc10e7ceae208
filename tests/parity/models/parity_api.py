"""The plugboard API the parity models use: prefect-plugboard's, or plugboard's own.

The models beside this file are written once, for plugboard. Where prefect-plugboard is
installed they import it, and where only plugboard is (the peer's environment) they import
plugboard: the same model code runs on both, with nothing but its imports changed.
"""

try:
    from prefect_plugboard.component import IO, Component, component
    from prefect_plugboard.events import Event
    from prefect_plugboard.exceptions import ConstraintError
    from prefect_plugboard.library import FileWriter
    from prefect_plugboard.schemas import ComponentArgsDict, Resource
except ModuleNotFoundError:  # the peer's environment
    from plugboard.component import (  # type: ignore[import-not-found,no-redef]
        Component,
        IOController as IO,
        component,
    )
    from plugboard.events import Event  # type: ignore[import-not-found,no-redef]
    from plugboard.exceptions import ConstraintError  # type: ignore[import-not-found,no-redef]
    from plugboard.library import FileWriter  # type: ignore[import-not-found,no-redef]
    from plugboard.schemas import (  # type: ignore[import-not-found,no-redef]
        ComponentArgsDict,
        Resource,
    )

__all__ = [
    "IO",
    "Component",
    "ComponentArgsDict",
    "ConstraintError",
    "Event",
    "FileWriter",
    "Resource",
    "component",
]
