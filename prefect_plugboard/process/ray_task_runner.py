"""`PlugboardRayTaskRunner`: prefect-ray's task runner, made safe for long-lived components."""

from __future__ import annotations

import logging
import os
import typing as _t

from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect_ray import RayTaskRunner

from prefect_plugboard.process.tasks import prime_no_limits_cache


__all__ = ["PlugboardRayTaskRunner", "drain_prefect_services"]

DRAIN_TIMEOUT = 10.0
"""Longest wait (s) for a worker to hand its last logs and state events to the Prefect API."""


def drain_prefect_services(timeout: float = DRAIN_TIMEOUT) -> None:
    """Sends what this process's log and event workers still hold to the Prefect API.

    A Ray worker batches a task run's logs and state events in background threads; if the
    cluster shuts down right after the task returns, the last ones are lost (design §4).
    """
    # Draining is what we asked for: the services' "still processing items" warnings are
    # noise. Prefect keeps every service's instances in one registry, so draining either
    # class drains both: both loggers are quiet for the whole drain.
    loggers = [logging.getLogger(s.__name__) for s in (APILogWorker, EventsWorker)]
    levels = [service_logger.level for service_logger in loggers]
    for service_logger in loggers:
        service_logger.setLevel(logging.ERROR)
    try:
        for service in (APILogWorker, EventsWorker):
            service.drain_all(timeout=timeout)
    finally:
        for service_logger, level in zip(loggers, levels, strict=True):
            service_logger.setLevel(level)


class PlugboardRayTaskRunner(RayTaskRunner):  # type: ignore[misc]
    """A `RayTaskRunner` whose task runs deliver every log line and final state.

    It also starts a fresh local Ray instance when no address is given (neither `address` nor
    `RAY_ADDRESS`), instead of following a possibly stale `/tmp/ray/ray_current_cluster` to a
    cluster that is gone. As with prefect-ray, a Ray instance it finds running is used and
    left running; one it starts, it shuts down.

    Args:
        address: A Ray cluster address (`"auto"`, `"host:port"`, `"ray://host:10001"`), or
            `None` to use `RAY_ADDRESS` or else start a local instance.
        init_kwargs: Keyword arguments for `ray.init`.
    """

    def __init__(
        self, address: str | None = None, init_kwargs: dict[str, _t.Any] | None = None
    ) -> None:
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or "local"
        super().__init__(address=address, init_kwargs=init_kwargs)

    @staticmethod
    def _run_prefect_task(*args: _t.Any, **kwargs: _t.Any) -> _t.Any:
        task = kwargs.get("task")
        if getattr(task, "_plugboard_skip_tag_leases", False):
            # The driver found no concurrency limit on these tags (see tasks.py).
            prime_no_limits_cache([frozenset(task.tags)], set())  # type: ignore[union-attr]
        try:
            return RayTaskRunner._run_prefect_task(*args, **kwargs)
        finally:
            drain_prefect_services()
