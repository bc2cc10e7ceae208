"""The stepping contract (design §3), run in memory without Prefect."""

import asyncio
import logging
from pathlib import Path
import typing as _t

import pytest

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ComponentError,
    ConnectorSpec,
    LocalProcess,
    Status,
)
from prefect_plugboard.testing import (
    Collector,
    FailingComponent,
    ListSource,
    PassThrough,
    run_in_memory,
)
from tests.helpers import Forever, connect


async def test_a_chain_delivers_every_value_in_order() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[ListSource(name="src", items=range(100)), PassThrough(name="p"), sink],
        connectors=connect("src.x -> p.x", "p.y -> sink.x", maxsize=3),
    )
    await run_in_memory(process)
    assert sink.received == list(range(100))
    assert process.status is Status.COMPLETED
    assert all(c.status is Status.COMPLETED for c in process.components.values())


async def test_fan_out_gives_every_target_every_value() -> None:
    a, b = Collector(name="a"), Collector(name="b")
    process = LocalProcess(
        components=[ListSource(name="src", items=[1, 2, 3]), a, b],
        connectors=connect("src.x -> a.x", "src.x -> b.x"),
    )
    await run_in_memory(process)
    assert a.received == b.received == [1, 2, 3]


async def test_fan_in_merges_connectors_keeping_each_ones_order() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[
            ListSource(name="evens", items=[0, 2, 4, 6]),
            ListSource(name="odds", items=[1, 3, 5]),
            sink,
        ],
        connectors=connect("evens.x -> sink.x", "odds.x -> sink.x", maxsize=1),
    )
    await run_in_memory(process)
    assert sorted(sink.received) == list(range(7))
    assert [v for v in sink.received if v % 2 == 0] == [0, 2, 4, 6]
    assert [v for v in sink.received if v % 2] == [1, 3, 5]


async def test_a_component_steps_once_per_complete_set_of_inputs() -> None:
    sink = Collector(name="sink", fields=["a", "b"])
    process = LocalProcess(
        components=[
            ListSource(name="left", items=["l1", "l2", "l3"]),
            ListSource(name="right", items=["r1", "r2"]),
            sink,
        ],
        connectors=connect("left.x -> sink.a", "right.x -> sink.b"),
    )
    await run_in_memory(process)
    # The right stream ends after two values: the sink finishes although "l3" is waiting.
    assert sink.received == [("l1", "r1"), ("l2", "r2")]


class Counter(Component):
    """Adds one to its feedback input; closes once it reaches `limit`."""

    io = IO(inputs=["fb"], outputs=["out"])

    def __init__(self, limit: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._limit = limit

    async def step(self) -> None:
        self.out = self.fb + 1
        if self.out >= self._limit:
            await self.io.close()


async def test_a_loop_starts_from_initial_values_and_ends_when_one_member_closes() -> None:
    tap = Collector(name="tap")
    process = LocalProcess(
        components=[
            Counter(name="count", limit=10, initial_values={"fb": [0]}),
            PassThrough(name="echo"),
            tap,
        ],
        connectors=connect("count.out -> echo.x", "echo.y -> count.fb", "count.out -> tap.x"),
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    assert tap.received == list(range(1, 10))


async def test_initial_values_are_consumed_before_the_channel() -> None:
    sink = Collector(name="sink", initial_values={"x": ["a", "b"]})
    process = LocalProcess(
        components=[ListSource(name="src", items=[1, 2]), sink],
        connectors=connect("src.x -> sink.x"),
    )
    await run_in_memory(process)
    assert sink.received == ["a", "b", 1, 2]


class Typo(Component):
    """The seed's Iterator: it sets `self.out_1` although its output is `x`."""

    io = IO(outputs=["x"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._iters = iters

    async def init(self) -> None:
        self._seq = iter(range(self._iters))

    async def step(self) -> None:
        try:
            self.out_1 = next(self._seq)
        except StopIteration:
            await self.io.close()


async def test_every_output_is_sent_after_every_step_and_a_stray_assignment_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[Typo(name="input", iters=4), sink], connectors=connect("input.x -> sink.x")
    )
    with caplog.at_level(logging.WARNING):
        await run_in_memory(process)
    assert sink.received == [None] * 4  # one message per step; the close step sends nothing
    warnings = [r.getMessage() for r in caplog.records if "out_1" in r.getMessage()]
    assert len(warnings) == 1
    assert "'input'" in warnings[0] and "Declared outputs: x" in warnings[0]


class Param(Component):
    io = IO(inputs=["x"], outputs=["y"])

    async def step(self) -> None:
        self.y = (self.parameters["scale"], self.parameters["offset"])


async def test_process_parameters_merge_under_each_components_own() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[0]),
            Param(name="p", parameters={"offset": 1}),
            sink,
        ],
        connectors=connect("src.x -> p.x", "p.y -> sink.x"),
        parameters={"scale": 2, "offset": 0},
    )
    await run_in_memory(process)
    assert sink.received == [(2, 1)]


