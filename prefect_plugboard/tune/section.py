"""Reading a study from a model's `tune:` section, every problem with its place in the file."""

from __future__ import annotations

from collections.abc import Mapping
import typing as _t

from pydantic import BaseModel, ValidationError as PydanticValidationError

from prefect_plugboard.builder.yaml_source import SourceMap, path_of, schema_message
from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.tune.specs import (
    CategoricalParameterSpec,
    FloatParameterSpec,
    IntParameterSpec,
    ObjectiveSpec,
    OptunaSpec,
    TuneArgsSpec,
    TuneSpec,
)


__all__ = ["read_study", "tune_issues"]

_SECTION = ("plugboard", "tune")
_PARAMETER_TYPES: dict[str, type[BaseModel]] = {
    "ray.tune.uniform": FloatParameterSpec,
    "ray.tune.randint": IntParameterSpec,
    "ray.tune.choice": CategoricalParameterSpec,
}


def read_study(
    section: Mapping[str, _t.Any] | None,
    source: SourceMap,
    changes: Mapping[str, _t.Any] | None = None,
) -> TuneArgsSpec:
    """The study a model's `tune:` section describes.

    Args:
        section: The `tune:` section (`{"args": {...}}`).
        source: Where its values are in the file.
        changes: Arguments to change, e.g. `{"num_samples": 10}` (`None` values ignored).

    Raises:
        ValidationError: There is no `tune:` section, or it is invalid; every problem with
            its place (`plugboard.tune.args.parameters[1].upper (model.yaml:31)`).
    """
    subject = source.file or "the model"
    if section is None:
        raise ValidationError(
            [
                Issue(
                    "the model has no `tune:` section; add one under `plugboard:` (objective, "
                    "parameters, num_samples) to say what to tune",
                    "plugboard.tune",
                    source.file,
                )
            ],
            subject=subject,
        )
    data = dict(section)
    if changes and isinstance(data.get("args"), Mapping):
        data["args"] = {**data["args"], **{k: v for k, v in changes.items() if v is not None}}
    try:
        return TuneSpec.model_validate(data).args
    except PydanticValidationError as exc:
        raise ValidationError(tune_issues(exc, source), subject=subject) from None


def tune_issues(error: PydanticValidationError, source: SourceMap) -> list[Issue]:
    """Pydantic's errors about a `tune:` section as issues with their places in the file."""
    issues = []
    for problem in error.errors():
        location = (*_SECTION, *_without_tags(problem["loc"]))
        if problem["type"] == "union_tag_invalid":
            message = (
                f"unknown parameter type; use one of {', '.join(_PARAMETER_TYPES)} "
                "(float, int with `upper` excluded, categorical)"
            )
        else:
            message = schema_message(problem, location, _known_keys)
        issues.append(Issue(message, path_of(location), source.where(location)))
    return issues


def _without_tags(location: tuple[_t.Any, ...]) -> tuple[_t.Any, ...]:
    # pydantic names the union member it tried: a parameter's type, or a list/one objective.
    noise = {*_PARAMETER_TYPES, "ObjectiveSpec", "list[ObjectiveSpec]"}
    return tuple(p for p in location if p not in noise)


def _known_keys(location: tuple[_t.Any, ...]) -> list[str]:
    tail = tuple("*" if isinstance(p, int) else p for p in location[len(_SECTION) :])
    models: dict[tuple[_t.Any, ...], type[BaseModel]] = {
        (): TuneSpec,
        ("args",): TuneArgsSpec,
        ("args", "algorithm"): OptunaSpec,
        ("args", "objective"): ObjectiveSpec,
        ("args", "objective", "*"): ObjectiveSpec,
    }
    model = models.get(tail)
    if model is None and tail[:2] == ("args", "parameters"):
        return sorted({f for m in _PARAMETER_TYPES.values() for f in m.model_fields})
    return sorted(model.model_fields) if model is not None else []
