"""`RunCoordinator` as a plain object: what the driver learns from it when a run stops."""

from __future__ import annotations

import asyncio

from prefect_plugboard.process.ray_coordinator import RunCoordinator


async def test_a_failure_stops_the_run_and_marks_the_component_ended() -> None:
    coordinator = RunCoordinator()
    await coordinator.fail("bad", "ValueError: boom")

    assert await asyncio.wait_for(coordinator.wait_stop(), 1) == (
        "stopped because component 'bad' failed"
    )
    assert await coordinator.ended() == {"bad": "failed"}
    assert await coordinator.failure() == ("bad", "ValueError: boom")
    assert await coordinator.graceful_stop() is None


async def test_the_first_failure_is_kept_and_every_reported_end_counts() -> None:
    coordinator = RunCoordinator()
    await coordinator.fail("first", "ValueError: one")
    await coordinator.fail("second", "KeyError: two")
    await coordinator.report_final("second", {"status": "failed"})
    await coordinator.report_final("sink", {"status": "stopped"})

    assert await coordinator.failure() == ("first", "ValueError: one")
    assert await coordinator.ended() == {"first": "failed", "second": "failed", "sink": "stopped"}
    assert await coordinator.wait_stop() == "stopped because component 'first' failed"


async def test_a_run_stopped_on_request_has_no_failure() -> None:
    coordinator = RunCoordinator()
    await coordinator.stop("stopped by a StopEvent", graceful=True)

    assert await coordinator.failure() is None
    assert await coordinator.ended() == {}
    assert await coordinator.graceful_stop() == "stopped by a StopEvent"
