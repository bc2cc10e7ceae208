"""The driver's run coordinator: the rooms of its runs, and the port its workers reach them on.

One per event loop of the driver (`driver_coordinator()`), serving every run started on that
loop (a study's trials run side by side on one). The driver calls the rooms directly
(`CoordinatorServer.rooms`); each host of a run connects to it once, over its link (`link`),
and is admitted with its own run's secret: the run and the host's number travel in the plain
claim, and the secret is picked by the run's id before the claim's proof is checked.

The port listens on the driver's node address (loopback when every worker of the run is on
the driver's node), never on every interface, and only while some run still waits for one of
its hosts to connect: it opens with the first such run and closes once every host of every
open run is in (a later run opens it again, on a new port), closing the connections still in
their handshake (nobody the runs wait for) with it. Whoever reaches it meets the
stream receivers' door (`gate`): a bounded handshake within a deadline, a bounded number
waiting at once, one warning naming the peer for each connection refused, and the runs go on.
After the handshake, frames are bounded (`link.LINK_FRAME_BYTES`) and sealed, and so is a
message made of several (`link.LINK_MESSAGE_BYTES`).

A host's link that drops before the host ended it is reported to its run as `HostLost`; the
run then counts that host's components crashed (see `run.RayRun`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field
import logging
import typing as _t
import weakref

from prefect_plugboard.process.ray.auth import LINK_PROTOCOL, StreamSecurity, admit
from prefect_plugboard.process.ray.coordinator import Room, RunCoordinator
from prefect_plugboard.process.ray.gate import HANDSHAKE_TIMEOUT, Gate, peer_of
from prefect_plugboard.process.ray.link import LINK_MESSAGE_BYTES, LinkBroken, MessageFrames
from prefect_plugboard.process.ray.reports import HostLost
from prefect_plugboard.process.ray.stream import StreamAddress, disable_nagle
from prefect_plugboard.process.ray.tls import server_context


if _t.TYPE_CHECKING:
    import ssl


__all__ = ["CoordinatorServer", "driver_coordinator", "held_runs", "open_ports"]

_logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass
class _RunLinks:
    """What the port knows of one run: its secret and its hosts' links."""

    security: StreamSecurity
    loopback: bool
    waiting: set[int]  # hosts not connected yet
    ended: dict[int, asyncio.Event] = field(default_factory=dict)  # per connected host
    links: dict[int, asyncio.StreamWriter] = field(default_factory=dict)  # the open ones
    handlers: set[asyncio.Task[None]] = field(default_factory=set)


