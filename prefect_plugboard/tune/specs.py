"""What a study is, as plugboard writes it: the `tune:` section of a model and the `Tuner`'s specs.

```yaml
plugboard:
  process: ...
  tune:
    args:
      objective: {object_name: max-height, field_name: max_y}   # or a list of them
      parameters:
      - type: ray.tune.uniform          # ray.tune.randint (upper excluded), ray.tune.choice;
                                        # none: choice with `categories`, else uniform
        object_type: component          # or process (with field_type: parameter)
        object_name: trajectory
        field_type: arg                 # arg, initial_value or parameter
        field_name: angle
        lower: 0
        upper: 90
      num_samples: 40
      mode: max                         # or a list, one per objective
      max_concurrent: 4
      algorithm:                        # optional: Optuna's settings
        type: ray.tune.search.optuna.OptunaSearch
        space: my_module.space          # a define-by-run search space
        study_name: projectile
        storage: sqlite:///study.db     # resume a study from here
        points_to_evaluate: [{component.trajectory.arg.angle: 45, ...}]
```

These models import nothing of Ray or Optuna: a model file is checked before either loads.
"""

from __future__ import annotations

import typing as _t

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    model_validator,
)


__all__ = [
    "CategoricalParameterSpec",
    "Direction",
    "FieldSpec",
    "FloatParameterSpec",
    "IntParameterSpec",
    "ObjectiveSpec",
    "OptunaSpec",
    "ParameterSpec",
    "TuneArgsDict",
    "TuneArgsSpec",
    "TuneSpec",
]

Direction = _t.Literal["min", "max"]
"""Whether an objective is minimised or maximised."""

_FieldType = _t.Literal["arg", "initial_value", "field", "parameter"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Spec):
    """A value in a model: a component's argument, initial value, parameter or field.

    Attributes:
        object_type: `component`, or `process` for a process parameter.
        object_name: The component's name (not needed for the process).
        field_type: `arg` (a constructor argument), `initial_value`, `parameter`, or `field`
            (an attribute read after the run: objectives).
        field_name: The argument's, parameter's or attribute's name.
    """

    object_type: _t.Literal["component", "process"] = "component"
    object_name: str | None = None
    field_type: _FieldType
    field_name: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check_object(self) -> _t.Self:
        if self.object_type == "component" and not self.object_name:
            msg = "a component's field needs `object_name`: the component's name"
            raise ValueError(msg)
        if self.object_type == "process" and self.field_type != "parameter":
            msg = "a field of the process must be a parameter (`field_type: parameter`)"
            raise ValueError(msg)
        return self

    @property
    def full_name(self) -> str:
        """The name plugboard gives the field: `component.NAME.FIELD_TYPE.FIELD`.

        `process.default.parameter.FIELD` for a process parameter. It is the key of a trial's
        config and results, and a `-p` override name.
        """
        owner = self.object_name if self.object_type == "component" else "default"
        return f"{self.object_type}.{owner}.{self.field_type}.{self.field_name}"


class ObjectiveSpec(FieldSpec):
    """An objective: a component's attribute, read once the trial's run has ended."""

    field_type: _t.Literal["field"] = "field"

    @model_validator(mode="after")
    def _component_only(self) -> _t.Self:
        if self.object_type != "component":
            msg = "an objective is a component's attribute (`object_type: component`)"
            raise ValueError(msg)
        return self


class _ParameterSpec(FieldSpec):
    field_type: _t.Literal["arg", "initial_value", "parameter"]


class FloatParameterSpec(_ParameterSpec):
    """A float drawn uniformly from `[lower, upper]` (`ray.tune.uniform`)."""

    type: _t.Literal["ray.tune.uniform"] = "ray.tune.uniform"
    lower: float
    upper: float

    @model_validator(mode="after")
    def _ordered(self) -> _t.Self:
        if self.lower >= self.upper:
            msg = f"`lower` ({self.lower:g}) must be below `upper` ({self.upper:g})"
            raise ValueError(msg)
        return self


class IntParameterSpec(_ParameterSpec):
    """An integer drawn uniformly from `lower, ..., upper - 1` (`ray.tune.randint`).

    As in Ray Tune and plugboard, `upper` is excluded.
    """

    type: _t.Literal["ray.tune.randint"] = "ray.tune.randint"
    lower: int
    upper: int

    @model_validator(mode="after")
    def _ordered(self) -> _t.Self:
        if self.lower >= self.upper:
            msg = (
                f"`lower` ({self.lower}) must be below `upper` ({self.upper}), which is "
                "excluded from the draws"
            )
            raise ValueError(msg)
        return self


