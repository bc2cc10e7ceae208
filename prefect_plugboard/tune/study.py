"""A study: Optuna suggests, trials run side by side as child flow runs, Optuna learns.

The study runs on the driver, in the `tune` flow run. It asks Ray Tune's `OptunaSearch` for
each trial's parameters, runs the trial as a child flow run (the model's components on Ray
workers, their task runs in the trial's run), and tells the search how it ended; up to
`concurrency` trials at once, as many as the cluster holds. Cancelling the study's flow
run (from the UI, the CLI, or a SIGTERM from Prefect) stops every running trial
gracefully: their flow runs end `Cancelled`, then the study's.

The trials run in a thread of their own, on an event loop of their own, with the study's
flow run as their parent: Prefect's flow engine takes over SIGTERM for every flow run it
runs on the main thread, and trials that start and end in any order would leave the
signal's handlers in disorder. Off the main thread they leave it to the study, which turns
it into the same graceful stop as a cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
import contextlib
import logging
import os
import secrets
import signal
import typing as _t
from uuid import UUID

from prefect.client.schemas.objects import FlowRun
from prefect.context import AsyncClientContext, FlowRunContext
from prefect.logging import get_run_logger

from prefect_plugboard.process.artifacts import publish_graph
from prefect_plugboard.process.cancellation import signals_stop
from prefect_plugboard.process.process import CANCELLED_FROM_PREFECT
from prefect_plugboard.process.ray.cluster import RayConnection, check_resources
from prefect_plugboard.process.temporary_api import temporary_api_starting
from prefect_plugboard.tune.artifact import publish_trials, short_name
from prefect_plugboard.tune.resources import live_nodes, trials_at_once
from prefect_plugboard.tune.results import StudyResults, TrialResult
from prefect_plugboard.tune.searcher import StudySearch, check_algorithm
from prefect_plugboard.tune.section import read_study
from prefect_plugboard.tune.space import SearchSpace
from prefect_plugboard.tune.specs import TuneArgsSpec
from prefect_plugboard.tune.template import ModelTemplate
from prefect_plugboard.tune.trial import TrialRunner
from prefect_plugboard.tune.watch import watch_study


__all__ = ["SIGTERM_RECEIVED", "Study"]

_logger = logging.getLogger(__name__)

SIGTERM_RECEIVED = "the study received SIGTERM"
"""Why a study stopped when its process was sent SIGTERM (how Prefect's runner cancels)."""


class Study:
    """One run of a study over a model, inside the study's flow run.

    Args:
        template: The model.
        args: The study: objectives, parameters, samples, concurrency, Optuna's settings.
        name: The study's name; by default `algorithm.study_name`, else the model's name.

    Attributes:
        name: The study's name (Prefect tags `study:<name>`, Optuna's study name).
        trials: The trials of this run so far, in the order they started.
        concurrency: How many trials run at once (known once the study is prepared).
        previous: Trials of a resumed study that were done before this run.
        stop_reason: Why the study stopped early, if it did.
        flow_run_id: The study's flow run (once it runs).
    """

    @classmethod
    def from_model(
        cls,
        source: str | os.PathLike[str] | Mapping[str, _t.Any],
        *,
        process_type: str | None = None,
        overrides: Mapping[str, _t.Any] | Iterable[str] | None = None,
        num_samples: int | None = None,
        max_concurrent: int | None = None,
        study_name: str | None = None,
        ray_address: str | None = None,
    ) -> Study:
        """The study a model's `tune:` section describes, with what the caller replaces.

        Args:
            source: The model file (or the model as a dict), with its `tune:` section.
            process_type: `local` or `ray`: which process the model stands for.
            overrides: Overrides of the model (`component.input.arg.iters=5`).
            num_samples: How many trials, in place of the section's.
            max_concurrent: At most this many trials at once, in place of the section's.
            study_name: The study's name, in place of the section's.
            ray_address: The Ray cluster to run on, in place of the model's.

        Raises:
            ValidationError: The model or its `tune:` section is invalid.
        """
        template = ModelTemplate.load(source, process_type=process_type, overrides=overrides)
        if ray_address:
            template.model.spec.prefect.ray_address = ray_address
        replaced = {"num_samples": num_samples, "max_concurrent": max_concurrent}
        args = read_study(template.tune, template.model.source, replaced)
        if study_name:
            args.algorithm.study_name = study_name
        return cls(template, args)

    def __init__(
        self, template: ModelTemplate, args: TuneArgsSpec, name: str | None = None
    ) -> None:
        self.template = template
        self.args = args
        self.name = name or args.algorithm.study_name or template.name
        self.trials: list[TrialResult] = []
        self.concurrency: int | None = None
        self.previous = 0
        self.stop_reason: str | None = None
        self.flow_run_id: UUID | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where the trials run
        self._stopped: asyncio.Event | None = None
        self._runner: TrialRunner | None = None
        settings = template.model.spec.prefect
        self._ray = RayConnection(settings.ray_address, settings.ray_init_kwargs)

    @property
    def results(self) -> StudyResults:
        """The trials of this run so far."""
        return StudyResults(
            self.trials, [o.full_name for o in self.args.objectives], self.args.modes
        )

    def cancel(self, reason: str) -> None:
        """Stops the study: no more trials start, running ones are stopped (any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and not _runs_on(loop):
            loop.call_soon_threadsafe(self._cancel, reason)
        else:
            self._cancel(reason)

    def _cancel(self, reason: str) -> None:
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        if self._stopped is not None:
            self._stopped.set()
        if self._runner is not None:
            self._runner.cancel(reason)

    def prepare(self) -> None:
        """Checks the study against the model and the cluster; nothing runs yet.

        Joins the model's Ray cluster (or starts a local one, stopped by `release()`, which
        `run()` calls at its end) and works out how many trials run at once. Calling it again
        does nothing.

        Raises:
            ValidationError: The study does not fit the model.
            ResourceError: One trial cannot be placed on the cluster.
            RayConnectionError: The cluster cannot be reached.
        """
        if self.concurrency is not None:
            return
        self.template.check(self.args)
        check_algorithm(self.args)
        # Prefect's temporary server (where no API is set) starts while a new Ray does.
        with temporary_api_starting(enabled=self._ray.starts_local_instance):
            self._ray.ensure()
            try:
                self.concurrency = self._trials_at_once()
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        """Stops the Ray that `prepare()` started, if it started one."""
        self._ray.release()

    async def run(self) -> StudyResults:
        """Runs the study to its end, or until it is cancelled (`prepare()` first).

        Raises:
            ValidationError: The study does not fit the model (nothing started).
            ResourceError: One trial cannot be placed on the cluster (nothing started).
        """
        self.prepare()
        self.flow_run_id = _flow_run_id()
        outcome = "failed"
        graph = (
            asyncio.ensure_future(publish_graph(self.template.probe))
            if FlowRunContext.get() is not None
            else None
        )
        try:
            await self._in_a_thread()
            outcome = "cancelled" if self.stop_reason else "completed"
        except BaseException:
            if self.stop_reason is not None:
                outcome = "cancelled"
            raise
        finally:
            if graph is not None:
                await graph
                await publish_trials(self.name, self.results, outcome)
            self.release()
        return self.results

    async def _in_a_thread(self) -> None:
        """Runs the trials on an event loop of their own; SIGTERM stays with the study."""
        parent = FlowRunContext.get()
        running = asyncio.ensure_future(asyncio.to_thread(asyncio.run, self._trials_loop(parent)))
        with signals_stop(self._on_signal):
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                self.cancel("the study was interrupted")
                await running  # the trials stop, and end `Cancelled`
                raise

    def _on_signal(self, signum: signal.Signals) -> None:
        if signum == signal.SIGINT:
            _logger.warning(
                "Study %r: stopping every trial (Ctrl-C); press Ctrl-C again to stop at once",
                self.name,
            )
            self.cancel("the study was interrupted (Ctrl-C)")
        else:
            self.cancel(SIGTERM_RECEIVED)

    async def _trials_loop(self, parent: FlowRunContext | None) -> None:
        """The study's own event loop: a Prefect client of its own, the study's run as parent."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        if self.stop_reason is not None:
            self._stopped.set()
        async with AsyncClientContext.get_or_create() as client:
            with parent.model_copy(update={"client": client.client}) if parent else _nothing():
                await self._study()

    async def _study(self) -> None:
        logger = _run_logger()
        args = self.args
        space = SearchSpace(args.parameters)
        concurrency = _t.cast(int, self.concurrency)
        space_function = (
            self.template.space_function(args.algorithm.space) if args.algorithm.space else None
        )
        search = StudySearch(
            space,
            [o.full_name for o in args.objectives],
            args.modes,
            args.algorithm,
            self.name,
            concurrency + 1,  # the running trials and the next, prepared
            space_function,
        )
        self.previous = search.previous
        remaining = max(0, args.num_samples - search.previous)
        if search.previous:
            logger.info(
                "Study %r resumed: %d of its %d trials were done before, %d to go",
                self.name,
                search.previous,
                args.num_samples,
                remaining,
            )
        logger.info(
            "Study %r: %d trials, %d at a time, over %s",
            self.name,
            remaining,
            min(concurrency, remaining),
            ", ".join(short_name(n) for n in space.names),
        )
        runner = TrialRunner(self.template, space, args.objectives, args.modes, self.name)
        self._runner = runner
        if self.stop_reason is not None:
            runner.cancel(self.stop_reason)
        flow_run = self.flow_run_id

        def cancelled(run: UUID) -> None:
            if run == flow_run:
                self.cancel(CANCELLED_FROM_PREFECT)
            else:
                runner.cancel_trial(run, CANCELLED_FROM_PREFECT)

        watch = (
            asyncio.ensure_future(watch_study(flow_run, runner.running, cancelled))
            if flow_run is not None
            else None
        )
        running: dict[asyncio.Future[TrialResult], str] = {}
        stopped = asyncio.ensure_future(_t.cast(asyncio.Event, self._stopped).wait())
        try:
            await self._schedule(search, runner, running, remaining, stopped, logger)
        except BaseException:
            self.cancel("the study was interrupted")
            raise
        finally:
            if running:  # trials stopping, or the prepared one, ending `Cancelled`
                await asyncio.shield(asyncio.wait(running))
                for future, trial_id in running.items():
                    self._told(search, trial_id, future.result(), logger)
            stopped.cancel()
            if watch is not None:
                watch.cancel()

    async def _schedule(
        self,
        search: StudySearch,
        runner: TrialRunner,
        running: dict[asyncio.Future[TrialResult], str],
        remaining: int,
        stopped: asyncio.Future[_t.Any],
        logger: _t.Any,
    ) -> None:
        """Keeps `concurrency` trials running, and the next one prepared.

        The next trial is suggested, and its flow run created, while the others run: it
        starts the moment a slot frees (creating a flow run costs a few API round trips).
        Its parameters are drawn one trial earlier than they would be otherwise.
        """
        concurrency = _t.cast(int, self.concurrency)
        started = 0
        ready: _Prepared | None = None
        try:
            while True:
                while self.stop_reason is None and started < remaining:
                    if ready is None:
                        ready = self._prepare(search, runner)
                        if ready is None:
                            break
                    if len(running) >= concurrency:
                        break  # `ready` waits for a slot
                    running[asyncio.ensure_future(ready.start(runner))] = ready.trial_id
                    ready = None
                    started += 1
                if not running:
                    return
                done, _ = await asyncio.wait(
                    [*running, stopped], return_when=asyncio.FIRST_COMPLETED
                )
                for future in done:
                    if future is not stopped:
                        self._told(search, running.pop(future), future.result(), logger)
        finally:
            if ready is not None:  # prepared, never started: it ends `Cancelled`
                running[asyncio.ensure_future(ready.start(runner))] = ready.trial_id

    def _prepare(self, search: StudySearch, runner: TrialRunner) -> _Prepared | None:
        trial_id = f"{secrets.token_hex(4)}-{len(self.trials)}"
        config = search.suggest(trial_id)
        if config is None:
            return None
        trial = TrialResult(number=search.number(trial_id), config=config)
        self.trials.append(trial)
        return _Prepared(trial_id, trial, asyncio.ensure_future(runner.prepare(trial)))

    def _told(self, search: StudySearch, trial_id: str, trial: TrialResult, logger: _t.Any) -> None:
        """Tells the search how a trial ended, and the study's log."""
        search.complete(
            trial_id,
            trial.metrics if trial.completed else None,
            state=trial.state,
            flow_run_id=str(trial.flow_run_id) if trial.flow_run_id else None,
            constraint=trial.constraint,
        )
        values = ", ".join(f"{short_name(k)}={_short(v)}" for k, v in trial.config.items())
        if trial.constraint is not None:
            logger.info(
                "Trial %d (%s) breached a constraint: %s", trial.number, values, trial.constraint
            )
        elif trial.completed:
            scores = ", ".join(f"{short_name(k)}={v:.6g}" for k, v in trial.metrics.items())
            logger.info("Trial %d (%s): %s", trial.number, values, scores)
        elif trial.state == "Failed":
            logger.warning("Trial %d (%s) failed: %s", trial.number, values, trial.error)
        else:
            logger.info("Trial %d (%s) %s", trial.number, values, trial.state.lower())

    def _trials_at_once(self) -> int:
        import ray

        check_resources(list(self.template.probe.components.values()))
        return trials_at_once(
            self.template.hosts(),
            self.args.max_concurrent,
            {k: float(v) for k, v in ray.cluster_resources().items()},
            live_nodes(),
        )


class _Prepared:
    """A trial suggested, its flow run being created."""

    def __init__(
        self, trial_id: str, trial: TrialResult, creating: asyncio.Future[FlowRun | None]
    ) -> None:
        self.trial_id = trial_id
        self.trial = trial
        self.creating = creating

    async def start(self, runner: TrialRunner) -> TrialResult:
        flow_run = await self.creating
        if flow_run is None:
            return self.trial  # it could not be created: `Failed`
        return await runner.run(self.trial, flow_run)


def _runs_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


@contextlib.contextmanager
def _nothing() -> _t.Iterator[None]:
    yield


def _short(value: _t.Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def _flow_run_id() -> UUID | None:
    context = FlowRunContext.get()
    return context.flow_run.id if context is not None and context.flow_run is not None else None


def _run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    if FlowRunContext.get() is not None:
        return get_run_logger()
    return _logger
