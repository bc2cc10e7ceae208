"""The model a study tunes: loaded and checked once, built afresh for every trial.

Every trial runs on the Ray cluster, whatever process the model names: a `LocalProcess`
model becomes a `RayProcess` whose components all share one worker process
(`worker_sharing="all"`, asyncio connectors switched to Ray ones), so that a trial is placed
and reserved as a whole, as the `LocalProcess` would run it, and trials run side by side on
the cluster while Prefect stays on the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import typing as _t

from prefect_plugboard._suggestions import did_you_mean
from prefect_plugboard.builder import Model, build_process, load_model
from prefect_plugboard.builder.type_paths import TypeNotFound, resolve_type
from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.process.links import Links
from prefect_plugboard.process.local_process import LocalProcess
from prefect_plugboard.process.process import Process


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.ray.placement import HostPlan
    from prefect_plugboard.process.ray.process import RayProcess
    from prefect_plugboard.schemas.config import ProcessSpec
    from prefect_plugboard.tune.specs import ObjectiveSpec, TuneArgsSpec


__all__ = ["TRIAL_STOP_GRACE", "ModelTemplate", "bring_back", "check_study", "read_objective"]

TRIAL_STOP_GRACE = 5.0
"""How long (s) a stopping trial's components get to end before their worker is killed,
unless the model's `prefect.stop_grace` says otherwise: a cancelled study ends within 10 s."""


class ModelTemplate:
    """A model checked once; `build(overrides)` gives a trial's process.

    Args:
        model: The model as loaded (its file's folder is importable once built).

    Attributes:
        model: The model as trials run it (on Ray: see the module's description).
        process_spec: The model's process as its author wrote it (a `LocalProcess` stays
            one), what a define-by-run search space is given as `spec=`.
        was_local: Whether the model names a `LocalProcess`.
    """

    def __init__(self, model: Model) -> None:
        self.process_spec: ProcessSpec = model.process.model_copy(deep=True)
        self.was_local = _is_local(model)
        self._process_cls = _process_class(model)
        self._data = model.spec.model_dump(exclude_unset=True)
        self._source = model.source
        self._base_dir = model.base_dir
        self.model = self._switched(model)
        self.probe: RayProcess = _t.cast("RayProcess", build_process(self.model))

    @classmethod
    def load(
        cls,
        source: _t.Any,
        *,
        process_type: str | None = None,
        overrides: Mapping[str, _t.Any] | Iterable[str] | None = None,
    ) -> ModelTemplate:
        """Loads a model from a YAML file, a dict, or a `Model`, and checks it.

        Args:
            source: A YAML file, the model as a dict, or a loaded `Model`.
            process_type: `local` or `ray`: which process the model stands for.
            overrides: Values to change in every trial, as `-p` takes them (a mapping, or
                `NAME=VALUE` texts).

        Raises:
            ValidationError: The model is invalid.
        """
        if isinstance(source, Model):
            if overrides or process_type:
                source = load_model(
                    source.spec.model_dump(exclude_unset=True),
                    process_type=process_type,
                    overrides=overrides,
                )
            return cls(source)
        return cls(load_model(source, process_type=process_type, overrides=overrides))

    def _switched(self, model: Model) -> Model:
        """The model as trials run it: on Ray, a local model's components in one worker."""
        data = model.spec.model_dump(exclude_unset=True)
        settings = data.setdefault("prefect", {})
        settings.setdefault("stop_grace", TRIAL_STOP_GRACE)
        if self.was_local:
            settings["worker_sharing"] = "all"
        switched = load_model(data, process_type="ray")
        switched.source = self._source
        switched.base_dir = self._base_dir
        return switched

    @property
    def name(self) -> str:
        """The model's name: its file's stem, else its process's name, else `model`."""
        if self._source.file:
            stem = self._source.file.rsplit("/", 1)[-1]
            return stem.rsplit(".", 1)[0] if "." in stem else stem
        return self.model.process.args.name or "model"

    @property
    def flow_name(self) -> str:
        """The name of the flow each trial is a run of: the model's, as `run` names it."""
        settings, args = self.model.spec.prefect, self.model.process.args
        named = settings.flow_name or args.name or (self.name if self._source.file else None)
        return named or self._process_cls.flow_name_default

    @property
    def tune(self) -> dict[str, _t.Any] | None:
        """The model's own `tune:` section, unchecked."""
        return self.model.spec.plugboard.tune

    def space_function(self, path: str) -> Callable[[_t.Any], _t.Any]:
        """A define-by-run search space `module.function`, given `spec=` if it takes it.

        The spec is the model's process as written, as plugboard passes it, not the
        `RayProcess` a local model's trials run as.

        Raises:
            ValidationError: The module or function cannot be found, or is not callable.
        """
        from prefect_plugboard.tune.space import resolve_space_function

        return resolve_space_function(path, self.process_spec)

    def build(self, overrides: Mapping[str, _t.Any]) -> RayProcess:
        """A fresh process for one trial, with its parameters' values.

        Raises:
            ValidationError: A value does not fit the model (e.g. a constructor refused it).
        """
        data = self.model.spec.model_dump(exclude_unset=True)
        trial = load_model(data, overrides=overrides)
        trial.source = self._source  # an unnamed model's process takes its file's name
        trial.base_dir = self._base_dir
        return _t.cast("RayProcess", build_process(trial))

    def hosts(self) -> list[HostPlan]:
        """The worker processes of one trial, with what each asks of the cluster."""
        from prefect_plugboard.process.ray.placement import plan_hosts

        process = self.probe
        order = Links(process.components, process.connectors.values()).upstream_first()
        return plan_hosts([process.components[n] for n in order], process.worker_sharing)

    def check(self, args: TuneArgsSpec) -> None:
        """Checks that the study's parameters and objectives name what the model has.

        Raises:
            ValidationError: Every parameter or objective that names an unknown component,
                and every parameter whose value the model refuses (tried at its lower bound,
                or first category): an argument the constructor does not take, say.
        """
        issues: list[Issue] = []
        components = self.probe.components
        for index, parameter in enumerate(args.parameters):
            where = self._where("parameters", index)
            if parameter.object_type == "component" and parameter.object_name not in components:
                issues.append(_unknown(parameter.object_name, components, *where))
                continue
            try:
                self.build({parameter.full_name: _lowest(parameter)})
            except ValidationError as exc:
                issues += [Issue(f"{parameter.full_name}: {i.message}", *where) for i in exc.issues]
        several = isinstance(args.objective, list)
        for index, objective in enumerate(args.objectives):
            where = self._where("objective", index if several else None)
            if objective.object_name not in components:
                issues.append(_unknown(objective.object_name, components, *where))
        if issues:
            raise ValidationError(issues, subject="the study")

    def _where(self, key: str, index: int | None) -> tuple[str, str]:
        """`tune.args.parameters[1]` and its `file:line`, for a message."""
        location: tuple[str | int, ...] = ("plugboard", "tune", "args", key)
        if index is not None:
            location += (index,)
        text = f"tune.args.{key}" + (f"[{index}]" if index is not None else "")
        return text, self._source.where(location) if self._source.file else ""


