"""The projectile model of plugboard's tuning tutorial: how high does it fly?

A source emits horizontal distances `x = 0, 1, ..., iters - 1`; `Trajectory` computes the
projectile's height at each one for a launch `angle` (degrees) and `velocity` (m/s);
`MaxHeight` keeps the highest point. Tuning `angle` and `velocity` to maximise `max_y` is the
tutorial's study ([`model-with-tuner.yaml`](model-with-tuner.yaml)).
"""

from __future__ import annotations

import math
import typing as _t

from prefect_plugboard.component import IO, Component
from prefect_plugboard.schemas import ComponentArgsDict


GRAVITY = 9.81
"""m/s²."""


class Iterator(Component):
    """Emits `0, 1, ..., iters - 1` on `x`, then ends."""

    io = IO(outputs=["x"])

    def __init__(self, iters: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._iters = iters

    async def init(self) -> None:
        self._remaining = iter(range(self._iters))

    async def step(self) -> None:
        x = next(self._remaining, None)
        if x is None:
            await self.io.close()
            return
        self.x = x


class Trajectory(Component):
    """The height `y` of a projectile at horizontal distance `x`."""

    io = IO(inputs=["x"], outputs=["y"])

    def __init__(
        self,
        angle: float = 30,
        velocity: float = 20,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._angle = math.radians(angle)
        self._velocity = velocity

    async def step(self) -> None:
        cos = math.cos(self._angle)
        self.y = self.x * math.tan(self._angle) - GRAVITY * self.x**2 / (
            2 * self._velocity**2 * cos**2
        )


class MaxHeight(Component):
    """The highest `y` seen so far, as `max_y` (0 before any)."""

    io = IO(inputs=["y"], outputs=["max_y"])

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.max_y: float = 0.0

    async def step(self) -> None:
        self.max_y = max(self.max_y, self.y)


def best_height(velocity: float) -> float:
    """The highest any launch at `velocity` can reach: straight up, `v² / 2g`."""
    return velocity**2 / (2 * GRAVITY)
