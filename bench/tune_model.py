"""The benchmark's model for `bench/tune.py`: plugboard's tuning tutorial with compute.

`Trajectory` does `work` units of pure-Python arithmetic per step (the same loop as the
peer's model in `bench/peer/tune_peer_model.py`), so a trial has a known amount of compute.
"""

import math
import typing as _t

from prefect_plugboard import IO, Component, ComponentArgsDict


def burn(work: int) -> int:
    """Pure-Python arithmetic: the model's compute (the same loop on both sides)."""
    total = 0
    for i in range(work):
        total += i * i % 7
    return total


class Iterator(Component):
    io = IO(outputs=["x"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._iters = iters

    async def init(self) -> None:
        self._seq = iter(range(self._iters))

    async def step(self) -> None:
        x = next(self._seq, None)
        if x is None:
            await self.io.close()
            return
        self.x = x


class Trajectory(Component):
    io = IO(inputs=["x"], outputs=["y"])

    def __init__(
        self, angle: float, velocity: float, work: int, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self._angle = math.radians(angle)
        self._velocity = velocity
        self._work = work

    async def step(self) -> None:
        burn(self._work)
        cos = math.cos(self._angle)
        self.y = self.x * math.tan(self._angle) - 9.81 * self.x**2 / (
            2 * self._velocity**2 * cos**2
        )


class MaxHeight(Component):
    io = IO(inputs=["y"], outputs=["max_y"])

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.max_y: float = 0.0

    async def step(self) -> None:
        self.max_y = max(self.y, self.max_y)
