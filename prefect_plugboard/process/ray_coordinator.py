"""`RunCoordinator`: the one Ray actor of a run, where its components meet.

Components register the address they receive on and look up the addresses they send to; the
first failure, or a stop from the driver, is broadcast to every component at once (each waits
on `wait_stop`, so nobody polls); and each component leaves its final state here for the
driver to copy back. The driver also learns here which components' code has ended, and which
one failed first, even if the worker that ran it is killed before Prefect hears of it. The
driver creates it with no CPU and kills it when the run ends.
"""

from __future__ import annotations

import asyncio
import typing as _t

from prefect_plugboard.connector.stream import StreamAddress
from prefect_plugboard.schemas.status import Status


__all__ = ["RunCoordinator"]


class RunCoordinator:
    """Addresses, stop signal and final states of one run's components (a Ray actor)."""

    def __init__(self) -> None:
        self._addresses: dict[str, StreamAddress] = {}
        self._registered: dict[str, asyncio.Event] = {}
        self._stopped = asyncio.Event()
        self._stop_reason = ""
        self._graceful = False
        self._finals: dict[str, dict[str, _t.Any]] = {}
        self._ended: dict[str, str] = {}
        self._failure: tuple[str, str] | None = None
        self._progress: dict[str, dict[str, _t.Any]] = {}
        self._version = 0
        self._changed = asyncio.Event()

    def _event(self, component: str) -> asyncio.Event:
        return self._registered.setdefault(component, asyncio.Event())

    async def register(self, component: str, address: StreamAddress) -> None:
        """Records where `component` receives its inputs."""
        self._addresses[component] = address
        self._event(component).set()

    async def lookup(self, component: str) -> StreamAddress | None:
        """Waits until `component` has registered; `None` if the run stops first."""
        registered = asyncio.ensure_future(self._event(component).wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({registered, stopped}, return_when=asyncio.FIRST_COMPLETED)
        registered.cancel()
        stopped.cancel()
        return self._addresses.get(component)

    async def stop(self, reason: str, graceful: bool = False) -> None:
        """Tells every component to stop; the first reason is kept.

        Args:
            reason: Why, for the components' task runs.
            graceful: A stop asked for (a `StopEvent`, `process.stop()`), not a failure.
        """
        if not self._stopped.is_set():
            self._stop_reason = reason
            self._graceful = graceful
            self._stopped.set()
            self._changed.set()  # a waiting `progress_after` returns: no report is due

    async def graceful_stop(self) -> str | None:
        """The reason of a stop that was asked for, if the run was stopped that way."""
        return self._stop_reason if self._graceful else None

    async def fail(self, component: str, error: str) -> None:
        """Stops the others because `component` failed; the first failure is kept.

        Its code has ended by then. The error itself reaches the driver with the task's
        result; `error` (its type and message) stands in if that result never comes.
        """
        self._ended[component] = Status.FAILED
        if self._failure is None:
            self._failure = (component, error)
        await self.stop(f"stopped because component {component!r} failed")

    async def failure(self) -> tuple[str, str] | None:
        """The first component that failed and its error (`"Type: message"`), if any."""
        return self._failure

    async def ended(self) -> dict[str, str]:
        """The components whose own code has ended, and their status (`failed`, ...).

        What is left for them is their worker's report to Prefect.
        """
        return dict(self._ended)

    async def wait_stop(self) -> str:
        """Returns the stop reason once the run is told to stop."""
        await self._stopped.wait()
        return self._stop_reason

    async def report_final(self, component: str, state: dict[str, _t.Any]) -> None:
        """Keeps a component's final state for the driver; its code has ended."""
        self._ended.setdefault(component, state["status"])
        self._finals[component] = state

    async def finals(self) -> dict[str, dict[str, _t.Any]]:
        """Returns every final state reported so far."""
        return self._finals

    async def report_progress(self, component: str, progress: dict[str, _t.Any]) -> None:
        """Records a component's status and figures while it runs."""
        self._progress[component] = progress
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def progress_after(self, version: int) -> tuple[int, dict[str, dict[str, _t.Any]]]:
        """Waits for progress newer than `version`; returns the new version and every report."""
        while self._version <= version and not self._stopped.is_set():
            await self._changed.wait()
        return self._version, self._progress
