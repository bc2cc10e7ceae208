"""Command-line overrides of a model: `-p component.NAME.arg.FIELD=VALUE` and friends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import typing as _t

import yaml

from prefect_plugboard._suggestions import did_you_mean
from prefect_plugboard.exceptions import Issue, ValidationError


__all__ = ["apply_overrides", "parse_override"]

_KINDS = {"arg": (), "initial_value": ("initial_values",), "parameter": ("parameters",)}


def parse_override(text: str) -> tuple[str, _t.Any]:
    """Splits `NAME=VALUE`; the value is read as YAML (`3`, `0.5`, `[1, 2]`, `text`).

    Raises:
        ValidationError: There is no `=`, or the value is not valid YAML.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise ValidationError(
            [Issue(f"expected NAME=VALUE, got {text!r}", f"-p {text}")], subject="the overrides"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ValidationError(
            [Issue(f"value is not valid YAML: {exc}", f"-p {text}")], subject="the overrides"
        ) from None
    return name.strip(), value


def apply_overrides(
    process: dict[str, _t.Any], overrides: Mapping[str, _t.Any] | Iterable[str]
) -> list[Issue]:
    """Applies overrides to a process section (`plugboard.process` as a dict), in place.

    Names, as plugboard's CLI takes them:

    - `component.NAME.arg.FIELD`: a constructor argument (`FIELD` may be dotted, e.g.
      `resources.cpu`);
    - `component.NAME.initial_value.FIELD`, `component.NAME.parameter.FIELD`;
    - `process.parameter.FIELD` (also `process.default.parameter.FIELD`), or a bare `FIELD`:
      a process parameter.

    Returns:
        The overrides that name nothing in the model, each with a did-you-mean.
    """
    pairs = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    args = process.setdefault("args", {})
    components = {
        c.get("args", {}).get("name"): c for c in args.get("components", []) if isinstance(c, dict)
    }
    issues = []
    for name, value in pairs:
        parts = name.split(".")
        where = f"-p {name}"
        if parts[0] == "component":
            if len(parts) < 4 or parts[2] not in _KINDS:
                issues.append(
                    Issue("expected component.NAME.(arg|initial_value|parameter).FIELD", where)
                )
                continue
            component = components.get(parts[1])
            if component is None:
                hint = did_you_mean(parts[1], [str(n) for n in components])
                issues.append(Issue(f"no component named {parts[1]!r}{hint}", where))
                continue
            _set(component.setdefault("args", {}), (*_KINDS[parts[2]], *parts[3:]), value)
        elif parts[0] == "process":
            tail = parts[1:]
            if tail[:1] == ["default"]:
                tail = tail[1:]
            if len(tail) < 2 or tail[0] != "parameter":
                issues.append(Issue("expected process.parameter.FIELD", where))
                continue
            _set(args, ("parameters", *tail[1:]), value)
        else:
            _set(args, ("parameters", *parts), value)
    return issues


def _set(target: dict[str, _t.Any], path: tuple[str, ...], value: _t.Any) -> None:
    for key in path[:-1]:
        nested = target.get(key)
        if not isinstance(nested, dict):
            nested = target[key] = {}
        target = nested
    target[path[-1]] = value
