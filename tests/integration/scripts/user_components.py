"""A user's own module of components, imported by `by_address.py` from beside it."""

import os
import sys
import typing as _t

from prefect_plugboard import IO, Component, ComponentArgsDict


class Doubler(Component):
    """Doubles its input; notes what its worker holds of Prefect (modules, settings)."""

    io = IO(inputs=["x"], outputs=["y"])
    exports = ["prefect_modules", "prefect_settings"]

    def __init__(self, factor: int = 2, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._factor = factor

    async def init(self) -> None:
        self.prefect_modules = sorted(m for m in sys.modules if m.split(".")[0] == "prefect")
        self.prefect_settings = sorted(k for k in os.environ if k.startswith("PREFECT_"))

    async def step(self) -> None:
        self.y = self.x * self._factor
