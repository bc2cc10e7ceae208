"""The README's quick start: count -> square -> CSV, on a LocalProcess.

Run `python examples/quickstart/squares.py`; it writes `squares.csv` in the working directory.
"""

import asyncio
import typing as _t

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    LocalProcess,
)
from prefect_plugboard.library import FileWriter


class Count(Component):
    """Emits 0, 1, ... up to `limit`."""

    io = IO(outputs=["n"])

    def __init__(self, limit: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._limit = limit
        self._next = 0

    async def step(self) -> None:
        if self._next == self._limit:
            await self.io.close()  # a source ends its stream; the end flows downstream
            return
        self.n = self._next
        self._next += 1


class Square(Component):
    """Squares its input."""

    io = IO(inputs=["n"], outputs=["square"])

    async def step(self) -> None:
        self.square = self.n**2
        self.logger.info("%s squared is %s", self.n, self.square)  # in this task run's logs


process = LocalProcess(
    components=[
        Count(name="count", limit=5),
        Square(name="square"),
        FileWriter(name="save", path="squares.csv", field_names=["square"]),
    ],
    connectors=[
        AsyncioConnector(spec=ConnectorSpec(source="count.n", target="square.n")),
        AsyncioConnector(spec=ConnectorSpec(source="square.square", target="save.square")),
    ],
)


async def main() -> None:
    async with process:
        await process.run()


if __name__ == "__main__":
    asyncio.run(main())
