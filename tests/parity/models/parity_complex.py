"""plugboard's branching, looping and parameters models, with a seeded random source."""

import random
import typing as _t

from parity_api import IO, Component, ComponentArgsDict, ConstraintError


class Random(Component):
    """Emits `iters` seeded random numbers in [low, high) on `x`, then closes."""

    io = IO(outputs=["x"])

    def __init__(
        self,
        iters: int = 5,
        low: float = 0,
        high: float = 10,
        seed: int = 0,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._iters, self._low, self._high = iters, low, high
        self._random = random.Random(seed)
        self._count = 0

    async def step(self) -> None:
        if self._count == self._iters:
            await self.io.close()
            return
        self.x = self._random.uniform(self._low, self._high)
        self._count += 1


class Offset(Component):
    """Adds a fixed offset: `b = a + offset`."""

    io = IO(inputs=["a"], outputs=["b"])

    def __init__(self, offset: float = 0, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._offset = offset

    async def step(self) -> None:
        self.b = self.a + self._offset


class Scale(Component):
    """Multiplies by the process parameter `scale` (or its own): `b = a * scale`."""

    io = IO(inputs=["a"], outputs=["b"])

    async def step(self) -> None:
        self.b = self.a * self.parameters["scale"]


class Sum(Component):
    """Adds its two inputs."""

    io = IO(inputs=["a", "b"], outputs=["c"])

    async def step(self) -> None:
        self.c = self.a + self.b


class Save(Component):
    """Writes each value it gets, one line per step."""

    io = IO(inputs=["value_to_save"])

    def __init__(self, path: str, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._path = path

    async def init(self) -> None:
        self._f = open(self._path, "w")

    async def step(self) -> None:
        self._f.write(f"{self.value_to_save}\n")
        self._f.flush()

    async def destroy(self) -> None:
        self._f.close()


class Limit(Component):
    """Passes `a` on as `b`; raises `ConstraintError` once `a` exceeds `maximum`."""

    io = IO(inputs=["a"], outputs=["b"])

    def __init__(self, maximum: float, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._maximum = maximum

    async def step(self) -> None:
        if self.a > self._maximum:
            raise ConstraintError(f"a = {self.a} is above {self._maximum}", objective_value=-1.0)
        self.b = self.a
