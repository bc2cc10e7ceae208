"""One trial: the model built with the trial's parameters, run as a child flow run.

The trial's flow run holds one task run per component, as any run of the model does; its
state is the trial's:

- `Completed`, with the objectives in its message, when the run ended;
- `Completed` too when a component raised `ConstraintError`: the trial is scored with the
  error's `objective_value` (else the worst value) and marked as a constraint breach;
- `Failed` when a component raised anything else, or the model could not run;
- `Cancelled` when the trial or the whole study was cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
import datetime
import logging
import time
import typing as _t
from uuid import UUID

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.context import FlowRunContext
from prefect.flow_engine import run_flow_async
from prefect.states import Cancelled, Completed

from prefect_plugboard.exceptions import ComponentError, ConstraintError
from prefect_plugboard.process.process import Process, ending_state
from prefect_plugboard.tune.results import TrialResult
from prefect_plugboard.tune.runs import TrialRuns
from prefect_plugboard.tune.searcher import worst
from prefect_plugboard.tune.space import SearchSpace
from prefect_plugboard.tune.specs import Direction, ObjectiveSpec
from prefect_plugboard.tune.template import ModelTemplate, bring_back, read_objective


__all__ = ["TrialRunner", "constraint_of"]

_logger = logging.getLogger(__name__)


def constraint_of(error: BaseException) -> ConstraintError | None:
    """The `ConstraintError` a run ended on, if it did (raised as is or as a cause)."""
    if isinstance(error, ConstraintError):
        return error
    if isinstance(error, ComponentError) and isinstance(error.__cause__, ConstraintError):
        return error.__cause__
    return None


class _Trial:
    """A trial in progress: its result so far and, while it runs, its process."""

    def __init__(self, result: TrialResult, overrides: dict[str, _t.Any]) -> None:
        self.result = result
        self.overrides = overrides
        self.process: Process | None = None
        self.cancelled: str | None = None


class TrialRunner:
    """Runs the trials of one study, each as a child flow run of the study's flow run.

    Args:
        template: The model.
        space: The study's parameters.
        objectives: What each trial reports.
        modes: The objectives' directions.
        study_name: For the trials' tags and names.
    """

    def __init__(
        self,
        template: ModelTemplate,
        space: SearchSpace,
        objectives: Sequence[ObjectiveSpec],
        modes: Sequence[Direction],
        study_name: str,
    ) -> None:
        self.template = template
        self.space = space
        self.objectives = list(objectives)
        self.modes = list(modes)
        self.study_name = study_name
        self.cancelled: str | None = None
        self._trials: dict[UUID, _Trial] = {}
        settings = template.model.spec.prefect
        flow: Flow[..., _t.Any] = Flow(
            fn=self._body,
            name=template.flow_name,
            description=f"A trial of a study of the plugboard model {template.name}.",
            validate_parameters=False,
            persist_result=False,
            log_prints=settings.log_prints,
        )
        self.runs = TrialRuns(flow)

    async def prepare(self, result: TrialResult) -> FlowRun | None:
        """Creates the trial's flow run, `Pending` until `run`.

        Returns:
            The flow run, or `None` (and the trial `Failed`) if it cannot be created.
        """
        number = result.number
        try:
            flow_run = await self.runs.create(
                {"config": result.config},
                name=f"{self.study_name}-trial-{number}",
                key=f"trial-{number}",
                tags=[f"study:{self.study_name}", f"trial:{number}"],
            )
        except Exception as exc:  # noqa: BLE001 - a trial that cannot start fails alone
            result.state, result.error = "Failed", f"{type(exc).__name__}: {exc}"
            return None
        result.flow_run_id = flow_run.id
        return flow_run

    async def run(self, result: TrialResult, flow_run: FlowRun) -> TrialResult:
        """Runs a prepared trial to its end, filling in `result`.

        A trial's own failure is in `result`: this never raises for it.
        """
        started = time.monotonic()
        result.state = "Running"
        result.started = datetime.datetime.now(datetime.UTC)
        trial = _Trial(result, self.space.overrides(result.config))
        self._trials[flow_run.id] = trial
        try:
            state = await run_flow_async(
                self.runs.flow,
                flow_run=flow_run,
                parameters={"config": result.config},
                return_type="state",
            )
            self._settle(result, _t.cast(State, state))
        except Exception as exc:  # noqa: BLE001 - a trial that cannot run fails alone
            result.state, result.error = "Failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._trials.pop(flow_run.id, None)
            result.duration = time.monotonic() - started
        return result

    def running(self) -> list[UUID]:
        """The flow runs of the trials running now."""
        return list(self._trials)

    def cancel(self, reason: str) -> None:
        """Stops every running trial (their flow runs end `Cancelled`); starts no more."""
        if self.cancelled is not None:
            return
        self.cancelled = reason
        for flow_run_id in list(self._trials):
            self.cancel_trial(flow_run_id, reason)

    def cancel_trial(self, flow_run_id: UUID, reason: str) -> None:
        """Stops one running trial: its flow run ends `Cancelled`, the study goes on."""
        trial = self._trials.get(flow_run_id)
        if trial is None or trial.cancelled is not None:
            return
        trial.cancelled = reason
        if trial.process is not None:
            asyncio.ensure_future(trial.process.stop())

    def _settle(self, result: TrialResult, state: State) -> None:
        if result.state != "Running":
            return  # the body has settled it
        if state.is_cancelled():
            result.state = "Cancelled"
        elif state.is_completed():  # pragma: no cover - the body settles completed trials
            result.state = "Completed"
        else:
            result.state = "Failed"
            result.error = result.error or state.message or state.name

    async def _body(self, config: dict[str, _t.Any]) -> State:
        """The trial's flow: build the model with the trial's values, run it, score it."""
        context = FlowRunContext.get()
        flow_run_id = context.flow_run.id if context and context.flow_run else None
        trial = self._trials[_t.cast(UUID, flow_run_id)]
        result = trial.result
        if self.cancelled is not None:
            result.state = "Cancelled"
            return Cancelled(message=self.cancelled)
        process = self.template.build(trial.overrides)
        bring_back(process, self.objectives)
        # The study publishes the graph once, and watches every trial's run for a cancel.
        process.publish_artifacts = False
        process.watch_cancellation = False
        trial.process = process
        try:
            end = await ending_state(process, self._run(trial, process))
        except Exception as exc:
            constraint = constraint_of(exc)
            if constraint is None:
                result.state, result.error = "Failed", str(exc)
                raise
            return self._breached(result, constraint)
        if end is not None or trial.cancelled is not None:
            result.state = "Cancelled"
            return end or Cancelled(message=trial.cancelled)
        try:
            result.metrics = {o.full_name: read_objective(process, o) for o in self.objectives}
        except ValueError as exc:
            result.state, result.error = "Failed", str(exc)
            raise
        result.state = "Completed"
        return Completed(message=_scores(result.metrics))

    async def _run(self, trial: _Trial, process: Process) -> None:
        async with process:
            if trial.cancelled is None:  # else the components are destroyed unrun
                await process.run()

    def _breached(self, result: TrialResult, error: ConstraintError) -> State:
        value = error.objective_value
        result.metrics = {
            o.full_name: float(value) if value is not None else worst(mode)
            for o, mode in zip(self.objectives, self.modes, strict=True)
        }
        result.constraint = str(error) or type(error).__name__
        result.state = "Completed"
        return Completed(
            message=f"constraint breached: {result.constraint}; scored {_scores(result.metrics)}"
        )


def _scores(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{name.rsplit('.', 1)[-1]} = {value:.6g}" for name, value in metrics.items())
