"""Memory stays flat under load: bounded channels hold back a source faster than its sink."""

import hashlib
import threading
import typing as _t

import pytest

from prefect_plugboard import IO, Component, ComponentArgsDict, LocalProcess
from prefect_plugboard.testing import PassThrough, run_in_memory
from tests.helpers import connect


class Strings(Component):
    """Emits `count` distinct strings as fast as it may."""

    io = IO(outputs=["x"])

    def __init__(self, count: int, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self._count = count
        self._i = 0

    async def step(self) -> None:
        if self._i == self._count:
            await self.io.close()
            return
        self.x = f"{self._i:>12}" * 16
        self._i += 1


class Tally(Component):
    """Counts what arrives, checking the order; slower than the source, so a backlog builds."""

    io = IO(inputs=["x"])

    def __init__(self, **kwargs: _t.Unpack[ComponentArgsDict]) -> None:
        super().__init__(**kwargs)
        self.count = 0

    async def step(self) -> None:
        assert self.x == f"{self.count:>12}" * 16
        self.digest = hashlib.blake2b(self.x.encode()).digest()
        self.count += 1


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
async def test_a_million_messages_through_three_stages_with_flat_memory() -> None:
    # The tally is slower than the source. Unbounded channels would let a backlog of the
    # ~240-byte strings build up (over 60 MiB here); bounded ones hold at most 2 x 1024.
    count = 1_000_000
    tally = Tally(name="tally")
    process = LocalProcess(
        components=[Strings(name="src", count=count), PassThrough(name="relay"), tally],
        connectors=connect("src.x -> relay.x", "relay.y -> tally.x"),
    )
    baseline = rss_mib()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, rss_mib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        await run_in_memory(process)
    finally:
        stop.set()
        sampler.join()
    assert tally.count == count
    assert peak - baseline < 25, f"RSS grew by {peak - baseline:.1f} MiB"
