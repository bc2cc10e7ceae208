"""Reading YAML while remembering where every value came from (file and line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
import typing as _t

import yaml

from prefect_plugboard._suggestions import did_you_mean
from prefect_plugboard.exceptions import Issue, ValidationError


__all__ = ["schema_message", "Location", "SourceMap", "load_yaml", "path_of"]

Location: _t.TypeAlias = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Where each key or item of a YAML document is: `(file, line)` by its path."""

    file: str = ""
    lines: dict[Location, int] = field(default_factory=dict)
    files: dict[Location, str] = field(default_factory=dict)

    def where(self, location: Sequence[str | int]) -> str:
        """`file:line` of the nearest known position along `location`, or the file."""
        path = tuple(location)
        while path:
            if path in self.lines:
                return f"{self.files.get(path, self.file)}:{self.lines[path]}"
            path = path[:-1]
        return self.file

    def graft(self, prefix: Location, other: SourceMap) -> None:
        """Adds `other`'s positions (another file) under `prefix`."""
        for path, line in other.lines.items():
            self.lines[prefix + path] = line
            self.files[prefix + path] = other.files.get(path, other.file)


def path_of(location: Sequence[str | int]) -> str:
    """`plugboard.process.args.components[1].args.iters` style text for a location."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml(text: str, file: str = "<string>") -> tuple[_t.Any, SourceMap]:
    """Parses YAML, keeping each value's line.

    Raises:
        ValidationError: The text is not valid YAML (with its line and column), or a mapping
            repeats a key.
    """
    source = SourceMap(file=file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ValidationError(
            [Issue(f"invalid YAML: {problem}", source=where)], subject=file
        ) from None
    except yaml.YAMLError as exc:
        raise ValidationError([Issue(f"invalid YAML: {exc}", source=file)], subject=file) from None
    if node is None:
        return None, source
    issues: list[Issue] = []
    _index(node, (), source, issues)
    if issues:
        raise ValidationError(issues, subject=file)
    return yaml.SafeLoader("").construct_document(node), source


def _index(node: yaml.Node, path: Location, source: SourceMap, issues: list[Issue]) -> None:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[_t.Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(
                    Issue(
                        f"duplicate key {key!r} (also on line {seen[key]})",
                        path_of((*path, key)),
                        f"{source.file}:{line}",
                    )
                )
            seen[key] = line
            source.lines[(*path, key)] = line
            _index(value_node, (*path, key), source, issues)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), source, issues)


def read_yaml_file(path: Path) -> tuple[_t.Any, SourceMap]:
    """Reads and parses a YAML file (see `load_yaml`).

    Raises:
        ValidationError: The file cannot be read or is not valid YAML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            [Issue(f"cannot read the file: {exc.strerror or exc}", source=str(path))],
            subject=str(path),
        ) from None
    return load_yaml(text, str(path))


def schema_message(
    error: Mapping[str, _t.Any], location: Location, known_keys: Callable[[Location], list[str]]
) -> str:
    """Pydantic's complaint about a place in a model file, in the file's words.

    Args:
        error: One of pydantic's errors (`ValidationError.errors()`).
        location: Its place in the file.
        known_keys: The keys the mapping that holds `location` accepts.

    Returns:
        An unknown key with the closest known one, a missing key by name, or pydantic's own
        message without its "Value error, " prefix.
    """
    if error["type"] == "extra_forbidden":
        key = str(location[-1])
        return f"unknown key {key!r}" + did_you_mean(
            key, known_keys(location[:-1]), listing="known keys"
        )
    if error["type"] == "missing":
        return f"missing required key {location[-1]!r}"
    return str(error["msg"]).removeprefix("Value error, ")
