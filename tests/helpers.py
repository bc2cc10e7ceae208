"""Helpers shared by the tests: connectors from arrows, free ports, components, Ray checks."""

from __future__ import annotations

import asyncio
from pathlib import Path
import socket
import typing as _t

from prefect_plugboard import (
    IO,
    AsyncioConnector,
    Component,
    ComponentArgsDict,
    Connector,
    ConnectorSpec,
)


def connect(
    *pairs: str, kind: type[Connector] = AsyncioConnector, **settings: _t.Any
) -> list[_t.Any]:
    """Connectors from `"a.x -> b.y"` arrows, of `kind`, with the same settings."""
    return [
        kind(spec=ConnectorSpec(source=s, target=t), **settings)
        for s, t in (p.split(" -> ") for p in pairs)
    ]


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Forever(Component):
    """A busy source that never closes; notes in files that it started and was destroyed.

    `<marker>.started` appears at its first step, `<marker>` holds `destroyed` once its
    `destroy()` ran: the files tell, also from a Ray worker, what happened to it.
    """

    io = IO(outputs=["x"])

    def __init__(
        self, marker: str, pause: float = 0.01, **kwargs: _t.Unpack[ComponentArgsDict]
    ) -> None:
        super().__init__(**kwargs)
        self.marker = marker
        self._pause = pause

    async def step(self) -> None:
        Path(self.marker + ".started").touch()
        self.x = 1
        await asyncio.sleep(self._pause)

    async def destroy(self) -> None:
        Path(self.marker).write_text("destroyed")


def ray_leftovers() -> list[str]:
    """What runs left behind on the session's Ray: it should be nothing.

    Live actors of plugboard other than this driver's coordinator, placement groups not
    removed, and runs the coordinator still holds.
    """
    import ray
    from ray._private import state

    from prefect_plugboard.process.ray.coordinator import shared_coordinator

    left = [
        f"actor {a['Name']}"
        for a in state.actors().values()
        if a["State"] == "ALIVE"
        and a["Name"].startswith("plugboard")
        and not a["Name"].startswith("plugboard-coordinator")
    ]
    left += [
        f"placement group {group_id}"
        for group_id, group in ray.util.placement_group_table().items()
        if group["state"] != "REMOVED"
    ]
    left += [f"run {run}" for run in ray.get(shared_coordinator().runs.remote())]
    return left
