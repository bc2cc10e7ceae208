"""SIGTERM during a run is a stop (a second one takes the way out that was there before), and
joining or starting Ray keeps the SIGTERM handler Prefect installed for a flow run."""

import asyncio
import os
import signal
import sys
import types

from prefect_plugboard.process.cancellation import signals_stop, sigterm_stops
from prefect_plugboard.process.ray.cluster import _keeping_sigterm_handler


async def test_a_sigterm_calls_back_on_the_loop_and_a_second_one_goes_to_the_old_handler() -> None:
    old_handler_calls: list[int] = []

    def old_handler(signum: int, frame: types.FrameType | None) -> None:
        old_handler_calls.append(signum)

    stopped = asyncio.Event()
    original = signal.signal(signal.SIGTERM, old_handler)
    try:
        with sigterm_stops(stopped.set):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stopped.wait(), 5)
            assert old_handler_calls == []
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0)  # Python runs the handler between bytecodes of this thread
            assert old_handler_calls == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is old_handler  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, original)


def test_the_handler_in_place_before_ray_init_is_kept() -> None:
    def prefect_handler(signum: int, frame: types.FrameType | None) -> None:
        raise RuntimeError("cancel the run")

    def ray_handler(signum: int, frame: types.FrameType | None) -> None:
        sys.exit(signum)

    original = signal.signal(signal.SIGTERM, prefect_handler)
    try:
        with _keeping_sigterm_handler():
            signal.signal(signal.SIGTERM, ray_handler)  # what `ray.init` does in a driver
        assert signal.getsignal(signal.SIGTERM) is prefect_handler
    finally:
        signal.signal(signal.SIGTERM, original)


def test_without_a_handler_before_ray_init_rays_own_stays() -> None:
    def ray_handler(signum: int, frame: types.FrameType | None) -> None:
        sys.exit(signum)

    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with _keeping_sigterm_handler():
            signal.signal(signal.SIGTERM, ray_handler)
        assert signal.getsignal(signal.SIGTERM) is ray_handler
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_a_ctrl_c_calls_back_on_the_loop_and_the_old_handler_comes_back() -> None:
    # The second Ctrl-C (KeyboardInterrupt at once) is tested on a real script, in
    # tests/parity/test_process.py: raised here it would stop the test session's loop.
    received: list[signal.Signals] = []
    stopped = asyncio.Event()
    before = signal.getsignal(signal.SIGINT)

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum)
        stopped.set()

    with signals_stop(on_signal):
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(stopped.wait(), 5)
    assert received == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_kept_sigterm_handler_stays_and_absorbs_a_signal_after_its_loop_has_closed() -> None:
    calls: list[str] = []

    async def run_and_return() -> None:
        with sigterm_stops(lambda: calls.append("stop"), keep=True):
            pass

    original = signal.getsignal(signal.SIGTERM)
    try:
        asyncio.run(run_and_return())
        assert signal.getsignal(signal.SIGTERM) is not original  # left for the engine to undo
        os.kill(os.getpid(), signal.SIGTERM)  # Prefect's handler would raise here
        assert calls == []  # the loop it would call back on is gone
    finally:
        signal.signal(signal.SIGTERM, original)
