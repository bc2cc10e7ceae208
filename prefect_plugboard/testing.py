"""Helpers for testing components and graphs.

Small components to feed and observe a graph, and `run_in_memory`, which runs a graph on the
current event loop without Prefect (no API, no flow run): the same channels and stepping
rules as `LocalProcess`, for fast unit tests of your own components.

Example:
    ```python
    from prefect_plugboard.testing import Collector, ListSource, run_in_memory

    async def test_scale() -> None:
        sink = Collector(name="sink")
        process = LocalProcess(
            components=[ListSource(name="src", items=[1, 2]), Scale(name="s", factor=10), sink],
            connectors=[
                AsyncioConnector(spec=ConnectorSpec(source="src.x", target="s.x")),
                AsyncioConnector(spec=ConnectorSpec(source="s.y", target="sink.x")),
            ],
        )
        await run_in_memory(process)
        assert sink.received == [10, 20]
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import logging
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.schemas.component import ComponentArgsDict
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.local_process import LocalProcess


__all__ = ["Collector", "FailingComponent", "ListSource", "PassThrough", "run_in_memory"]


class ListSource(Component):
    """Emits the given items on one output field, one per step, then closes.

    Args:
        items: The values to emit, in order.
        field: The name of the output field.
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    def __init__(
        self, items: Iterable[_t.Any], field: str = "x", **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._items = list(items)
        self._field = field
        self.io.add_outputs(field)

    async def init(self) -> None:
        """Starts from the first item."""
        self._next = iter(self._items)

    async def step(self) -> None:
        """Emits the next item, or closes after the last."""
        try:
            self.__dict__[self._field] = next(self._next)
        except StopIteration:
            await self.io.close()


class Collector(Component):
    """Records what arrives: one value per step, or a tuple per step with several fields.

    Args:
        fields: The input fields.
        **kwargs: `name` and the other `ComponentArgsDict` arguments.

    Attributes:
        received: What arrived, in order (exported after a run).
    """

    exports = ["received"]

    def __init__(
        self, fields: Sequence[str] = ("x",), **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._fields = list(fields)
        self.io.add_inputs(*self._fields)
        self.received: list[_t.Any] = []

    async def step(self) -> None:
        """Records this step's input values."""
        state = self.__dict__
        if len(self._fields) == 1:
            self.received.append(state[self._fields[0]])
        else:
            self.received.append(tuple(state[f] for f in self._fields))


class PassThrough(Component):
    """Passes input `x` to output `y` unchanged."""

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.io.add_inputs("x")
        self.io.add_outputs("y")

    async def step(self) -> None:
        """Copies `x` to `y`."""
        self.y = self.x


class FailingComponent(PassThrough):
    """Passes `x` to `y`, and raises on one step.

    Args:
        fail_on_step: The step (1-based) on which to raise.
        error: The exception to raise; a `RuntimeError` by default.
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    def __init__(
        self,
        fail_on_step: int = 1,
        error: BaseException | None = None,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._fail_on_step = fail_on_step
        self._error = error
        self._steps = 0

    async def step(self) -> None:
        """Passes the value on, or raises on the chosen step."""
        self._steps += 1
        if self._steps == self._fail_on_step:
            raise self._error or RuntimeError(f"{self.name} failed on step {self._steps}")
        await super().step()


async def run_in_memory(process: LocalProcess) -> None:
    """Runs a `LocalProcess`'s graph on the current event loop without Prefect.

    Validation, channels, stepping, events, completion and fail-fast behave as in
    `process.run()`; there is no flow run and no task run, so no Prefect API is needed.

    Args:
        process: The process to run (initialised here if it is not yet).

    Raises:
        ValidationError: The graph is invalid.
        ComponentError: A component raised; its exception is the cause.
    """
    from prefect_plugboard.process.tasks import write_log_lines  # not on Ray workers

    await process.init()
    for name, lines in process._held_lines.items():  # what components logged in init()
        write_log_lines(logging.getLogger(f"prefect_plugboard.component.{name}"), lines)
    process._held_lines.clear()
    process.status = Status.RUNNING
    try:
        await process._supervise(as_task_runs=False)
    except BaseException:
        process.status = Status.FAILED
        raise
    process.status = Status.STOPPED if process.stop_reason is not None else Status.COMPLETED
