"""`Process`: a graph of components and connectors, run as one Prefect flow run."""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
from collections.abc import Awaitable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
import importlib
import logging
import os
import secrets
import signal
import typing as _t
from uuid import UUID

from pydantic import ValidationError as PydanticValidationError

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.connector import Connector, ConnectorBuilder
from prefect_plugboard.exceptions import (
    ComponentError,
    ConstraintError,
    Issue,
    NotInitialisedError,
    ProcessStateError,
    ValidationError,
)
from prefect_plugboard.process.artifacts import publish_graph, publish_summary
from prefect_plugboard.process.cancellation import (
    signals_stop,
    sigterm_stops,
    watch_for_cancellation,
)
from prefect_plugboard.process.validation import unread_outputs, validate_graph
from prefect_plugboard.schemas.connector import ConnectorSpec
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import State

    from prefect_plugboard.state import ProcessState


__all__ = ["ComponentProgress", "ConnectorFactory", "Process"]

_logger = logging.getLogger(__name__)


class Process(ABC):
    """A graph of components connected by connectors, run as one Prefect flow run.

    `run()` starts a flow run (or, when called inside a `@flow`, joins the caller's flow run)
    in which every component is one long-lived task run, named after the component and
    tagged with its class. The run ends when every component has finished; the first
    component that raises stops all the others and fails the run.

    Example:
        ```python
        async with LocalProcess(components=[...], connectors=[...]) as process:
            await process.run()
        ```

    Args:
        components: The components. Names must be unique.
        connectors: The connections between the components' fields: connectors, or specs
            (`ConnectorSpec`, or dicts with `source` and `target`) that `connector_builder`
            turns into connectors.
        name: A name for the process; it also names the Prefect flow.
        parameters: Parameters shared by every component, under each one's own `parameters`.
        connector_builder: Builds connectors from specs: a `ConnectorBuilder`, a channel
            block (`prefect_plugboard.blocks`), or anything with `build(spec)`. By default
            the process's own kind of connector with default settings.

    Attributes:
        components: The components by name.
        connectors: The connectors by id.
        status: Where the process is in its lifecycle.
        flow_run_id: The id of the Prefect flow run of the last `run()`.
    """

    flow_name_default: _t.ClassVar[str] = "plugboard-process"
    default_connector: _t.ClassVar[type[Connector]] = Connector
    """The connector class built from bare specs when no `connector_builder` is given."""
    publish_artifacts: bool = True
    """Whether a run publishes the graph and the components' summary on its flow run."""
    watch_cancellation: bool = True
    """Whether a run watches its flow run for a cancellation from Prefect. A supervisor of
    many runs (a study over its trials) may watch them all at once instead."""

    def __init__(
        self,
        components: Iterable[Component],
        connectors: Iterable[Connector | ConnectorSpec | Mapping[str, _t.Any]],
        name: str | None = None,
        parameters: Mapping[str, _t.Any] | None = None,
        *,
        connector_builder: ConnectorFactory | None = None,
    ) -> None:
        self._component_list: list[Component] = list(components)
        builder = connector_builder or ConnectorBuilder(self.default_connector)
        self._connector_list: list[Connector] = [
            c if isinstance(c, Connector) else _build(builder, c, i)
            for i, c in enumerate(connectors)
        ]
        self.components: dict[str, Component] = {}
        for component in self._component_list:
            if isinstance(component, Component) and hasattr(component, "name"):
                self.components.setdefault(component.name, component)
        self.connectors: dict[str, Connector] = {}
        for connector in self._connector_list:
            if isinstance(connector, Connector):
                self.connectors.setdefault(connector.id, connector)
        self._named = name is not None
        self.name: str = (
            name if name is not None else f"{type(self).__name__}_{secrets.token_hex(4)}"
        )
        self.parameters: dict[str, _t.Any] = dict(parameters or {})
        self.status = Status.CREATED
        self.flow_run_id: UUID | None = None
        self.stop_reason: str | None = None
        self._cancelled = False
        _load_prefect()

    @property
    def id(self) -> str:
        """The process's id: its name."""
        return self.name

    @property
    def flow_name(self) -> str:
        """The name of the Prefect flow a standalone `run()` creates."""
        return self.name if self._named else self.flow_name_default

    # ----- lifecycle ------------------------------------------------------------------------

    async def init(self) -> None:
        """Gets the graph ready to run; `run()` then starts stepping at once.

        Validates the graph, wires its channels (on Ray: places the components and starts
        their workers) and runs every component's `init()`. Calling it again does nothing;
        `destroy()` (or the end of `async with`) runs the components' `destroy()` if `run()`
        never does.

        Raises:
            ValidationError: The graph is invalid; every problem is listed (nothing started).
            ComponentError: A component's `init()` raised; everything started is stopped.
        """
        if self.status is not Status.CREATED:
            return
        issues = validate_graph(self._component_list, self._connector_list)
        issues += [
            Issue(f"{c.spec}: {problem}", f"connectors[{i}]")
            for i, c in enumerate(self._connector_list)
            if isinstance(c, Connector) and (problem := self.connector_issue(type(c)))
        ]
        if issues:
            raise ValidationError(issues, subject=f"process {self.name!r}")
        for name, kind, fields in unread_outputs(self._component_list, self._connector_list):
            _logger.warning(
                "Process %r: output fields of component %r (%s) not connected, nothing reads "
                "them: %s",
                self.name,
                name,
                kind,
                ", ".join(fields),
            )
        for component in self._component_list:
            component.parameters = {**self.parameters, **component.parameters}
        await self._prepare()
        self.status = Status.INIT

    async def step(self) -> None:
        """Takes one step of every component, at once, on the caller's event loop.

        Each component takes one value per input (waiting for its upstream's step), handles
        the events that have arrived, steps and sends its outputs (on a `RayProcess`, on its
        worker; the driver's component objects then hold what the step left). `init()` has
        run every component's `init()` already. Afterwards the process and its components are
        `waiting`, and `run()` goes on from there. No Prefect flow run or task run is made:
        this is for tests and for exploring a model step by step.

        Raises:
            NotInitialisedError: `init()` has not been called.
            ProcessStateError: The process is running or has ended.
            ComponentError: A component raised; its exception is the cause.
            NotImplementedError: A `Process` subclass that does not implement stepping.
        """
        if self.status is Status.CREATED:
            msg = (
                f"process {self.name!r} is not initialised: call `await process.init()` (or use "
                "`async with process:`) before `step()`"
            )
            raise NotInitialisedError(msg)
        if self.status not in (Status.INIT, Status.WAITING):
            msg = f"process {self.name!r} is {self.status}; step() needs it initialised or waiting"
            raise ProcessStateError(msg)
        if type(self)._step_components is Process._step_components:
            msg = (
                f"{type(self).__name__}.step() is not available yet: run the whole model with "
                "`await process.run()`, or step it on a LocalProcess"
            )
            raise NotImplementedError(msg)
        self.status = Status.RUNNING
        try:
            await self._step_components()
        except BaseException as exc:
            self.status = Status.STOPPED if _is_cancellation(exc) else Status.FAILED
            constraint = _as_constraint(exc)
            if constraint is None:
                raise
            raise constraint from exc.__cause__
        self.status = Status.WAITING

    @property
    def state(self) -> ProcessState:
        """Where the process and its components stand, read from the Prefect API.

        plugboard's state backends, on Prefect: the job id is the id of the flow run of
        `run()`, the process's status that of the flow run, each component's that of its
        task run (see `prefect_plugboard.state`).
        """
        from prefect_plugboard.state import ProcessState

        return ProcessState(self)

    async def run(self) -> None:
        """Runs every component until all have finished; one Prefect flow run.

        Inside a `@flow`, the component task runs join the caller's flow run instead.
        The process is initialised first if `init()` has not been called.

        Raises:
            ValidationError: The graph is invalid (nothing was started).
            ComponentError: A component raised; its exception is the cause.
            ProcessStateError: The process has already run.
        """
        if self.status is Status.CREATED:
            await self.init()
        elif self.status not in (Status.INIT, Status.WAITING):  # waiting: after step()
            msg = (
                f"process {self.name!r} is {self.status}; a process runs once, build a new one "
                "to run the graph again"
            )
            raise ProcessStateError(msg)
        self.status = Status.RUNNING
        from prefect.context import FlowRunContext

        try:
            if FlowRunContext.get() is not None:
                await self._run_in_current_flow()
            else:
                state = await self._flow()(return_state=True)
                if not state.is_completed() and not state.is_cancelled():
                    await state.aresult()  # raises what the flow raised
                if state.is_cancelled() and self.stop_reason is None:
                    # e.g. a signal that landed in a component: the run stopped, not completed
                    self.stop_reason = state.message or f"process {self.name!r} was cancelled"
                current = asyncio.current_task()
                if state.is_cancelled() and current is not None and current.cancelling():
                    raise asyncio.CancelledError  # the caller's own cancellation goes on
        except BaseException as exc:
            self.status = Status.STOPPED if _is_cancellation(exc) else Status.FAILED
            raise
        finally:
            self._settle_components()
        self.status = Status.STOPPED if self.stop_reason is not None else Status.COMPLETED

    def _settle_components(self) -> None:
        """Marks the components that never got to start (the run ended first) `stopped`."""
        for component in self.components.values():
            if not component.status.is_terminal:
                component.status = Status.STOPPED

    async def stop(self) -> None:
        """Stops a running process: every component ends `stopped`, and `run()` returns.

        What components wrote so far stays written. A component can do the same by
        publishing a `StopEvent`. Stopping a process that is not running does nothing.
        """
        self._request_stop("stopped by process.stop()")

    def _request_stop(self, reason: str) -> None:
        if self.status is not Status.RUNNING or self.stop_reason is not None:
            return
        self.stop_reason = reason
        _logger.info("Process %r: %s", self.name, reason)
        self._stop(reason)

    def _stop_event_callback(self, component: str) -> _t.Callable[[_t.Any], None]:
        """What a component's `StopEvent` does: stop the whole process."""

        def on_stop(event: _t.Any) -> None:
            self._request_stop(f"stopped by a StopEvent from component {component!r}")

        return on_stop

    async def destroy(self) -> None:
        """Releases what the process holds. Safe to call more than once."""
        await self._release()

    async def __aenter__(self) -> _t.Self:
        await self.init()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.destroy()

    # ----- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    async def _prepare(self) -> None:
        """Builds what the run needs (channels, workers) and runs the components' `init()`."""

    @abstractmethod
    async def _run_components(self) -> None:
        """Runs every component as a task run of the current flow run."""

    async def _step_components(self) -> None:
        """Takes one step of every component (`step()`); processes that can, override it."""
        raise NotImplementedError

    @classmethod
    def connector_issue(cls, connector_cls: type[Connector]) -> str | None:
        """Why connectors of `connector_cls` cannot carry this process type's channels.

        The one check of a connector's kind, for Python and YAML models alike.

        Returns:
            What is wrong and what to use instead, or `None` when the kind fits.
        """
        return None

    def _stop(self, reason: str) -> None:  # noqa: B027 - a process without a run to stop
        """Stops every running component (a graceful stop: the run ends without error)."""

    async def _release(self) -> None:  # noqa: B027 - optional hook, nothing to release here
        """Releases resources held by the process."""

    # ----- helpers --------------------------------------------------------------------------

    async def _run_in_current_flow(self) -> None:
        """Runs the components in the current flow run, with its graph, summary and watch.

        The graph is published as the components start, the summary once they have ended
        (whatever happened), and a cancellation of the flow run from Prefect stops them.
        """
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        if context is not None and context.flow_run is not None:
            self.flow_run_id = context.flow_run.id
        graph = asyncio.ensure_future(publish_graph(self)) if self.publish_artifacts else None
        watch = (
            asyncio.ensure_future(
                watch_for_cancellation(self.flow_run_id, self._cancelled_from_prefect)
            )
            if self.flow_run_id is not None and self.watch_cancellation
            else None
        )
        outcome = "failed"
        # Signals stay handled until the summary is out: Prefect's SIGTERM for a cancellation
        # the watch has already acted on often lands after the components have stopped.
        with signals_stop(self._cancel_on_signal):
            try:
                try:
                    await self._run_components()
                except ComponentError as exc:
                    constraint = _as_constraint(exc)
                    if constraint is None:
                        raise
                    raise constraint from exc.__cause__
                outcome = (
                    "completed" if self.stop_reason is None else f"stopped: {self.stop_reason}"
                )
            except BaseException as exc:
                if _is_cancellation(exc):
                    outcome = f"stopped: {self.stop_reason or 'cancelled'}"
                else:
                    outcome = f"failed: {exc}"
                raise
            finally:
                if watch is not None:
                    watch.cancel()
                self._settle_components()
                if graph is not None:
                    await graph
                    await publish_summary(self, outcome)

    def _cancelled_from_prefect(self) -> None:
        self._cancel(CANCELLED_FROM_PREFECT)

    def _cancel_on_signal(self, signum: signal.Signals) -> None:
        if signum == signal.SIGINT:
            _logger.warning(
                "Process %r: stopping every component (Ctrl-C); press Ctrl-C again to stop at once",
                self.name,
            )
            self._cancel("the run was interrupted (Ctrl-C)")
        else:
            self._cancel(SIGTERM_RECEIVED)

    def _cancel(self, reason: str) -> None:
        """Stops the run as cancelled: its flow run ends `Cancelled`, not `Completed`."""
        self._cancelled = True
        self._request_stop(reason)

    def _flow(self) -> Flow[[], Coroutine[_t.Any, _t.Any, State | None]]:
        from prefect import Flow

        async def run_process() -> State | None:
            return await run_as_the_flow(self, self._run_in_current_flow())

        return Flow(
            fn=run_process,
            name=self.flow_name,
            description=f"Runs the plugboard process {self.name!r} ({type(self).__name__}).",
            validate_parameters=False,
            persist_result=False,
        )

    def export(self) -> dict[str, _t.Any]:
        """Returns the model as YAML-ready data (the `plugboard:` root), as `dump` writes it.

        Classes plugboard also has are named as plugboard names them, so the model loads in
        plugboard too (see `prefect_plugboard.builder.yaml_export`).

        Raises:
            ValueError: The connectors are of several classes.
        """
        from prefect_plugboard.builder.yaml_export import export_model  # the layer above

        return export_model(self)

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Writes the model to a YAML file that `prefect-plugboard run` (and plugboard) reads.

        Raises:
            ValueError: The path's suffix is not `.yaml` or `.yml`; a class is defined in a
                script (`__main__`) or inside a function, which a YAML file cannot name; or a
                constructor argument cannot be written as YAML.
        """
        from prefect_plugboard.builder.yaml_export import dump_model

        dump_model(self, path)

    def progress(self) -> list[ComponentProgress]:
        """Each component's status and figures so far (also while the process runs)."""
        return [
            ComponentProgress(
                name=c.name,
                type=type(c).__name__,
                status=c.status,
                steps=c.run_stats.steps,
                messages_in=c.run_stats.messages_in,
                messages_out=c.run_stats.messages_out,
            )
            for c in self.components.values()
        ]

    def dict(self) -> dict[str, _t.Any]:
        """Returns the process's state: its status and every component's state."""
        return {
            "id": self.id,
            "name": self.name,
            "type": type(self).__name__,
            "status": str(self.status),
            "parameters": self.parameters,
            "components": {name: c.dict() for name, c in self.components.items()},
            "connectors": {cid: str(c.spec) for cid, c in self.connectors.items()},
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, components={list(self.components)!r})"