async def test_a_failure_stops_every_other_component_at_once(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    boom = ValueError("boom")
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=range(10)),
            FailingComponent(name="bad", fail_on_step=3, error=boom),
            sink,
            Forever(name="busy", marker=str(busy), pause=0),
        ],
        connectors=connect("src.x -> bad.x", "bad.y -> sink.x"),
    )
    # `busy` never ends by itself: the run returning at all means the failure stopped it.
    with pytest.raises(ComponentError) as info:
        await asyncio.wait_for(run_in_memory(process), 5)
    assert info.value.component == "bad"
    assert info.value.__cause__ is boom
    assert "'bad'" in str(info.value) and "boom" in str(info.value)
    assert process.components["bad"].status is Status.FAILED
    assert process.components["busy"].status is Status.STOPPED
    assert busy.read_text() == "destroyed"
    assert sink.received == [0, 1]


async def test_a_sender_never_waits_on_a_component_that_finished() -> None:
    # `sink.b` ends after one value, so the sink finishes while `sink.a` still has a sender
    # with far more to send than the channel holds.
    sink = Collector(name="sink", fields=["a", "b"])
    process = LocalProcess(
        components=[
            ListSource(name="many", items=range(1000)),
            ListSource(name="one", items=[0]),
            sink,
        ],
        connectors=connect("many.x -> sink.a", "one.x -> sink.b", maxsize=2),
    )
    await asyncio.wait_for(run_in_memory(process), 5)
    assert sink.received == [(0, 0)]


async def test_connectors_may_be_given_as_specs_built_by_the_connector_builder() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[ListSource(name="src", items=[1, 2]), PassThrough(name="p"), sink],
        connectors=[
            ConnectorSpec(source="src.x", target="p.x"),
            {"source": "p.y", "target": "sink.x"},
        ],
        connector_builder=AsyncioConnector.builder(maxsize=1),
    )
    assert {c.maxsize for c in process.connectors.values()} == {1}
    assert all(type(c) is AsyncioConnector for c in process.connectors.values())
    await run_in_memory(process)
    assert sink.received == [1, 2]


def test_a_malformed_connector_spec_is_named_by_position() -> None:
    from prefect_plugboard import ValidationError

    with pytest.raises(ValidationError, match=r"connectors\[1\]\.source"):
        LocalProcess(
            components=[ListSource(name="src", items=[1]), Collector(name="sink")],
            connectors=[
                {"source": "src.x", "target": "sink.x"},
                {"source": "nodot", "target": "sink.x"},
            ],
        )


class FailingTwice(FailingComponent):
    """Fails on a step, then again in destroy()."""

    async def destroy(self) -> None:
        raise OSError("could not release the device")


async def test_a_destroy_that_raises_does_not_hide_the_components_own_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom = ValueError("boom")
    process = LocalProcess(
        components=[
            ListSource(name="src", items=range(5)),
            FailingTwice(name="bad", fail_on_step=2, error=boom),
            Collector(name="sink"),
        ],
        connectors=connect("src.x -> bad.x", "bad.y -> sink.x"),
    )
    with caplog.at_level(logging.WARNING), pytest.raises(ComponentError) as info:
        await asyncio.wait_for(run_in_memory(process), 5)
    assert info.value.__cause__ is boom
    assert "destroy() raised while the run was ending (ValueError: boom)" in caplog.text
    assert "could not release the device" in caplog.text


class BrokenDestroy(Collector):
    async def destroy(self) -> None:
        raise OSError("could not release the device")


async def test_a_destroy_that_raises_after_a_clean_run_fails_the_component() -> None:
    process = LocalProcess(
        components=[ListSource(name="src", items=[1]), BrokenDestroy(name="sink")],
        connectors=connect("src.x -> sink.x"),
    )
    with pytest.raises(ComponentError, match="could not release the device") as info:
        await asyncio.wait_for(run_in_memory(process), 5)
    assert info.value.component == "sink"
    assert process.components["sink"].status is Status.FAILED


async def test_a_component_blocked_by_a_full_channel_is_waiting_and_counts_it() -> None:
    sink = Collector(name="sink")
    release = asyncio.Event()

    class Gate(PassThrough):
        async def step(self) -> None:
            await release.wait()
            await super().step()

    source = ListSource(name="src", items=range(10))
    process = LocalProcess(
        components=[source, Gate(name="gate"), sink],
        connectors=connect("src.x -> gate.x", "gate.y -> sink.x", maxsize=1),
    )
    running = asyncio.ensure_future(run_in_memory(process))

    async def source_waits() -> None:
        while source.status is not Status.WAITING:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(source_waits(), 5)
    release.set()
    await asyncio.wait_for(running, 5)
    assert sink.received == list(range(10))
    assert source.run_stats.waiting_seconds > 0