class CoordinatorServer:
    """The rooms of a driver's runs (on one event loop) and the port its workers reach them on.

    Args:
        handshake_timeout: Seconds a new connection has to prove it belongs to a run.
        message_limit: Most bytes in one message from a host; a larger one drops its link.
    """

    def __init__(
        self,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        message_limit: int = LINK_MESSAGE_BYTES,
    ) -> None:
        self._message_limit = message_limit
        self.rooms = RunCoordinator()
        self._runs: dict[str, _RunLinks] = {}
        self._secrets: dict[bytes, StreamSecurity] = {}
        self._servers: dict[bool, tuple[asyncio.Server, StreamAddress]] = {}
        self._tls: ssl.SSLContext | None = None
        self._gate = Gate(
            "this driver's run coordinator",
            _logger.warning,
            belongs_to="one of its runs",
            handshake_timeout=handshake_timeout,
        )

    @property
    def listening(self) -> list[StreamAddress]:
        """The addresses it listens on now (none once every host of every run is in)."""
        return [address for server, address in self._servers.values() if server.is_serving()]

    async def open(self, security: StreamSecurity, hosts: int, *, loopback: bool) -> StreamAddress:
        """Opens a run's room and listens for its `hosts` hosts.

        Args:
            security: The run's id and secret.
            hosts: How many hosts will connect (numbered from 0).
            loopback: Whether every host of the run is on the driver's node.

        Returns:
            The address the run's hosts connect to.
        """
        run_id = security.run_id
        self.rooms.room(run_id)
        self._runs[run_id] = _RunLinks(security, loopback, set(range(hosts)))
        self._secrets[run_id.encode()] = security
        try:
            return await self._listen(loopback, security.tls)
        except BaseException:
            self.forget_now(run_id)
            raise

    async def _listen(self, loopback: bool, tls: bool) -> StreamAddress:
        listening = self._servers.get(loopback)
        if listening is not None and listening[0].is_serving():
            return listening[1]
        if tls and self._tls is None:
            self._tls = server_context()
        host = LOOPBACK if loopback else _node_address()
        server = await asyncio.start_server(self._handle, host, 0)
        address = StreamAddress(host, server.sockets[0].getsockname()[1])
        self._servers[loopback] = (server, address)
        return address

    def _stop_listening(self) -> None:
        """Closes each port no open run still waits on."""
        for loopback, (server, _) in list(self._servers.items()):
            if not any(r.waiting for r in self._runs.values() if r.loopback == loopback):
                server.close()  # established links go on; nobody new gets in
                del self._servers[loopback]
        if not self._servers:
            # Those still in their handshake are strangers': no run waits for a host any more.
            self._gate.close_waiting("no run waits for a worker")
            self._gate.summarise()

    async def link_ended(self, run_id: str, host: int, timeout: float) -> None:
        """Waits (at most `timeout` s) until a host's link has ended, if it was ever made."""
        links = self._runs.get(run_id)
        ended = links.ended.get(host) if links is not None else None
        if ended is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), timeout)

    async def forget(self, run_id: str) -> None:
        """Drops a run that has ended: its room, its secret, and the links still open."""
        links = self.forget_now(run_id)
        if links is not None and links.handlers:
            await asyncio.gather(*links.handlers, return_exceptions=True)

    def forget_now(self, run_id: str) -> _RunLinks | None:
        """`forget` without waiting for the run's links to wind down."""
        self.rooms.forget(run_id)
        self._secrets.pop(run_id.encode(), None)
        links = self._runs.pop(run_id, None)
        if links is not None:
            for task in links.handlers:
                task.cancel()
        self._stop_listening()
        return links

    # ----- the links ----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_of(writer)
        task = _t.cast(asyncio.Task[None], asyncio.current_task())
        disable_nagle(writer)
        links: _RunLinks | None = None
        try:
            session = await self._gate.admit(
                peer,
                admit(reader, writer, self._secrets.get, self._tls, protocol=LINK_PROTOCOL),
            )
            if session is None:
                return
            run_id, claimed = session.security.run_id, session.claim.field
            links = self._runs.get(run_id)
            host = int(claimed) if claimed.isdigit() else -1
            if links is None:
                return  # the run ended during the handshake
            if host not in links.waiting:
                _logger.warning(
                    "Closed a link from %s: it proved it belongs to run %s, but as host %r, "
                    "which is connected already or not one of the run's",
                    peer,
                    run_id,
                    claimed,
                )
                return
            links.waiting.discard(host)
            links.handlers.add(task)
            ended = links.ended[host] = asyncio.Event()
            links.links[host] = writer
            self._stop_listening()
            try:
                await self._serve(
                    run_id,
                    host,
                    MessageFrames(reader, writer, session, message_limit=self._message_limit),
                    peer,
                )
            finally:
                links.links.pop(host, None)
                ended.set()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the link dropped (the host reported nothing more) or the run was forgotten
        finally:
            if links is not None:
                links.handlers.discard(task)
            writer.close()

    async def _serve(self, run_id: str, host: int, frames: MessageFrames, peer: str) -> None:
        """Takes a host's messages into its run's room, and pushes the room's commands to it."""
        rooms = self.rooms
        pushing = asyncio.ensure_future(_push(rooms.room(run_id), frames))
        lost = "its connection to the driver dropped"
        ended = False
        try:
            while True:
                more, message = await frames.receive()
                if not more:
                    ended = True
                    break
                kind, body = _message(message)
                if kind == "register":
                    rooms.register(run_id, body)
                else:
                    rooms.report(run_id, body)
        except LinkBroken as exc:
            lost = f"its link to the driver broke: {exc}"
            _logger.warning(
                "The link from %s (host %d of run %s) broke: %s", peer, host, run_id, exc
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            pushing.cancel()
            await asyncio.gather(pushing, return_exceptions=True)
            if ended:
                frames.write_end()
                with contextlib.suppress(ConnectionError):
                    await frames.writer.drain()
            elif rooms.holds(run_id):
                rooms.report(run_id, [HostLost(host, lost)])


def _message(message: _t.Any) -> tuple[str, _t.Any]:
    """A host's message, checked for its shape."""
    if (
        isinstance(message, tuple)
        and len(message) == 2
        and message[0] in ("register", "report")
        and isinstance(message[1], dict if message[0] == "register" else list)
    ):
        return message[0], message[1]
    msg = "a message of an unknown kind"
    raise LinkBroken(msg)


async def _push(room: Room, frames: MessageFrames) -> None:
    """Sends a host what changes in its run's room, until the run stops."""
    sent: set[str] = set()
    steps, started = 0, False
    while True:
        changed = room.changed
        update: dict[str, _t.Any] = {}
        new = {name: address for name, address in room.addresses.items() if name not in sent}
        if new:
            update["addresses"] = new
            sent.update(new)
        if room.steps > steps:
            steps = update["steps"] = room.steps
        if room.started is not None and not started:
            started = True
            update["go"] = room.started
        if room.stop_reason is not None:
            update["stop"] = (room.stop_reason, room.graceful)
        if update:
            await frames.send(update)
        if "stop" in update:
            return
        await changed.wait()


def _node_address() -> str:
    """The driver's node address, as Ray knows it (never every interface)."""
    import ray

    return _t.cast(str, ray.util.get_node_ip_address())


_COORDINATORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CoordinatorServer] = (
    weakref.WeakKeyDictionary()
)


def driver_coordinator() -> CoordinatorServer:
    """This driver's run coordinator for the running event loop; made on first use."""
    loop = asyncio.get_running_loop()
    coordinator = _COORDINATORS.get(loop)
    if coordinator is None:
        coordinator = _COORDINATORS[loop] = CoordinatorServer()
    return coordinator


def _coordinators() -> Iterator[CoordinatorServer]:
    yield from list(_COORDINATORS.values())


def held_runs() -> list[str]:
    """The runs the driver's coordinators hold (on every event loop): none between runs."""
    return [run for coordinator in _coordinators() for run in coordinator.rooms.runs()]


def open_ports() -> list[StreamAddress]:
    """Where the driver's coordinators listen now (on every event loop): none between runs."""
    return [address for coordinator in _coordinators() for address in coordinator.listening]
