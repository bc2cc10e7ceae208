"""plugboard's tutorial models run here, with only their imports changed, on Local and Ray.

Hello world (a source, a doubler that saves, `@component` functions), branching, a loop
with an initial value, process parameters, the event-driven model, and a `FileWriter` fed by
events. Every expected value is computed here from the model's definition.
"""

from __future__ import annotations

import csv
from pathlib import Path
import random
import typing as _t

from parity_complex import Offset, Random, Save, Scale, Sum
from parity_events import (
    CollectHigh,
    CollectLow,
    EventWriter,
    FindHighLowValues,
    Labels,
    OverDeclaredWriter,
)
from parity_hello import A, B, plus_one, pow2
import pytest

from prefect_plugboard.connector import AsyncioConnector, Connector, ConnectorBuilder, RayConnector
from prefect_plugboard.library import FileWriter
from prefect_plugboard.process import LocalProcess, Process, RayProcess
from prefect_plugboard.schemas import ConnectorSpec, Status
from tests.helpers import status
from tests.prefect_api import final_flow_run


pytestmark = pytest.mark.usefixtures("prefect_api", "in_tmp")


def build(kind: str, components: list[_t.Any], *pairs: str, **kwargs: _t.Any) -> Process:
    """The model on a LocalProcess (`local`) or a RayProcess (`ray`), with events wired."""
    connector: type[Connector] = AsyncioConnector if kind == "local" else RayConnector
    connectors = [
        connector(spec=ConnectorSpec(source=s, target=t))
        for s, t in (p.split(" -> ") for p in pairs)
    ]
    # As plugboard's tutorial does; processes here wire events without these (harmless).
    connectors += ConnectorBuilder(connector).build_event_connectors(components)
    process_type = LocalProcess if kind == "local" else RayProcess
    return process_type(components=components, connectors=connectors, **kwargs)


def here(name: str) -> str:
    """An absolute path in the test's folder: Ray workers have a working directory of their own."""
    return str(Path(name).resolve())


def lines(path: str) -> list[float]:
    return [float(line) for line in Path(path).read_text().splitlines()]


def rows(path: str) -> list[list[str]]:
    with Path(path).open() as f:
        return list(csv.reader(f))


def seeded(seed: int, count: int, low: float = 0, high: float = 10) -> list[float]:
    generator = random.Random(seed)
    return [generator.uniform(low, high) for _ in range(count)]


async def test_hello_world_with_component_functions(kind: str) -> None:
    process = build(
        kind,
        [
            A(name="component-a", iters=5),
            B(name="component-b", path=here("b.txt")),
            pow2.component(name="component-pow2"),
            plus_one.component(name="plus-one"),
            B(name="save", path=here("squares.txt")),
        ],
        "component-a.out_1 -> component-b.in_1",
        "component-a.out_1 -> component-pow2.in_1",
        "component-pow2.out_1 -> plus-one.in_1",
        "plus-one.out_1 -> save.in_1",
    )
    async with process:
        await process.run()
    assert lines("b.txt") == [2 * i for i in range(5)]
    assert lines("squares.txt") == [2 * (i**2 + 1) for i in range(5)]
    assert status(process) is Status.COMPLETED
    assert {c.status for c in process.components.values()} == {Status.COMPLETED}
    assert process.components["component-a"].out_1 == 4  # values come back, also from Ray
    run = await final_flow_run(process.flow_run_id)
    assert run.state is not None and run.state.is_completed()


async def test_branching_and_parameters(kind: str) -> None:
    process = build(
        kind,
        [
            Random(name="random", iters=5, seed=3),
            Offset(name="offset", offset=10),
            Scale(name="scale"),
            Scale(name="scale-more", parameters={"scale": 3}),  # its own wins over the process's
            Sum(name="sum"),
            Save(name="save-input", path=here("input.txt")),
            Save(name="save-output", path=here("output.txt")),
            Save(name="save-more", path=here("more.txt")),
        ],
        "random.x -> save-input.value_to_save",
        "random.x -> offset.a",
        "random.x -> scale.a",
        "random.x -> scale-more.a",
        "offset.b -> sum.a",
        "scale.b -> sum.b",
        "sum.c -> save-output.value_to_save",
        "scale-more.b -> save-more.value_to_save",
        parameters={"scale": 2},
    )
    async with process:
        await process.run()
    values = seeded(3, 5)
    assert lines("input.txt") == pytest.approx(values)
    assert lines("output.txt") == pytest.approx([(v + 10) + v * 2 for v in values])
    assert lines("more.txt") == pytest.approx([v * 3 for v in values])


