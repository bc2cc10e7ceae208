"""Joining or starting Ray keeps the SIGTERM handler Prefect installed for a flow run."""

import signal
import sys
import types

from prefect_plugboard.process.ray_cluster import _keeping_sigterm_handler


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
