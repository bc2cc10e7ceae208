"""`RunCoordinator`: how a driver's runs and their workers meet in it (the rooms alone)."""

from __future__ import annotations

import asyncio

from prefect_plugboard.log_lines import LogLine
from prefect_plugboard.process.ray.coordinator import RunCoordinator
from prefect_plugboard.process.ray.reports import Ended, Failure, Lines, StopAsked
from prefect_plugboard.process.ray.stream import StreamAddress


async def test_a_failure_report_stops_the_run_for_every_worker_at_once() -> None:
    coordinator = RunCoordinator()
    stopping = asyncio.ensure_future(coordinator.wait_stop("run"))
    coordinator.report("run", [Failure("bad", "ValueError: boom")])

    assert await asyncio.wait_for(stopping, 1) == "stopped because component 'bad' failed"
    updates = await coordinator.updates("run", 0, stop_seen=False)
    assert updates.reports == [Failure("bad", "ValueError: boom")]
    assert (updates.stop_reason, updates.graceful) == (
        "stopped because component 'bad' failed",
        False,
    )


async def test_the_first_stop_is_kept_and_a_stop_event_is_graceful() -> None:
    coordinator = RunCoordinator()
    coordinator.report("run", [StopAsked("clock", "stopped by a StopEvent")])
    coordinator.report("run", [Failure("late", "KeyError: two")])

    updates = await coordinator.updates("run", 0, stop_seen=False)
    assert (updates.stop_reason, updates.graceful) == ("stopped by a StopEvent", True)
    assert len(updates.reports) == 2


async def test_reports_are_read_in_order_and_dropped_once_read() -> None:
    coordinator = RunCoordinator()
    line = LogLine(1.0, 20, "hello")
    coordinator.report("run", [Lines("a", (line,))])
    first = await coordinator.updates("run", 0, stop_seen=False)
    waiting = asyncio.ensure_future(coordinator.updates("run", first.cursor, stop_seen=False))
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing new: it waits instead of returning the same again
    ended = Ended("a", "completed", {})
    coordinator.report("run", [ended])
    second = await asyncio.wait_for(waiting, 1)
    assert (first.reports, second.reports, second.cursor) == ([Lines("a", (line,))], [ended], 2)
    assert coordinator.room("run").reports == [ended]  # the first was read: dropped


async def test_addresses_wait_for_every_component_or_the_stop() -> None:
    coordinator = RunCoordinator()
    looking = asyncio.ensure_future(coordinator.addresses("run", ["a", "b"]))
    coordinator.register("run", {"a": StreamAddress("10.0.0.1", 1)})
    await asyncio.sleep(0)
    assert not looking.done()
    coordinator.register("run", {"b": StreamAddress("10.0.0.2", 2)})
    assert await asyncio.wait_for(looking, 1) == {
        "a": StreamAddress("10.0.0.1", 1),
        "b": StreamAddress("10.0.0.2", 2),
    }

    never = asyncio.ensure_future(coordinator.addresses("run", ["c"]))
    coordinator.stop("run", "stopped")
    assert await asyncio.wait_for(never, 1) is None


async def test_workers_take_the_steps_asked_for_then_start_unless_the_run_stops() -> None:
    coordinator = RunCoordinator()
    waiting = asyncio.ensure_future(coordinator.next_command("one", 0))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert coordinator.step("one") == 1
    assert await asyncio.wait_for(waiting, 1) == ("step", 1)
    assert coordinator.step("one") == 2
    coordinator.go("one", {"log_prints": True})
    # A worker behind on its steps takes them before it starts.
    assert await coordinator.next_command("one", 1) == ("step", 2)
    assert await coordinator.next_command("one", 2) == ("go", {"log_prints": True})

    stopped = asyncio.ensure_future(coordinator.next_command("two", 0))
    coordinator.stop("two", "destroyed before it ran", graceful=True)
    assert await asyncio.wait_for(stopped, 1) is None


async def test_runs_are_apart_and_a_forgotten_run_is_gone_for_late_callers() -> None:
    coordinator = RunCoordinator()
    other = asyncio.ensure_future(coordinator.next_command("two", 0))
    coordinator.stop("one", "stopped")
    await asyncio.sleep(0)
    assert not other.done()  # a stop of one run is nothing to another
    assert sorted(coordinator.runs()) == ["one", "two"]

    coordinator.forget("one")
    assert coordinator.runs() == ["two"]
    # A worker that calls late finds the run over, and brings no room back.
    assert await asyncio.wait_for(coordinator.wait_stop("one"), 1) == "the run has ended"
    coordinator.register("one", {"a": StreamAddress("10.0.0.1", 1)})
    assert coordinator.runs() == ["two"]
    other.cancel()