class CategoricalParameterSpec(_ParameterSpec):
    """One of `categories` (`ray.tune.choice`)."""

    type: _t.Literal["ray.tune.choice"] = "ray.tune.choice"
    categories: list[_t.Any] = Field(min_length=1)


def _parameter_type(value: _t.Any) -> str | None:
    """A parameter's `type`, or the one plugboard reads a parameter without one as.

    Categorical if it has `categories`, else a float (even with whole-number bounds).
    """
    if isinstance(value, dict):
        given = value.get("type")
        if given is not None:
            return str(given)
        return "ray.tune.choice" if "categories" in value else "ray.tune.uniform"
    return getattr(value, "type", None)


ParameterSpec = _t.Annotated[
    _t.Annotated[FloatParameterSpec, Tag("ray.tune.uniform")]
    | _t.Annotated[IntParameterSpec, Tag("ray.tune.randint")]
    | _t.Annotated[CategoricalParameterSpec, Tag("ray.tune.choice")],
    Discriminator(_parameter_type),
]
"""A tunable parameter: float, int or categorical, told apart by `type` (as in plugboard,
one without `type` is categorical if it has `categories`, else a float)."""


class OptunaSpec(_Spec):
    """Optuna's settings for a study (Ray Tune's `OptunaSearch`).

    Attributes:
        type: The search algorithm; Optuna's is the one there is.
        space: `module.function` of a define-by-run search space, called with the Optuna
            trial (and `spec=`, the process's spec, if it takes it), in place of `parameters`.
        study_name: The study's name in Optuna's storage, in Prefect tags and flow-run names.
        storage: An Optuna storage URL (`sqlite:///study.db`, `postgresql://...`): the study
            is kept there, and a later run with the same `study_name` resumes it.
        points_to_evaluate: Parameter sets (by full name) to try first: a warm start.
        seed: Seeds Optuna's sampler, for a reproducible study (not in plugboard's spec).
    """

    type: _t.Literal["ray.tune.search.optuna.OptunaSearch"] = "ray.tune.search.optuna.OptunaSearch"
    space: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    study_name: str | None = Field(default=None, min_length=1)
    storage: str | None = Field(default=None, min_length=1)
    points_to_evaluate: list[dict[str, _t.Any]] | None = None
    seed: int | None = None


class TuneArgsSpec(_Spec):
    """The arguments of a `Tuner`, as the `tune.args` section holds them.

    Attributes:
        objective: What to optimise: one attribute, or a list for several objectives.
        parameters: What to vary.
        num_samples: How many trials the study runs (a resumed study counts those it has).
        mode: `max` or `min`; a list (one per objective) for several objectives.
        max_concurrent: At most this many trials at once (default: one per CPU of the
            cluster); fewer if the cluster cannot hold as many.
        algorithm: Optuna's settings.
    """

    objective: ObjectiveSpec | list[ObjectiveSpec]
    parameters: list[ParameterSpec] = Field(min_length=1)
    num_samples: PositiveInt
    mode: Direction | list[Direction] = "max"
    max_concurrent: PositiveInt | None = None
    algorithm: OptunaSpec = Field(default_factory=OptunaSpec)

    @model_validator(mode="after")
    def _modes_match(self) -> _t.Self:
        several = isinstance(self.objective, list)
        if isinstance(self.mode, list) != several:
            msg = (
                "with several objectives `mode` is a list, one direction per objective; with "
                "one objective it is `min` or `max`"
            )
            raise ValueError(msg)
        if isinstance(self.mode, list) and len(self.mode) != len(self.objectives):
            msg = f"`mode` has {len(self.mode)} directions for {len(self.objectives)} objectives"
            raise ValueError(msg)
        names = [p.full_name for p in self.parameters]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            msg = f"parameters named more than once: {', '.join(repeated)}"
            raise ValueError(msg)
        return self

    @property
    def objectives(self) -> list[ObjectiveSpec]:
        """The objectives as a list."""
        return self.objective if isinstance(self.objective, list) else [self.objective]

    @property
    def modes(self) -> list[Direction]:
        """One direction per objective."""
        return self.mode if isinstance(self.mode, list) else [self.mode]


class TuneSpec(_Spec):
    """The `tune:` section of a model file."""

    args: TuneArgsSpec


class TuneArgsDict(_t.TypedDict):
    """The keyword arguments of `Tuner`, as a typed dict."""

    objective: ObjectiveSpec | list[ObjectiveSpec]
    parameters: list[FloatParameterSpec | IntParameterSpec | CategoricalParameterSpec]
    num_samples: int
    mode: _t.NotRequired[Direction | list[Direction]]
    max_concurrent: _t.NotRequired[int | None]
    algorithm: _t.NotRequired[OptunaSpec | None]