def _process_class(model: Model) -> type[Process]:
    try:
        return _t.cast(type[Process], resolve_type(model.process.type, Process, "process"))
    except TypeNotFound:
        return Process  # building the model reports it, with its place in the file


def _is_local(model: Model) -> bool:
    return issubclass(_process_class(model), LocalProcess)


def _unknown(name: str | None, components: Mapping[str, _t.Any], where: str, source: str) -> Issue:
    hint = did_you_mean(str(name), list(components), listing="it has")
    return Issue(f"the model has no component {name!r}{hint}", where, source)


def _lowest(parameter: _t.Any) -> _t.Any:
    """A parameter's lower bound (or first category), as a trial would give it."""
    from prefect_plugboard.tune.specs import CategoricalParameterSpec

    value = (
        parameter.categories[0]
        if isinstance(parameter, CategoricalParameterSpec)
        else parameter.lower
    )
    return [value] if parameter.field_type == "initial_value" else value


def read_objective(process: Process, objective: ObjectiveSpec) -> float:
    """An objective's value once the trial's run has ended.

    Raises:
        ValueError: The attribute is missing, or is not a number.
    """
    component = process.components[_t.cast(str, objective.object_name)]
    value = getattr(component, objective.field_name, None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = (
            f"objective {objective.full_name}: component {component.name!r} ended with "
            f"{objective.field_name} = {value!r}, not a number"
        )
        raise ValueError(msg)
    return float(value)


def bring_back(process: Process, objectives: list[ObjectiveSpec]) -> None:
    """Makes each objective's attribute come back from the worker with the run's end.

    A worker sends back the fields and `exports` of its components; an objective may be
    any attribute, so it is added to its component's exports for the trial.
    """
    for objective in objectives:
        component = process.components[_t.cast(str, objective.object_name)]
        exports = list(component.exports or [])
        if objective.field_name not in exports:
            component.exports = [*exports, objective.field_name]  # type: ignore[misc]


def check_study(model: Model) -> int:
    """Checks a model's `tune:` section against the model; returns its number of trials.

    Raises:
        ValidationError: The section is invalid, or names what the model does not have.
    """
    from prefect_plugboard.tune.searcher import check_algorithm
    from prefect_plugboard.tune.section import read_study

    template = ModelTemplate(model)
    args = read_study(template.tune, model.source)
    template.check(args)
    check_algorithm(args)
    return args.num_samples
