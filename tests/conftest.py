"""Session-wide fixtures: one Prefect test API for the whole session."""

from __future__ import annotations

import os


# Set before Prefect is imported anywhere: no telemetry from a machine without a network.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# The websockets library's back-off (read when it is imported): a reconnect test waits for
# its pauses, here at most 0.5 s for the first and 0.3 s growing for the next, not 5 and 3.1 s.
os.environ.setdefault("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "0.5")
os.environ.setdefault("WEBSOCKETS_BACKOFF_MIN_DELAY", "0.3")

from collections.abc import Iterator
import signal
import typing as _t

from prefect.settings import PREFECT_API_URL, temporary_settings
import pytest

from tests.shared_server import (
    environment,
    make_run_folder,
    remove_run_folder,
    shared_api,
    taking_turns,
)


MODULES_SHARING_A_FIXTURE = (
    "tests/integration/test_deployments_served.py",  # a long served run beside the tests
    "tests/integration/test_deployments_pool.py",  # one `prefect worker start`
    "tests/integration/test_ray_clusters.py",  # one `ray start --head`
)
"""Modules whose tests share a module-scoped server or cluster: one pytest-xdist worker runs
each of them, so it is started once."""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: _t.Any) -> _t.Any:
    """Tests go to pytest-xdist's workers one by one, except that each module of
    `MODULES_SHARING_A_FIXTURE` goes whole to one worker, and first (the largest unit first).

    (`--dist loadgroup` would do this with `xdist_group` marks, but pytest-xdist 3.8 cannot
    rename the tests of pytest 9.2, so its groups are ignored.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class ModulesSharingAFixtureTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in MODULES_SHARING_A_FIXTURE else nodeid

    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    return ModulesSharingAFixtureTogether(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> _t.Any:
    """Each test (its fixtures' set-up and tear-down included) takes its turn: a `timing`
    test while no other worker runs one, the others side by side."""
    with taking_turns(alone=item.get_closest_marker("timing") is not None):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> _t.Any:
    """A test that timed out reports what every task of the session's event loop awaited:
    pytest-timeout shows the threads, where an async test only shows its loop's `select`."""
    report = yield
    if report.failed and call.excinfo is not None and "Timeout" in str(call.excinfo.value):
        report.sections.append(("asyncio tasks at the timeout", _pending_tasks()))
    return report


def _pending_tasks() -> str:
    import asyncio
    import gc
    import io

    lines = io.StringIO()
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for loop in loops:
        if not loop.is_closed():
            for task in asyncio.all_tasks(loop):
                lines.write(f"{task.get_name()}:\n")
                awaited: _t.Any = task.get_coro()
                while awaited is not None:  # the chain of awaits, outermost first
                    frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
                    if frame is None:
                        lines.write(f"    awaiting {awaited!r}\n")
                        break
                    code = frame.f_code
                    lines.write(f"    {code.co_filename}:{frame.f_lineno} {code.co_name}\n")
                    awaited = getattr(awaited, "cr_await", None) or getattr(
                        awaited, "gi_yieldfrom", None
                    )
    return lines.getvalue() or "no pending task"


UNREACHABLE_API = "http://127.0.0.1:9/api"
"""The Prefect API the session's Ray workers are told about: nothing listens there."""


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local Ray instance shaped like the seed's `ray start --head --num-cpus=4 --num-gpus=1
    --resources='{"custom_hardware": 5}'`, started with explicit settings (never a stale
    cluster) and stopped at the end of the session.

    Its workers are given a Prefect API where nothing listens, and a key: a worker that
    talked to Prefect would fail, so every Ray test shows that workers never do. They inherit
    them from the Ray processes started here, not from a `runtime_env`: a worker with one
    starts through Ray's `setup_worker.py`, in twice the time (1.1 s against 0.5 s here).
    """
    import logging

    import ray

    with environment(PREFECT_API_URL=UNREACHABLE_API, PREFECT_API_KEY="not-for-workers"):
        ray.init(
            address="local",
            num_cpus=4,
            num_gpus=1,
            resources={"custom_hardware": 5},
            include_dashboard=False,
            namespace="prefect",
            logging_level=logging.WARNING,
        )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_cluster: None) -> str:
    """The address of the session's Ray cluster, for scripts that join it."""
    import ray

    return str(ray.get_runtime_context().gcs_address)


def pytest_configure(config: pytest.Config) -> None:
    # A shell that starts a command in the background (`.ci/run &`, CI runners) starts it with
    # SIGINT ignored, and every process it starts inherits that: the `prefect` servers,
    # runners and workers that tests stop with Ctrl-C's signal would then wait out their
    # whole stop grace (20 s each). With a handler here, the processes tests start get
    # SIGINT's default back, as they would from a terminal.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.stash[_OWNS_RUN_FOLDER] = make_run_folder()


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_OWNS_RUN_FOLDER, False):
        remove_run_folder()


_OWNS_RUN_FOLDER = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The run's Prefect API: one `prefect server start` (temporary database) for the whole
    test run, pytest-xdist's workers included (see `tests/shared_server.py`); its URL."""
    url = shared_api()
    with temporary_settings({PREFECT_API_URL: url}), environment(PREFECT_API_URL=url):
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session (started here, stopped by PID at the end); its URL.

    Skips, saying why, where the server programs are missing or the server cannot start.
    """
    from tests.postgres import postgres_server

    server = postgres_server()
    try:
        url = server.__enter__()
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL server for this test: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
