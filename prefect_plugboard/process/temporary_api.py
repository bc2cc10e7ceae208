"""Prefect's temporary API server, started while the run's other start-up work goes on.

Where no `PREFECT_API_URL` is set, Prefect starts a temporary server the first time a client
needs the API: it spawns uvicorn and waits for the server's health check, 4 to 5 s of a
seed run's time on two cores (more the first time, while it makes its database). A
`RayProcess` (or a `Tuner`) that starts a local Ray takes 2 to 4 s more for it, and its flow
run only asks for the API after that. Starting the server in the background before Ray
starts overlaps the two: on two cores about 2 s of the two starts' time is saved (they
share the cores).

Prefect's own client finds the same server afterwards: the server is one object per port,
and the one started here takes the place Prefect would have given its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextlib
import logging
import subprocess
import threading
import typing as _t

from prefect.logging.configuration import ensure_logging_setup
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED


__all__ = ["temporary_api_starting", "temporary_api_starting_async"]

_logger = logging.getLogger(__name__)


class _SpawnSignallingServer(SubprocessASGIServer):
    """Prefect's temporary server that says when its process has been spawned.

    The server process copies `os.environ` when it is spawned; Ray is then started with the
    Prefect settings taken out of `os.environ` (see `RayConnection`). Waiting for the spawn
    keeps the two from overlapping, so the server always gets the user's settings. (Were
    `_run_uvicorn_command` renamed in Prefect, `spawned` would be set once `start()` returns:
    the starts would no longer overlap, and nothing else would change.)
    """

    spawned: threading.Event

    def _run_uvicorn_command(self) -> subprocess.Popen[_t.Any]:
        try:
            return super()._run_uvicorn_command()
        finally:
            self.spawned.set()


@contextlib.contextmanager
def temporary_api_starting(*, enabled: bool = True) -> Iterator[None]:
    """Starts Prefect's temporary server in the background for the length of the block.

    Does nothing unless `enabled` (the block starts a new local Ray: the start that pays to
    overlap), nor where an API is configured, the temporary server is disabled, or one is
    running already. Otherwise the block is entered once the server's process is spawned,
    and its end waits until the server answers (or its start failed: Prefect's client then
    tries again when it needs the API, and raises its own error).
    """
    starting = _start_in_background() if enabled else None
    try:
        yield
    finally:
        if starting is not None:
            starting.join()


@contextlib.asynccontextmanager
async def temporary_api_starting_async(*, enabled: bool = True) -> AsyncIterator[None]:
    """`temporary_api_starting` for a coroutine: its end waits without blocking the loop."""
    starting = _start_in_background() if enabled else None
    try:
        yield
    finally:
        if starting is not None:
            await asyncio.to_thread(starting.join)


def _start_in_background() -> threading.Thread | None:
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    server = _SpawnSignallingServer()
    if not isinstance(server, _SpawnSignallingServer) or server.running:
        return None  # Prefect's own server object exists: it is running or being started
    server.spawned = threading.Event()
    # Prefect's logging is otherwise set up when the flow run starts: without it now, its
    # "Starting temporary server" line would be lost.
    ensure_logging_setup()

    def start() -> None:
        try:
            server.start()
        except Exception:  # Prefect's client starts it again when it needs the API
            _logger.debug("Prefect's temporary server did not start", exc_info=True)
        finally:
            server.spawned.set()

    thread = threading.Thread(target=start, name="prefect-temporary-server", daemon=True)
    thread.start()
    server.spawned.wait()
    return thread