@dataclass(frozen=True)
class ComponentProgress:
    """One component's status and figures at a moment of a run."""

    name: str
    type: str
    status: Status
    steps: int
    messages_in: int
    messages_out: int


class ConnectorFactory(_t.Protocol):
    """Anything that builds a connector from a spec: a `ConnectorBuilder`, a channel block."""

    def build(self, spec: ConnectorSpec | Mapping[str, _t.Any]) -> Connector:
        """Returns the connector for `spec`."""
        ...


def _build(factory: ConnectorFactory, spec: object, index: int) -> Connector:
    if not isinstance(spec, ConnectorSpec | Mapping):
        raise ValidationError(
            [
                Issue(
                    f"expected a Connector, a ConnectorSpec or a dict, got {type(spec).__name__}",
                    f"connectors[{index}]",
                )
            ],
            subject="the connectors",
        )
    try:
        return factory.build(spec)
    except PydanticValidationError as exc:
        issues = [
            Issue(str(error["msg"]), ".".join([f"connectors[{index}]", *map(str, error["loc"])]))
            for error in exc.errors()
        ]
        raise ValidationError(issues, subject="the connectors") from None


CANCELLED_FROM_PREFECT = "the flow run was cancelled from Prefect"
SIGTERM_RECEIVED = "the run received SIGTERM"


