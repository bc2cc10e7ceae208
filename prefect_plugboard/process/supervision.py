"""Fail-fast supervision of a process's component task runs.

Each component runs inside its own Prefect task run. The supervisor runs the component's code
in an inner asyncio task, so that stopping a component cancels only the component, never
Prefect's task engine around it: a stopped component's task function returns a `Cancelled`
state, and its task run ends `Cancelled` instead of `Crashed`. The first component that raises
stops all the others at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
import typing as _t

from prefect_plugboard.exceptions import ComponentCrashedError, ComponentError


__all__ = ["ComponentFailure", "ReportedError", "Supervisor"]


class ReportedError(Exception):
    """A component's error as its worker reported it (`"Type: message"`).

    Stands in for the exception itself where that could not be sent back: it could not be
    pickled, or the worker was killed first.
    """


@dataclass(frozen=True)
class ComponentFailure:
    """The first failure of a run: which component, and what it raised.

    Attributes:
        component: The component's name.
        component_type: Its class name.
        exception: What it raised, or what stopped it from running.
        crashed: It did not fail by itself: what ran it died (`ComponentCrashedError`).
        what: How it ended, for the message (`failed`, or how it crashed).
    """

    component: str
    component_type: str
    exception: BaseException
    crashed: bool = False
    what: str = "failed"

    def to_error(self) -> ComponentError:
        """Returns the `ComponentError` to raise, with the component's exception as cause."""
        exc = self.exception
        what = self.what
        detail = str(exc) if isinstance(exc, ReportedError) else f"{type(exc).__name__}: {exc}"
        message = f"component {self.component!r} ({self.component_type}) {what}: {detail}"
        error_type = ComponentCrashedError if self.crashed else ComponentError
        error = error_type(self.component, self.component_type, message)
        error.__cause__ = exc
        return error


class Supervisor:
    """Tracks the components of one run and stops them all when one fails.

    Args:
        process_name: For messages.
    """

    def __init__(self, process_name: str) -> None:
        self.process_name = process_name
        self.stop_reason: str | None = None
        self.failure: ComponentFailure | None = None
        self.interrupted: BaseException | None = None
        self._running: dict[str, asyncio.Task[_t.Any]] = {}

    async def run_component(
        self, name: str, component_type: str, body: Callable[[], Awaitable[_t.Any]]
    ) -> _t.Any:
        """Runs one component's code; meant to be the body of its Prefect task.

        Args:
            name: The component's name.
            component_type: The component's class name, for messages.
            body: Runs the component to its end.

        Returns:
            What `body` returned, or a `Cancelled` state if the run was stopped first.

        Raises:
            BaseException: Whatever the component raised (after stopping its siblings).
        """
        from prefect.exceptions import TerminationSignal
        from prefect.states import Cancelled

        if self.stop_reason is not None:
            return Cancelled(message=self.stop_reason)
        inner = asyncio.ensure_future(body())
        self._running[name] = inner
        try:
            return await inner
        except asyncio.CancelledError:
            # Stopped by us (a failure elsewhere, a stop), or the task run itself is being
            # cancelled (its flow run is torn down): either way the others stop too, and the
            # task run ends Cancelled rather than Crashed.
            self.stop(f"process {self.process_name!r} was cancelled")
            if not inner.done():  # let the component end (destroy() runs) before reporting
                inner.cancel()
                await asyncio.wait({inner})
            return Cancelled(message=self.stop_reason)
        except (TerminationSignal, KeyboardInterrupt) as exc:
            # The signal landed in this component's own code: stop the run, and hand the
            # signal on once every component has ended (see `wait`).
            self.interrupted = self.interrupted or exc
            self.stop(f"process {self.process_name!r} was interrupted ({type(exc).__name__})")
            return Cancelled(message=self.stop_reason)
        except BaseException as exc:
            self.fail(name, component_type, exc)
            raise
        finally:
            self._running.pop(name, None)

    def fail(self, name: str, component_type: str, exception: BaseException) -> None:
        """Records a component's failure (the first one wins) and stops the others."""
        if self.failure is None:
            self.failure = ComponentFailure(name, component_type, exception)
        self.stop(f"stopped because component {name!r} failed")

    def stop(self, reason: str) -> None:
        """Stops every running component at once; later calls keep the first reason."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        for inner in self._running.values():
            if not inner.done():
                inner.cancel()

    async def wait(
        self, runs: Mapping[str, Awaitable[_t.Any]], types: Mapping[str, str]
    ) -> dict[str, _t.Any]:
        """Starts and waits for every component's task run; raises the first failure.

        If the waiting itself is cancelled, every component is stopped and its task run is
        allowed to end (`Cancelled`) before the cancellation propagates.

        Args:
            runs: Per component, the awaitable of its Prefect task run.
            types: Per component, its class name, for messages.

        Returns:
            Per component, what its task run returned (a `State` if it was stopped).

        Raises:
            ComponentError: A component failed; its exception is the cause.
        """
        tasks: dict[str, asyncio.Future[_t.Any]] = {}
        pending: set[asyncio.Future[_t.Any]] = set()
        try:
            for name, run in runs.items():
                pending.add(tasks.setdefault(name, asyncio.ensure_future(run)))
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for name, task in tasks.items():
                    if task in done and not task.cancelled() and task.exception() is not None:
                        self.fail(name, types[name], _t.cast(BaseException, task.exception()))
        except BaseException:
            self.stop(f"process {self.process_name!r} was cancelled")
            if pending:
                await asyncio.wait(pending)
            raise
        if self.failure is not None:
            raise self.failure.to_error()
        if self.interrupted is not None:
            raise self.interrupted
        return {name: task.result() for name, task in tasks.items()}
