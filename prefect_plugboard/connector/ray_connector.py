"""`RayConnector`: a channel between components running on Ray workers, on any nodes."""

from __future__ import annotations

from collections.abc import Mapping
import typing as _t

from prefect_plugboard.connector.channel import DEFAULT_MAXSIZE
from prefect_plugboard.connector.connector import Connector
from prefect_plugboard.schemas.connector import ConnectorSpec


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_FRAME_BYTES", "MAX_FRAME_BYTES", "RayConnector"]

DEFAULT_BATCH_SIZE = 512
"""Most messages a `RayConnector` sends in one frame."""
DEFAULT_MAX_FRAME_BYTES = 64 << 20
"""Most bytes in one frame of a `RayConnector` (64 MiB): also the largest message it carries."""
MAX_FRAME_BYTES = (1 << 32) - 1
"""The ceiling of `max_frame_bytes` (a frame's length is 4 bytes)."""


class RayConnector(Connector):
    """A channel between two components of a `RayProcess`, on the same node or not.

    The sending component streams straight to the receiving one over TCP: no actor sits in
    between. Messages on one connector arrive in order; nothing is lost while the run is
    healthy. Batching adapts to load: a message sent alone leaves at once, a busy sender packs
    up to `batch_size` messages per frame. The receiver holds at most `maxsize` messages of
    its input (plus what the network buffers hold), and a sender that is ahead waits. A frame
    holds at most `max_frame_bytes` (a larger batch is split), so a receiver never buffers more
    than that per connector; a single message over it fails the sending component with a
    `ChannelError`. Streams authenticate each other with the run's secret (see the README's
    Security section).

    In a `LocalProcess` a `RayConnector` is an in-memory channel like `AsyncioConnector`.

    Example:
        ```python
        RayConnector(spec=ConnectorSpec(source="input.x", target="slow-sleep.x"))
        ```

    Args:
        spec: The source and target fields.
        maxsize: Most messages waiting at the receiver before senders wait. `0`: unbounded.
        batch_size: Most messages per frame.
        max_frame_bytes: Most bytes in one frame, so also the largest message (pickled).
    """

    transport: _t.ClassVar[str] = "ray"

    def __init__(
        self,
        spec: ConnectorSpec | Mapping[str, _t.Any],
        *,
        maxsize: int = DEFAULT_MAXSIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        super().__init__(spec, maxsize=maxsize)
        if not isinstance(batch_size, int) or batch_size < 1:
            msg = f"batch_size of connector {self.spec} must be an int >= 1, got {batch_size!r}"
            raise ValueError(msg)
        if (
            not isinstance(max_frame_bytes, int)
            or isinstance(max_frame_bytes, bool)
            or not 1 <= max_frame_bytes <= MAX_FRAME_BYTES
        ):
            msg = (
                f"max_frame_bytes of connector {self.spec} must be an int from 1 to "
                f"{MAX_FRAME_BYTES} (4 GiB - 1), got {max_frame_bytes!r}"
            )
            raise ValueError(msg)
        self.batch_size = batch_size
        self.max_frame_bytes = max_frame_bytes

    def settings(self) -> dict[str, _t.Any]:
        """Returns the connector's settings."""
        return {
            **super().settings(),
            "batch_size": self.batch_size,
            "max_frame_bytes": self.max_frame_bytes,
        }
