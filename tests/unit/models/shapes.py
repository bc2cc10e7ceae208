"""Components for the YAML tests (a user's module beside a model file)."""

import typing as _t

from prefect_plugboard import IO, Component, ComponentArgsDict


class Count(Component):
    """Emits 0..limit-1."""

    io = IO(outputs=["n"])

    def __init__(self, limit: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._limit = limit
        self._next = 0

    async def step(self) -> None:
        if self._next == self._limit:
            await self.io.close()
            return
        self.n = self._next
        self._next += 1


class Scale(Component):
    """Multiplies n by factor."""

    io = IO(inputs=["n"], outputs=["scaled"])

    def __init__(self, factor: float = 2.0, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._factor = factor

    async def step(self) -> None:
        self.scaled = self.n * self._factor * self.parameters.get("gain", 1)


class Pair(Component):
    """Pairs its two inputs."""

    io = IO(inputs=["left", "right"], outputs=["pair"])

    async def step(self) -> None:
        self.pair = (self.left, self.right)


NOT_A_COMPONENT = 42


class Explode(Component):
    """Passes n on; raises on the value `at`."""

    io = IO(inputs=["n"], outputs=["out"])

    def __init__(self, at: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._at = at

    async def step(self) -> None:
        if self.n == self._at:
            raise ArithmeticError(f"exploded at {self.n}")
        self.out = self.n


class Forever(Component):
    """Emits a value every 50 ms until stopped; notes that it ran and was destroyed."""

    io = IO(outputs=["n"])

    def __init__(self, marker: str, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._marker = marker
        self._n = 0

    async def step(self) -> None:
        import asyncio
        from pathlib import Path

        if self._n == 0:
            Path(self._marker + ".started").touch()
        self.n = self._n
        self._n += 1
        await asyncio.sleep(0.05)

    async def destroy(self) -> None:
        from pathlib import Path

        Path(self._marker).write_text("destroyed")