async def run_as_the_flow(process: Process, running: Awaitable[None]) -> State | None:
    """The body of a flow whose whole run is `process`'s; returns the state it ends in.

    As `ending_state`, and a SIGTERM from the moment the flow starts until Prefect has
    recorded its final state stops the process gracefully: a served or pooled run cancelled
    from Prefect ends `Cancelled` even when the runner's SIGTERM lands after the components
    have stopped (see `sigterm_stops`).
    """
    with sigterm_stops(lambda: process._cancel(SIGTERM_RECEIVED), keep=True):
        return await ending_state(process, running)


async def ending_state(process: Process, running: Awaitable[None]) -> State | None:
    """Awaits a flow's run of `process`; returns the state its flow run should end in.

    A run cancelled from Prefect or by a signal has stopped and cleaned up every component
    by the time `running` raises or returns: its flow run ends `Cancelled`, not `Crashed`.
    `None` lets Prefect decide (`Completed`, or `Failed` for an exception, which goes on).
    """
    from prefect.exceptions import TerminationSignal
    from prefect.states import Cancelled

    try:
        await running
    except (asyncio.CancelledError, TerminationSignal, KeyboardInterrupt):
        return Cancelled(message=process.stop_reason or f"process {process.name!r} was cancelled")
    if process._cancelled:
        return Cancelled(message=process.stop_reason or CANCELLED_FROM_PREFECT)
    return None


def _as_constraint(exc: BaseException) -> ConstraintError | None:
    """The `ConstraintError` to end a run with, if a component failed on a constraint.

    Its message names the component; the component's own error is kept as the cause.
    """
    if not isinstance(exc, ComponentError):
        return None
    cause = exc.__cause__
    if not isinstance(cause, ConstraintError):
        return None
    error = ConstraintError(
        f"component {exc.component!r} ({exc.component_type}) found a constraint violated: {cause}",
        objective_value=cause.objective_value,
    )
    error.component = exc.component
    return error


def _load_prefect() -> None:
    """Imports Prefect's flow and task engines (once) where a process is made: the driver.

    This package's modules import Prefect only where they use it, so that a Ray worker that
    imports a model's module (which may import `LocalProcess` for its `__main__`) gets none
    of it. A process exists only on the driver; loading the engines with it keeps their
    import (2.5 s of CPU) out of the time from `run()` to the components' first step.
    """
    importlib.import_module("prefect.flows")
    importlib.import_module("prefect.task_engine")


def _is_cancellation(exc: BaseException) -> bool:
    from prefect.exceptions import TerminationSignal

    return isinstance(exc, asyncio.CancelledError | TerminationSignal | KeyboardInterrupt)
