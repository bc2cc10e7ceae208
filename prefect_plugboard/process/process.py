"""`Process`: a graph of components and connectors, run as one Prefect flow run."""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
from collections.abc import Awaitable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
import functools
import importlib
import inspect
import logging
import os
from pathlib import Path
import secrets
import typing as _t
from uuid import UUID

from prefect import Flow
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal
from prefect.states import Cancelled
from pydantic import BaseModel, ValidationError as PydanticValidationError
import yaml

from prefect_plugboard.component.component import Component
from prefect_plugboard.connector.connector import Connector, ConnectorBuilder
from prefect_plugboard.exceptions import Issue, ProcessStateError, ValidationError
from prefect_plugboard.process.artifacts import publish_graph, publish_summary
from prefect_plugboard.process.cancellation import sigterm_stops, watch_for_cancellation
from prefect_plugboard.process.validation import validate_graph
from prefect_plugboard.schemas.connector import ConnectorSpec
from prefect_plugboard.schemas.status import Status


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
        issues += self._check_connectors()
        if issues:
            raise ValidationError(issues, subject=f"process {self.name!r}")
        for component in self._component_list:
            component.parameters = {**self.parameters, **component.parameters}
        await self._prepare()
        self.status = Status.INIT

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
        elif self.status is not Status.INIT:
            msg = (
                f"process {self.name!r} is {self.status}; a process runs once, build a new one "
                "to run the graph again"
            )
            raise ProcessStateError(msg)
        self.status = Status.RUNNING
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

    def _check_connectors(self) -> list[Issue]:
        """Returns problems with the connector kinds for this process type."""
        return []

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
        try:
            with sigterm_stops(functools.partial(self._cancel, "the run received SIGTERM")):
                await self._run_components()
            outcome = "completed" if self.stop_reason is None else f"stopped: {self.stop_reason}"
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

    def _cancel(self, reason: str) -> None:
        """Stops the run as cancelled: its flow run ends `Cancelled`, not `Completed`."""
        self._cancelled = True
        self._request_stop(reason)

    def _flow(self) -> Flow[[], Coroutine[_t.Any, _t.Any, State | None]]:
        async def run_process() -> State | None:
            return await ending_state(self, self._run_in_current_flow())

        return Flow(
            fn=run_process,
            name=self.flow_name,
            description=f"Runs the plugboard process {self.name!r} ({type(self).__name__}).",
            validate_parameters=False,
            persist_result=False,
        )

    def export(self) -> dict[str, _t.Any]:
        """Returns the model as YAML-ready data (the `plugboard:` root), as `dump` writes it."""
        kinds = {type(c) for c in self._connector_list}
        builder_cls = kinds.pop() if len(kinds) == 1 else self.default_connector
        defaults = _setting_defaults(builder_cls)
        connectors = []
        for connector in self._connector_list:
            entry = connector.export()
            own = {k: v for k, v in connector.settings().items() if defaults.get(k) != v}
            if type(connector) is not builder_cls:
                msg = "connectors of several classes cannot be written to one YAML model"
                raise ValueError(msg)
            if own:
                entry["args"] = own
            connectors.append(entry)
        args: dict[str, _t.Any] = {"name": self.name}
        if self.parameters:
            args["parameters"] = self.parameters
        args["components"] = [c.export() for c in self._component_list]
        args["connectors"] = connectors
        return {
            "plugboard": {
                "process": {
                    "type": public_path(type(self)),
                    "connector_builder": {"type": public_path(builder_cls)},
                    "args": args,
                }
            }
        }

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Writes the model to a YAML file that `prefect-plugboard run` (and `build_flow`) reads.

        Raises:
            ValueError: A constructor argument cannot be written as YAML, or a class is
                defined in a script (`__main__`), which a YAML file cannot name.
        """
        data = self.export()
        for component in self._component_list:
            if type(component).__module__ == "__main__":
                msg = (
                    f"component {component.name!r}: its class {type(component).__qualname__} is "
                    "defined in a script; move it to a module so a YAML file can name it"
                )
                raise ValueError(msg)
        try:
            text = yaml.safe_dump(_plain(data), sort_keys=False)
        except yaml.YAMLError as exc:
            msg = f"process {self.name!r} cannot be written as YAML: {exc}"
            raise ValueError(msg) from None
        Path(path).write_text(text, encoding="utf-8")

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


async def ending_state(process: Process, running: Awaitable[None]) -> State | None:
    """Awaits a flow's run of `process`; returns the state its flow run should end in.

    A run cancelled from Prefect or by a signal has stopped and cleaned up every component
    by the time `running` raises or returns: its flow run ends `Cancelled`, not `Crashed`.
    `None` lets Prefect decide (`Completed`, or `Failed` for an exception, which goes on).
    """
    try:
        await running
    except (asyncio.CancelledError, TerminationSignal, KeyboardInterrupt):
        return Cancelled(message=process.stop_reason or f"process {process.name!r} was cancelled")
    if process._cancelled:
        return Cancelled(message=process.stop_reason or CANCELLED_FROM_PREFECT)
    return None


def public_path(cls: type) -> str:
    """The import path users see: `prefect_plugboard.process.LocalProcess`, not the module's."""
    module = cls.__module__
    if module.startswith(("prefect_plugboard.process.", "prefect_plugboard.connector.")):
        package = module.rsplit(".", 1)[0]
        if getattr(importlib.import_module(package), cls.__name__, None) is cls:
            return f"{package}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def _setting_defaults(cls: type) -> dict[str, _t.Any]:
    return {
        name: param.default
        for name, param in inspect.signature(cls).parameters.items()
        if param.default is not param.empty
    }


def _plain(value: _t.Any) -> _t.Any:
    """Turns a value into plain YAML data (paths to text, models to dicts, tuples to lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(exclude_defaults=True))
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError | TerminationSignal | KeyboardInterrupt)
