"""Components as plugboard documents them: driven by hand, hierarchy, `@component`, IO.

No Prefect API is needed: these drive components directly, as plugboard's users do in their
unit tests (`io.connect`, `connector.connect_send/connect_recv`, `init()`, `step()`).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
import typing as _t

from parity_complex import Limit, Scale, Sum
from parity_events import (
    CollectHigh,
    EventWriter,
    FindHighLowValues,
    Label,
    OverDeclaredWriter,
    XEvent,
    YEvent,
)
from parity_hello import A, plus_one, pow2
import pytest

from prefect_plugboard import build_process, load_model
from prefect_plugboard.component import IO, Component, ComponentArgsDict, component
from prefect_plugboard.connector import AsyncioConnector, Channel, ConnectorBuilder
from prefect_plugboard.events import EventHandlers
from prefect_plugboard.exceptions import (
    ChannelClosedError,
    ConstraintError,
    IOSetupError,
    IOStreamClosedError,
    StepResultError,
    ValidationError,
)
from prefect_plugboard.process import LocalProcess
from prefect_plugboard.schemas import ConnectorSpec, Resource, Status
from tests.helpers import status


def link(source: str, target: str) -> AsyncioConnector:
    return AsyncioConnector(spec=ConnectorSpec(source=source, target=target))


# ----- driving a component by hand --------------------------------------------------------


async def test_a_component_driven_by_hand_reads_its_channels_and_keeps_its_status() -> None:
    scale = Scale(name="scale", parameters={"scale": 3})
    into, out_of = link("src.x", "scale.a"), link("scale.b", "sink.y")
    await scale.io.connect([into, out_of])
    assert scale.dict()["status"] == "created"
    await scale.init()
    assert status(scale) is Status.INIT
    send: Channel = await into.connect_send()
    receive: Channel = await out_of.connect_recv()
    for value in (2, 5):
        await send.send(value)
        await scale.step()
        assert status(scale) is Status.WAITING
        assert await receive.recv() == value * 3
    await send.close()
    with pytest.raises(IOStreamClosedError, match="input 'a' of component 'scale' has ended"):
        await scale.step()
    assert status(scale) is Status.COMPLETED
    with pytest.raises(ChannelClosedError):  # the end flowed on downstream
        await receive.recv()


async def test_a_step_that_raises_leaves_the_component_failed() -> None:
    limit = Limit(name="limit", maximum=1)
    into = link("src.x", "limit.a")
    await limit.io.connect([into])
    await limit.init()
    await (await into.connect_send()).send(5)
    with pytest.raises(ConstraintError, match="a = 5 is above 1"):
        await limit.step()
    assert status(limit) is Status.FAILED


async def test_run_by_hand_steps_a_source_until_it_closes() -> None:
    source = A(name="a", iters=3)
    out_of = link("a.out_1", "b.in_1")
    await source.io.connect([out_of])
    await source.init()
    await source.run()
    assert status(source) is Status.COMPLETED
    receive = await out_of.connect_recv()
    assert [await receive.recv() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ChannelClosedError):
        await receive.recv()


async def test_unconnected_fields_are_set_by_hand_and_initial_values_come_first() -> None:
    adder = Sum(name="sum")
    adder.a, adder.b = 1, 2
    await adder.step()
    assert adder.c == 3
    scale = Scale(name="scale", parameters={"scale": 10}, initial_values={"a": [4]})
    await scale.step()
    assert scale.b == 40


async def test_events_reach_a_component_driven_by_hand() -> None:
    finder, high = FindHighLowValues(name="find", low=2, high=8), CollectHigh(name="high")
    events = ConnectorBuilder(AsyncioConnector).build_event_connectors([finder, high])
    into = link("src.x", "find.value")
    await finder.io.connect([into, *events])
    await high.io.connect(events)
    send = await into.connect_send()
    for value in (9.0, 5.0):
        await send.send(value)
        await finder.step()
    await high.step()  # handles what has arrived, then steps
    assert high.seen == [9.0]
    assert high.value == 9.0


@pytest.mark.parametrize("writer_type", [EventWriter, OverDeclaredWriter])
async def test_a_writer_fed_by_events_by_hand_writes_only_whole_rows(
    in_tmp: Path, writer_type: type[EventWriter]
) -> None:
    # OverDeclaredWriter's x handler declares x and y but sets only x.
    writer = writer_type(name="save", path="xy.csv", field_names=["x", "y"])
    events = ConnectorBuilder(AsyncioConnector).build_event_connectors([writer])
    await writer.io.connect(events)
    await writer.init()
    send = {c.spec.source.entity: await c.connect_send() for c in events}
    await send["x_event"].send(XEvent(source="xs", data=Label(text="x0")))
    await writer.step()  # only x has a new value: no row
    for text in ("x1", "x2"):
        await send["x_event"].send(XEvent(source="xs", data=Label(text=text)))
    await send["y_event"].send(YEvent(source="ys", data=Label(text="y0")))
    await writer.step()  # x1 and x2 wait for the next rows
    for text in ("y1", "y2"):
        await send["y_event"].send(YEvent(source="ys", data=Label(text=text)))
        await writer.step()
    await writer.destroy()
    with (in_tmp / "xy.csv").open() as f:
        assert list(csv.reader(f)) == [["x", "y"], ["x0", "y0"], ["x1", "y1"], ["x2", "y2"]]


# ----- class hierarchy, IO and validation -------------------------------------------------


def test_exports_and_io_merge_along_the_class_hierarchy() -> None:
    class Base(Component):
        io = IO(inputs=["y"], outputs=["x"], output_events=[YEvent])
        exports = ["b"]

    class Derived(Base):
        io = IO(inputs=["w"], outputs=["v"], output_events=[XEvent])
        exports = ["a"]

    # Sorted, as plugboard has them, whatever the declarations' order.
    assert Derived.exports == ["a", "b"]
    assert (Derived.io.inputs, Derived.io.outputs) == (("w", "y"), ("v", "x"))
    assert Derived.io.output_events == (XEvent, YEvent)
    assert set(Derived(name="d").dict()["exports"]) == {"a", "b"}


def test_a_concrete_component_that_declares_nothing_is_refused() -> None:
    with pytest.raises(IOSetupError, match="Empty declares no input or output fields"):

        class Empty(Component):
            async def step(self) -> None: ...


async def test_an_instance_left_without_fields_is_refused_when_its_process_starts() -> None:
    class Dynamic(Component):
        """Its fields come from its constructor (here: none)."""

        def __init__(self, fields: list[str], **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
            super().__init__(**kwargs)
            self.io.add_inputs(*fields)

    process = LocalProcess(components=[Dynamic(name="d", fields=[])], connectors=[])
    with pytest.raises(ValidationError, match="'d' \\(Dynamic\\) has no input or output fields"):
        await process.init()


def test_io_dict_describes_fields_events_and_what_handlers_populate() -> None:
    writer = EventWriter(name="save", path="unused.csv", field_names=["x", "y"], initial_values={})
    assert writer.io.dict() == {
        "namespace": "save",
        "inputs": ["x", "y"],
        "outputs": [],
        "input_events": ["x_event", "y_event"],
        "output_events": [],
        "initial_values": {},
        "event_field_coverage": {"x_event": ["x"], "y_event": ["y"]},
    }
    assert writer.dict()["io"] == writer.io.dict()
    assert writer.dict()["input"] == {"x": None, "y": None}


def test_the_event_handlers_registry_finds_a_class_handler() -> None:
    assert EventHandlers.get(EventWriter, XEvent) is EventWriter.on_x
    with pytest.raises(KeyError, match="no handler found"):
        EventHandlers.get(CollectHigh, XEvent)


def test_export_keeps_every_field_of_a_resource_object() -> None:
    exported = A(name="a", iters=2, resources=Resource(cpu="500m")).export()
    assert exported["args"]["resources"] == {"cpu": 0.5, "gpu": 0, "memory": 0, "resources": {}}


def test_constraints_and_state_are_accepted_with_a_warning_and_not_exported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Source(Component):  # `state` is not in ComponentArgsDict, nor in plugboard's
        io = IO(outputs=["x"])

    with caplog.at_level(logging.WARNING, logger="prefect_plugboard"):
        plain = Source(name="plain", constraints={}, state=None)
    assert not caplog.records  # plugboard's defaults: nothing to say
    with caplog.at_level(logging.WARNING, logger="prefect_plugboard"):
        source = Source(name="s", constraints={"max": 5}, state=object())
        A(name="a", iters=2, constraints={"max": 5})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Component 's': `constraints` are accepted for plugboard compatibility and not used",
        "Component 's': `state` is accepted for plugboard compatibility and not used: the state "
        "lives in Prefect's API (`process.state`)",
        "Component 'a': `constraints` are accepted for plugboard compatibility and not used",
    ]
    assert source.export()["args"] == {"name": "s"}
    assert plain.export()["args"] == {"name": "plain"}


def test_a_yaml_component_with_constraints_and_state_builds_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    args = {"name": "a", "iters": 2, "constraints": {"max": 5}, "state": {"kind": "dict"}}
    model = {
        "plugboard": {
            "process": {
                "args": {"components": [{"type": "parity_hello.A", "args": args}]},
            }
        }
    }
    with caplog.at_level(logging.WARNING, logger="prefect_plugboard"):
        process = build_process(load_model(model))
    assert list(process.components) == ["a"]
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "`constraints` are accepted for plugboard compatibility and not used" in warnings
    assert "`state` is accepted for plugboard compatibility and not used" in warnings


# ----- @component -------------------------------------------------------------------------


async def test_a_decorated_function_is_still_a_function_and_builds_components() -> None:
    assert pow2(3) == {"out_1": 9}
    assert await plus_one(3) == {"out_1": 4}
    squares = pow2.component(name="squares")
    assert squares.io.inputs == ("in_1",) and squares.io.outputs == ("out_1",)
    assert squares.export()["type"] == "parity_hello.pow2"
    squares.in_1 = 4
    await squares.step()
    assert squares.out_1 == 16
    unnamed = plus_one.component()
    assert unnamed.name.startswith("plus_one_")
    unnamed.in_1 = 1
    await unnamed.step()
    assert unnamed.out_1 == 2


async def test_a_decorated_function_must_return_a_dict() -> None:
    @component(inputs=["x"], outputs=["y"])
    def wrong(x: int) -> _t.Any:
        return x

    broken = wrong.component(name="broken")
    broken.x = 1
    with pytest.raises(
        StepResultError, match="wrong, the step of component 'broken', must return a dict"
    ) as raised:
        await broken.step()
    assert isinstance(raised.value, ValueError)  # what plugboard raises
    assert isinstance(raised.value, TypeError)
    assert status(broken) is Status.FAILED
