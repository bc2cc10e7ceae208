"""plugboard's first model: a source, a component that doubles and saves, and `@component`."""

import typing as _t

from parity_api import IO, Component, ComponentArgsDict, component


class A(Component):
    """Emits 0, 1, ... `iters - 1` on `out_1`, then closes."""

    io = IO(outputs=["out_1"])

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


class B(Component):
    """Writes twice its input, one line per step, to a text file."""

    io = IO(inputs=["in_1"])

    def __init__(self, path: str, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._path = path

    async def init(self) -> None:
        self._f = open(self._path, "w")

    async def step(self) -> None:
        self._f.write(f"{2 * self.in_1}\n")
        self._f.flush()

    async def destroy(self) -> None:
        self._f.close()


@component(inputs=["in_1"], outputs=["out_1"])
def pow2(in_1: int) -> dict[str, int]:
    """Squares its input."""
    return {"out_1": in_1**2}


@component(inputs=["in_1"], outputs=["out_1"])
async def plus_one(in_1: int) -> dict[str, int]:
    """Adds one, asynchronously."""
    return {"out_1": in_1 + 1}
