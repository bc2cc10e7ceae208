"""A model read from a file: its specification, and where each of its values came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import typing as _t

from prefect_plugboard.builder.yaml_source import Location, SourceMap, path_of
from prefect_plugboard.schemas.config import ConfigSpec, ProcessSpec


__all__ = ["PROCESS_ARGS", "Model", "Report", "display_location"]

PROCESS_ARGS: Location = ("plugboard", "process", "args")

Report = _t.Callable[[str, Location], None]
"""Records a problem: its message and its place in the file."""


@dataclass
class Model:
    """A model read from YAML (or a dict), checked against the schema.

    Attributes:
        spec: The validated specification.
        source: Where each value came from.
        base_dir: The folder of the YAML file; its modules are importable.
    """

    spec: ConfigSpec
    source: SourceMap
    base_dir: Path | None
    component_indices: list[int] | None = None
    connector_indices: list[int] | None = None
    unbuildable: frozenset[str] = frozenset()

    def locate(self, kind: str, index: int, *rest: str | int) -> Location:
        """The place in the file of item `index` of `components` or `connectors`."""
        indices = self.component_indices if kind == "components" else self.connector_indices
        original = indices[index] if indices is not None else index
        return (*PROCESS_ARGS, kind, original, *rest)

    @property
    def process(self) -> ProcessSpec:
        """The process section (an included file already read)."""
        return _t.cast(ProcessSpec, self.spec.plugboard.process)

    @property
    def name(self) -> str:
        """A name for messages: the file's name, or the process's."""
        return self.source.file or self.process.args.name or "model"


def display_location(location: Sequence[str | int]) -> str:
    """`components[1].args.iters` for parts of the graph; the full path for the rest."""
    location = tuple(location)
    head = location[len(PROCESS_ARGS) : len(PROCESS_ARGS) + 1]
    if location[: len(PROCESS_ARGS)] == PROCESS_ARGS and head in (("components",), ("connectors",)):
        return path_of(location[len(PROCESS_ARGS) :])
    return path_of(location)
