"""`tune`: the flow whose run is a study, and the deployable flow that tunes any model.

Deploy it like `run-process`: `config` is the model (a YAML file's path, YAML text, or a
dict) with its `tune:` section; `parameters` are `-p` style overrides of the model;
`num_samples`, `max_concurrent` and `study_name` change the study's own.

    prefect deployment run 'tune/projectile' -p num_samples=20 --watch
"""

from collections.abc import Coroutine
import math
import typing as _t
from typing import Any

from prefect import Flow, flow
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.states import Cancelled, Completed

from prefect_plugboard.builder.yaml_source import load_yaml
from prefect_plugboard.process.cancellation import sigterm_stops
from prefect_plugboard.tune.artifact import short_name
from prefect_plugboard.tune.results import StudyResults
from prefect_plugboard.tune.study import SIGTERM_RECEIVED, Study


__all__ = ["run_study", "study_flow", "tune"]

# No `from __future__ import annotations` here: Prefect builds the parameters' schema from
# the annotations of `tune` at run time.

FLOW_NAME = "tune"


async def run_study(study: Study) -> State:
    """Runs a study in the current flow run; returns the state that run ends in.

    The body of a flow whose whole run is the study's. A SIGTERM from here until Prefect
    has recorded the run's final state stops the study gracefully: a served or pooled study
    cancelled from Prefect ends `Cancelled` even when the runner's SIGTERM lands after the
    study has stopped (see `sigterm_stops`), as a `run-process` run does.
    """
    with sigterm_stops(lambda: study.cancel(SIGTERM_RECEIVED), keep=True):
        return await _run_study(study)


async def _run_study(study: Study) -> State:
    await _tag_current_run(f"study:{study.name}")
    try:
        results = await study.run()
    except BaseException:
        if study.stop_reason is not None:
            return Cancelled(message=f"study {study.name!r} stopped: {study.stop_reason}")
        raise
    if study.stop_reason is not None:
        return Cancelled(
            message=f"study {study.name!r} stopped: {study.stop_reason}; {_best(results)}"
        )
    return Completed(message=_best(results))


def study_flow(study: Study) -> "Flow[[], Coroutine[Any, Any, State]]":
    """The `tune` flow for one study, named after it."""

    async def tune() -> State:
        return await run_study(study)

    return Flow(
        fn=tune,
        name=FLOW_NAME,
        flow_run_name=study.name,
        description=f"A study of the plugboard model {study.template.name}.",
        validate_parameters=False,
        persist_result=False,
    )


@flow(name=FLOW_NAME, persist_result=False)
async def tune(
    config: str | dict[str, Any],
    process_type: str | None = None,
    parameters: dict[str, Any] | None = None,
    num_samples: int | None = None,
    max_concurrent: int | None = None,
    study_name: str | None = None,
) -> State:
    """Tunes a plugboard model: every trial a child flow run of this one.

    Args:
        config: The model with its `tune:` section: a YAML file's path (relative to the
            run's working directory), YAML text, or the model as a dict.
        process_type: `local` or `ray`: which process the model stands for.
        parameters: Overrides of the model, e.g. `{"component.input.arg.iters": 5}`.
        num_samples: How many trials, in place of the section's.
        max_concurrent: At most this many trials at once, in place of the section's.
        study_name: The study's name, in place of the section's.
    """
    source: str | dict[str, Any] = config
    if isinstance(config, str) and "\n" in config:
        source, _ = load_yaml(config, "the config parameter")
    study = Study.from_model(
        source,
        process_type=process_type,
        overrides=parameters,
        num_samples=num_samples,
        max_concurrent=max_concurrent,
        study_name=study_name,
    )
    return await run_study(study)


def _best(results: StudyResults) -> str:
    done = sum(1 for t in results if t.completed)
    summary = f"{done} of {len(results)} trials completed"
    if not done:
        return summary
    parts = []
    for metric, mode in zip(results.metrics, results.modes, strict=True):
        best = results.get_best_result(metric, mode)
        value = best.metrics[metric]
        shown = f"{value:.6g}" if math.isfinite(value) else str(value)
        parts.append(f"best {short_name(metric)} = {shown} (trial {best.number})")
    return f"{summary}; {'; '.join(parts)}"


async def _tag_current_run(tag: str) -> None:
    """Adds a tag to the current flow run (best effort: a label, not the study)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None or tag in context.flow_run.tags:
        return
    tags = [*context.flow_run.tags, tag]
    client = _t.cast("PrefectClient", context.client)
    try:
        await client.update_flow_run(context.flow_run.id, tags=tags)
        context.flow_run.tags = tags
    except Exception:  # noqa: BLE001, S110 - the study runs the same without it
        pass