async def test_a_loop_starts_from_its_initial_value(kind: str) -> None:
    process = build(
        kind,
        [
            Random(name="random", iters=5, seed=3),
            Sum(name="sum"),
            Scale(name="scale", initial_values={"a": [0]}),
            Save(name="save-output", path=here("loop.txt")),
        ],
        "random.x -> sum.a",
        "scale.b -> sum.b",
        "sum.c -> scale.a",
        "sum.c -> save-output.value_to_save",
        parameters={"scale": 0.5},
    )
    async with process:
        await process.run()
    expected, total = [], 0.0
    for value in seeded(3, 5):
        total = value + 0.5 * total
        expected.append(total)
    assert lines("loop.txt") == pytest.approx(expected)


def event_model(kind: str) -> Process:
    return build(
        kind,
        [
            Random(name="random", iters=20, seed=5),
            FindHighLowValues(name="find-high-low", low=2, high=8),
            CollectHigh(name="collect-high"),
            CollectLow(name="collect-low"),
            FileWriter(name="save-high", path="high.csv", field_names=["value"]),
            FileWriter(name="save-low", path="low.csv", field_names=["value"]),
            # A FileWriter fed only by events, one field each, arriving at their own pace.
            Labels(name="xs", field="x", count=4, delay=0.01),
            Labels(name="ys", field="y", count=3, delay=0.1),
            EventWriter(name="save-xy", path="xy.csv", field_names=["x", "y"]),
        ],
        "random.x -> find-high-low.value",
        "collect-high.value -> save-high.value",
        "collect-low.value -> save-low.value",
    )


async def test_the_event_driven_model(kind: str) -> None:
    process = event_model(kind)
    async with process:
        await process.run()
    values = seeded(5, 20)
    high = [v for v in values if v >= 8]
    low = [v for v in values if v <= 2]
    assert high and low
    # `seen` is exported by their base class, `latest` by their own: both come back (on
    # Ray, from the workers).
    assert process.components["collect-high"].seen == pytest.approx(high)
    assert process.components["collect-low"].seen == pytest.approx(low)
    assert process.components["collect-high"].latest == pytest.approx(high[-1])
    assert process.components["collect-low"].latest == pytest.approx(low[-1])
    # One row per event here (plugboard's collectors step freely: a row per loop turn).
    assert [float(r[0]) for r in rows("high.csv")[1:]] == pytest.approx(high)
    assert [float(r[0]) for r in rows("low.csv")[1:]] == pytest.approx(low)
    # Whole rows only, in order: the fourth x has no y to pair with.
    assert rows("xy.csv") == [["x", "y"], ["x0", "y0"], ["x1", "y1"], ["x2", "y2"]]
    assert status(process) is Status.COMPLETED


@pytest.mark.parametrize(("x_delay", "y_delay"), [(0.01, 0.05), (0.05, 0.01)])
async def test_a_handler_declaring_more_than_it_sets_loses_no_value(
    kind: str, x_delay: float, y_delay: float
) -> None:
    # The x handler declares x and y but sets x only: x values that come before their y wait
    # their turn, none overwrites another, and the rows stay whole and in order.
    process = build(
        kind,
        [
            Labels(name="xs", field="x", count=5, delay=x_delay),
            Labels(name="ys", field="y", count=5, delay=y_delay),
            OverDeclaredWriter(name="save-xy", path=here("xy.csv"), field_names=["x", "y"]),
        ],
    )
    async with process:
        await process.run()
    assert rows("xy.csv") == [["x", "y"]] + [[f"x{i}", f"y{i}"] for i in range(5)]
