"""A user's own module of components, imported by `by_address.py` from beside it."""

import typing as _t

from prefect_plugboard import IO, Component, ComponentArgsDict


class Doubler(Component):
    """Doubles its input."""

    io = IO(inputs=["x"], outputs=["y"])

    def __init__(self, factor: int = 2, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._factor = factor

    async def step(self) -> None:
        self.y = self.x * self._factor
