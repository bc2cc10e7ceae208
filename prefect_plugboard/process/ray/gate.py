"""The door of a listening port: who gets to try the handshake, for how long, and the warnings.

Shared by every port the project opens on Ray (a component's stream receiver, the driver's
run coordinator). Against whoever can reach the port: at most `MAX_PENDING_HANDSHAKES`
connections wait for their handshake at once, each has `HANDSHAKE_TIMEOUT` seconds to complete
it, and a connection that fails is closed with one warning naming the peer's address; after
`LOGGED_REFUSALS` of them the rest are counted and reported once, at the end. When the port
stops listening, the connections still waiting are closed with it (`close_waiting`): nobody
the run waits for is among them.

When the waiting room is full, a new connection pushes out the one that has waited longest,
not the newcomer: a peer of the run completes its handshake within a round trip, so strangers
who keep silent connections open (reopening each one as it is closed) can no longer starve it;
only a flood that fills the room within one handshake's round trip could.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import typing as _t

from prefect_plugboard.process.ray.auth import Refused


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "LOGGED_REFUSALS",
    "MAX_PENDING_HANDSHAKES",
    "Gate",
    "peer_of",
    "retry_pause",
]

HANDSHAKE_TIMEOUT = 5.0
"""Seconds a new connection has to prove it belongs to the run before it is closed."""
MAX_PENDING_HANDSHAKES = 64
"""Connections a port lets wait for their handshake at once; a newcomer pushes out the oldest."""
LOGGED_REFUSALS = 20
"""Refused connections a port logs one by one; later ones are counted."""

_T = _t.TypeVar("_T")


class Gate:
    """Lets connections try their handshake, within bounds, and warns about the ones refused.

    Args:
        target: What the port leads to, for warnings (`"component 'sink'"`).
        warn: Where a warning goes.
        belongs_to: Whom a refused connection did not prove it belongs to (`"this run"`).
        handshake_timeout: Seconds a connection has to complete its handshake.
    """

    def __init__(
        self,
        target: str,
        warn: Callable[[str], None],
        *,
        belongs_to: str = "this run",
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._target = target
        self._warn = warn
        self._belongs_to = belongs_to
        self.handshake_timeout = handshake_timeout
        self._waiting: dict[asyncio.Task[_t.Any], dict[str, bool]] = {}  # oldest first
        self.refused = 0
        self._closing_reason = ""

    async def admit(self, peer: str, handshake: Coroutine[_t.Any, _t.Any, _T]) -> _T | None:
        """Runs `handshake` within its deadline; `None` (and a warning) if the peer failed it.

        Call it from the connection's own task: the deadline, or a newcomer finding the
        waiting room full, cancels that task.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "admit() runs in the connection's own task"
        state = {"done": False, "expired": False, "pushed_out": False, "closed": False}

        def expire() -> None:
            if not state["done"]:
                state["expired"] = True
                task.cancel()

        if len(self._waiting) >= MAX_PENDING_HANDSHAKES:
            oldest, oldest_state = next(iter(self._waiting.items()))
            del self._waiting[oldest]
            oldest_state["pushed_out"] = True
            oldest.cancel()
        # The deadline acts one turn of the loop late, so that when another thread has held
        # the loop past it, the bytes that arrived meanwhile are read first.
        timer = loop.call_later(self.handshake_timeout, loop.call_soon, expire)
        self._waiting[task] = state
        try:
            return await handshake
        except Refused as exc:
            self.refuse(peer, str(exc))
        except asyncio.IncompleteReadError:
            self.refuse(peer, "it closed the connection before completing the handshake")
        except OSError as exc:
            self.refuse(peer, f"the connection failed during the handshake ({exc})")
        except asyncio.CancelledError:
            if state["pushed_out"]:
                self.refuse(
                    peer,
                    f"it had waited longest of {MAX_PENDING_HANDSHAKES} connections without "
                    "completing the handshake when another one came",
                )
            elif state["expired"]:
                self.refuse(
                    peer, f"it did not complete the handshake within {self.handshake_timeout:g} s"
                )
            elif state["closed"]:
                self.refuse(
                    peer,
                    f"the port stopped listening ({self._closing_reason}) before it completed "
                    "the handshake",
                )
            else:
                raise
        finally:
            state["done"] = True
            timer.cancel()
            self._waiting.pop(task, None)
        return None

    def close_waiting(self, reason: str) -> None:
        """Closes every connection still waiting for its handshake (the port stops listening).

        Each is refused with a warning, as any other; `reason` says why the port closed.
        """
        self._closing_reason = reason
        for task, state in list(self._waiting.items()):
            if not state["done"]:
                state["closed"] = True
                task.cancel()
        self._waiting.clear()

    def refuse(self, peer: str, reason: str) -> None:
        """Warns about a refused connection (one by one up to `LOGGED_REFUSALS`)."""
        self.refused += 1
        if self.refused > LOGGED_REFUSALS:
            return
        more = " Further refused connections are only counted." * (self.refused == LOGGED_REFUSALS)
        self._warn(
            f"Refused a connection from {peer} to {self._target}: {reason}. It was closed "
            f"before anything it sent was decoded.{more}"
        )

    def summarise(self) -> None:
        """Reports the refusals that were only counted, once, and starts counting afresh.

        Call it when the port closes: the next time it opens, refusals are logged again.
        """
        if self.refused > LOGGED_REFUSALS:
            subject = self._target[:1].upper() + self._target[1:]
            self._warn(
                f"{subject} refused {self.refused} connections in all that did not prove they "
                f"belong to {self._belongs_to}."
            )
        self.refused = 0


def peer_of(writer: asyncio.StreamWriter) -> str:
    """The peer's address as `host:port`, for warnings."""
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return "an unknown peer"


def retry_pause(attempt: int) -> float:
    """Seconds before a handshake a port turned away is tried again: 0.05, 0.1, ... up to 1.

    (A sender of the run turned away because strangers' connections filled the port has
    nothing to wait on but time.)
    """
    return min(1.0, 0.05 * 2.0**attempt)
