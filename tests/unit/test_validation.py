"""Every structural problem is reported at once, before anything runs."""

import typing as _t

import pytest

from prefect_plugboard import (
    IO,
    Component,
    ComponentArgsDict,
    LocalProcess,
    ValidationError,
)
from prefect_plugboard.testing import Collector, ListSource, PassThrough, run_in_memory
from tests.helpers import connect


class Spy(PassThrough):
    inits = 0

    async def init(self) -> None:
        Spy.inits += 1


async def test_all_problems_in_one_error_and_nothing_started() -> None:
    Spy.inits = 0
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[1]),
            Spy(name="a"),
            Spy(name="a"),  # duplicate
            Spy(name="b"),
            Spy(name="loop1"),
            Spy(name="loop2"),
            Collector(name="unfed"),
        ],
        connectors=connect(
            "src.x -> a.x",
            "ghost.x -> b.x",  # unknown component
            "src.nope -> b.x",  # unknown output
            "src.x -> a.y",  # y is an output, not an input
            "loop1.y -> loop2.x",
            "loop2.y -> loop1.x",  # loop without initial values
        ),
    )
    with pytest.raises(ValidationError) as info:
        await run_in_memory(process)
    text = str(info.value)
    assert Spy.inits == 0
    assert "duplicate component name 'a'" in text and "components[2]" in text
    assert "unknown component 'ghost'" in text and "connectors[1].source" in text
    assert "has no output 'nope'" in text and "its outputs: x" in text
    assert "'y' is an output" in text
    assert "'unfed' (Collector) has unconnected inputs: x" in text
    assert "loop1 -> loop2 -> loop1" in text
    assert len(info.value.issues) == 6
    assert isinstance(info.value, ValueError)


async def test_did_you_mean_for_a_misspelt_component() -> None:
    process = LocalProcess(
        components=[ListSource(name="source", items=[1]), Collector(name="sink")],
        connectors=connect("sorce.x -> sink.x"),
    )
    with pytest.raises(ValidationError, match="; did you mean 'source'"):
        await process.init()


async def test_a_loop_with_initial_values_inside_it_is_valid() -> None:
    process = LocalProcess(
        components=[Spy(name="a", initial_values={"x": [0]}), Spy(name="b")],
        connectors=connect("a.y -> b.x", "b.y -> a.x"),
    )
    await process.init()


async def test_a_self_loop_needs_initial_values_too() -> None:
    process = LocalProcess(components=[Spy(name="a")], connectors=connect("a.y -> a.x"))
    with pytest.raises(ValidationError, match="a -> a"):
        await process.init()


async def test_initial_values_for_an_unknown_input_are_named() -> None:
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[1]),
            Collector(name="sink", initial_values={"y": [1]}),
        ],
        connectors=connect("src.x -> sink.x"),
    )
    with pytest.raises(ValidationError, match="initial_values for 'y'"):
        await process.init()


class NoSuper(Component):
    io = IO(inputs=["x"])

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        pass


async def test_a_component_that_skipped_super_init_is_named() -> None:
    process = LocalProcess(components=[NoSuper(name="lazy")], connectors=[])
    with pytest.raises(ValidationError, match=r"NoSuper.__init__ did not call super"):
        await process.init()


async def test_duplicate_connectors_are_refused() -> None:
    process = LocalProcess(
        components=[ListSource(name="src", items=[1]), Collector(name="sink")],
        connectors=connect("src.x -> sink.x", "src.x -> sink.x"),
    )
    with pytest.raises(ValidationError, match=r"duplicate connector src.x -> sink.x"):
        await process.init()
