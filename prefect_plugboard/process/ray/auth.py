"""Who may talk on a run's connections: the handshake, and the tag on every frame.

Every run has a secret: 32 random bytes made by the driver for this run only and handed to
its workers with their components (`StreamSecurity`, in `HostSettings`). Two protocols use it,
told apart by their magic: the streams between components (`STREAM_PROTOCOL`), and each
worker's link to its driver's run coordinator (`LINK_PROTOCOL`, see `link`). A connection
proves both ends hold the secret before a single message is decoded:

1. The receiver greets: magic, version, whether TLS follows, and a fresh nonce.
2. (TLS, when Ray uses it: the receiver's and the sender's certificates are checked.)
3. The sender claims: its own nonce, two names (a stream: the connector and the field it
   feeds; a link: the run and the worker's number), the largest frame it sends, and an
   HMAC-SHA256 under the secret of everything said so far (run id included). The receiver
   reads a bounded, fixed-layout claim and checks the HMAC with `hmac.compare_digest` before
   it trusts any of it. A receiver serving several runs (the driver's coordinator) picks the
   secret by the run the claim names, as raw bytes; an unknown run is refused like a wrong
   secret. A stream's receiver also refuses a proven claim of frames larger than it takes
   (its own limit, from the connector's settings it was given, not the sender's word).
4. The receiver answers with an HMAC of its own over the same transcript, which the sender
   checks before it sends a message: a sender never talks to an impostor.

Both ends then derive a key for each direction, and each frame carries a keyed BLAKE2b tag
over its sequence number, its length and its bytes: a frame that was injected, altered,
replayed, reordered or dropped on the way is refused before it is unpickled.

Every header is plain binary (`struct`): nothing before a checked tag is ever unpickled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import hashlib
import hmac
import secrets
import ssl
import struct

from prefect_plugboard.exceptions import ChannelError


__all__ = [
    "FRAME_HEAD",
    "LINK_PROTOCOL",
    "MAX_NAME_BYTES",
    "SECRET_BYTES",
    "STREAM_PROTOCOL",
    "Claim",
    "FrameChecker",
    "FrameSealer",
    "Impostor",
    "Refused",
    "Session",
    "StreamSecurity",
    "Unanswered",
    "admit",
    "claim",
    "greet",
    "present",
]

SECRET_BYTES = 32
"""Length of a run's secret."""
MAX_NAME_BYTES = 1024
"""Longest connector id or field name (UTF-8) a claim may carry."""

STREAM_PROTOCOL = b"PPBS"
"""The magic of a stream between two components."""
LINK_PROTOCOL = b"PPBL"
"""The magic of a worker's link to its driver's run coordinator."""
_PROTOCOL_NAMES = {STREAM_PROTOCOL: "plugboard stream", LINK_PROTOCOL: "plugboard driver link"}
_VERSION = 1
_TLS_FOLLOWS = 0x01
_GREETING = struct.Struct("!4sBB32s")  # magic, version, flags, receiver's nonce
_CLAIM = struct.Struct("!4sB32sHHQ")  # magic, version, sender's nonce, name lengths, max frame
_MAC_BYTES = 32  # HMAC-SHA256
_RUN_ID = struct.Struct("!H")
FRAME_HEAD = struct.Struct("!I16s")
"""A frame's header: the payload's length, then its tag."""
_TAG_INPUT = struct.Struct("!QI")  # sequence number, payload length


@dataclass(frozen=True)
class StreamSecurity:
    """What the streams of one run need to trust each other; part of `HostSettings`.

    Attributes:
        run_id: The run (bound into every handshake).
        secret: The run's secret: random, made by the driver for this run only. It never
            appears in a `repr`, a log line or an error message.
        tls: Whether streams use TLS with Ray's certificates (Ray is set up for TLS).
        loopback: Whether every worker of the run is on one node, so that receivers listen on
            loopback rather than on the node's address.
    """

    run_id: str
    secret: bytes = field(repr=False)
    tls: bool = False
    loopback: bool = False

    @classmethod
    def for_run(cls, run_id: str, *, tls: bool, loopback: bool) -> StreamSecurity:
        """A fresh secret for a new run."""
        return cls(run_id, secrets.token_bytes(SECRET_BYTES), tls=tls, loopback=loopback)


@dataclass(frozen=True)
class Claim:
    """What an authenticated sender said about itself.

    Attributes:
        connector: A stream's connector; a link's run.
        field: A stream's input field; a link's worker number.
        max_frame: The largest frame payload it sends.
    """

    connector: str
    field: str
    max_frame: int


@dataclass(frozen=True)
class Session:
    """What a completed handshake gives one end: the peer's claim and the keys of both ways.

    Attributes:
        claim: What the sender claimed (proven).
        security: The run whose secret both ends proved they hold.
        inbound: Checks the frames the peer sends.
        outbound: Seals the frames this end sends.
    """

    claim: Claim
    security: StreamSecurity = field(repr=False)
    inbound: FrameChecker = field(repr=False)
    outbound: FrameSealer = field(repr=False)


class Refused(Exception):  # a verdict on a peer, not a failure of ours
    """The receiver's verdict on a connection that did not prove it belongs to the run."""


class Impostor(Exception):  # a verdict on a peer, not a failure of ours
    """What the sender concluded of a receiver that did not prove it belongs to the run."""


class Unanswered(Exception):  # a verdict on a peer, not a failure of ours
    """The receiver closed the connection instead of answering the sender's claim."""


_SecurityOf = Callable[[bytes], StreamSecurity | None]
"""Picks the run's security by the first name of a claim, as raw bytes (`None`: refused)."""


def _mac(security: StreamSecurity, label: bytes, transcript: bytes) -> bytes:
    return hmac.digest(security.secret, label + transcript, "sha256")


def _transcript(security: StreamSecurity, greeting: bytes, claim: bytes) -> bytes:
    run_id = security.run_id.encode()
    return _RUN_ID.pack(len(run_id)) + run_id + greeting + claim


def _greeting(protocol: bytes, tls: bool) -> bytes:
    flags = _TLS_FOLLOWS if tls else 0
    return _GREETING.pack(protocol, _VERSION, flags, secrets.token_bytes(32))


def greet(security: StreamSecurity, *, protocol: bytes = STREAM_PROTOCOL) -> bytes:
    """The receiver's first bytes on a new connection: magic, version, flags, a fresh nonce."""
    return _greeting(protocol, security.tls)


async def admit(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    security: StreamSecurity | _SecurityOf,
    tls: ssl.SSLContext | None,
    *,
    protocol: bytes = STREAM_PROTOCOL,
    frame_limit: Callable[[Claim], int] | None = None,
) -> Session:
    """The receiver's side of the handshake: what the sender claims, once it is proven.

    Args:
        reader: The new connection.
        writer: The new connection.
        security: The run's security; or, for a receiver serving several runs, a function
            that picks it by the claim's first name (raw bytes, never decoded before the
            proof), `None` for a run it does not serve.
        tls: The receiver's TLS context, if the connection uses TLS.
        protocol: Which protocol the receiver speaks (`STREAM_PROTOCOL`, `LINK_PROTOCOL`).
        frame_limit: The largest frame the receiver takes on a proven claim; a claim of
            larger frames is refused (before it is answered). `None`: any.

    Raises:
        Refused: The peer is not a sender of this run, or it claims frames over the
            receiver's limit (the reason says why).
        asyncio.IncompleteReadError: The peer closed before it completed the handshake.
    """
    greeting = _greeting(protocol, tls is not None)
    writer.write(greeting)
    if tls is not None:
        try:
            await writer.start_tls(tls)
        except ssl.SSLError as exc:
            msg = f"its TLS handshake failed ({exc.reason or exc})"
            raise Refused(msg) from None
    head = await reader.readexactly(_CLAIM.size)
    magic, version, _, first_bytes, second_bytes, max_frame = _CLAIM.unpack(head)
    if magic != protocol or version != _VERSION:
        msg = f"it does not speak this version of the {_PROTOCOL_NAMES[protocol]} protocol"
        raise Refused(msg)
    if first_bytes > MAX_NAME_BYTES or second_bytes > MAX_NAME_BYTES:
        msg = "its handshake is malformed (names too long)"
        raise Refused(msg)
    rest = await reader.readexactly(first_bytes + second_bytes + _MAC_BYTES)
    names, proof = rest[:-_MAC_BYTES], rest[-_MAC_BYTES:]
    run = security(names[:first_bytes]) if callable(security) else security
    if run is None:
        msg = "it names no run this driver holds"
        raise Refused(msg)
    transcript = _transcript(run, greeting, head + names)
    if not hmac.compare_digest(proof, _mac(run, b"sender\0", transcript)):
        msg = "it did not prove it holds this run's key"
        raise Refused(msg)
    claimed = Claim(
        connector=names[:first_bytes].decode(errors="replace"),
        field=names[first_bytes:].decode(errors="replace"),
        max_frame=max_frame,
    )
    limit = frame_limit(claimed) if frame_limit is not None else max_frame
    if max_frame > limit:
        msg = (
            f"it claims frames of up to {max_frame:,} bytes into {claimed.field!r}, over this "
            f"receiver's limit of {limit:,} (the connector's max_frame_bytes)"
        )
        raise Refused(msg)
    writer.write(_mac(run, b"receiver\0", transcript))
    return Session(
        claimed,
        run,
        inbound=FrameChecker(_mac(run, b"frames\0", transcript)),
        outbound=FrameSealer(_mac(run, b"replies\0", transcript)),
    )


def claim(
    security: StreamSecurity,
    greeting: bytes,
    connector: str,
    field: str,
    max_frame: int,
    *,
    protocol: bytes = STREAM_PROTOCOL,
) -> tuple[bytes, bytes, FrameSealer]:
    """The sender's claim in answer to `greeting`.

    Returns:
        The bytes to send, the answer the receiver must give, and the sealer of the frames.

    Raises:
        ChannelError: The connector id or the field is over `MAX_NAME_BYTES`.
    """
    said, answer, transcript = _claim(security, greeting, connector, field, max_frame, protocol)
    return said, answer, FrameSealer(_mac(security, b"frames\0", transcript))


def _claim(
    security: StreamSecurity,
    greeting: bytes,
    connector: str,
    field: str,
    max_frame: int,
    protocol: bytes,
) -> tuple[bytes, bytes, bytes]:
    connector_bytes, field_bytes = connector.encode(), field.encode()
    if max(len(connector_bytes), len(field_bytes)) > MAX_NAME_BYTES:
        msg = f"connector {connector!r}: its id or field is over {MAX_NAME_BYTES} bytes"
        raise ChannelError(msg)
    head = _CLAIM.pack(
        protocol,
        _VERSION,
        secrets.token_bytes(32),
        len(connector_bytes),
        len(field_bytes),
        max_frame,
    )
    said = head + connector_bytes + field_bytes
    transcript = _transcript(security, greeting, said)
    return (
        said + _mac(security, b"sender\0", transcript),
        _mac(security, b"receiver\0", transcript),
        transcript,
    )


async def present(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    security: StreamSecurity,
    tls: ssl.SSLContext | None,
    connector: str,
    field: str,
    max_frame: int,
    *,
    protocol: bytes = STREAM_PROTOCOL,
) -> Session:
    """The sender's side of the handshake; returns once the receiver has proven itself.

    Raises:
        Impostor: The peer is not this run's receiver (or its TLS is not this run's).
        asyncio.IncompleteReadError: The receiver closed the connection before its greeting
            (too many connections were waiting, or it is closing): try again.
        Unanswered: The receiver closed the connection instead of answering the claim (it
            refused it, or it is closing).
    """
    greeting = await reader.readexactly(_GREETING.size)
    magic, version, flags, _ = _GREETING.unpack(greeting)
    if magic != protocol or version != _VERSION:
        msg = f"it is not a {_PROTOCOL_NAMES[protocol]} receiver of this version"
        raise Impostor(msg)
    if bool(flags & _TLS_FOLLOWS) != (tls is not None):
        expected = "TLS" if tls is not None else "no TLS"
        msg = f"it does not use TLS as this run does ({expected})"
        raise Impostor(msg)
    if tls is not None:
        try:
            await writer.start_tls(tls)
        except ssl.SSLError as exc:
            msg = f"its TLS certificate was refused ({exc.reason or exc})"
            raise Impostor(msg) from None
    said, answer, transcript = _claim(security, greeting, connector, field, max_frame, protocol)
    writer.write(said)
    try:
        answered = await reader.readexactly(_MAC_BYTES)
    except asyncio.IncompleteReadError:
        raise Unanswered from None
    if not hmac.compare_digest(answered, answer):
        msg = "it did not prove it holds this run's key"
        raise Impostor(msg)
    return Session(
        Claim(connector, field, max_frame),
        security,
        inbound=FrameChecker(_mac(security, b"replies\0", transcript)),
        outbound=FrameSealer(_mac(security, b"frames\0", transcript)),
    )


class FrameSealer:
    """Frames a sender's payloads: length, tag, payload; tags in sequence from 0."""

    __slots__ = ("_keyed", "_sequence")

    def __init__(self, key: bytes) -> None:
        self._keyed = _keyed(key)
        self._sequence = 0

    def seal(self, payload: bytes) -> bytes:
        """The frame carrying `payload` (an empty payload ends the stream)."""
        tag = _tag(self._keyed, self._sequence, payload)
        self._sequence += 1
        return FRAME_HEAD.pack(len(payload), tag) + payload


class FrameChecker:
    """Checks a receiver's frames, which must come in the order they were sealed."""

    __slots__ = ("_keyed", "_sequence")

    def __init__(self, key: bytes) -> None:
        self._keyed = _keyed(key)
        self._sequence = 0

    def check(self, tag: bytes, payload: bytes) -> bool:
        """Whether `payload` is the next frame its sender sealed, unaltered."""
        if not hmac.compare_digest(tag, _tag(self._keyed, self._sequence, payload)):
            return False
        self._sequence += 1
        return True


def _keyed(key: bytes) -> hashlib.blake2b:
    # Keyed BLAKE2b: a MAC by design, and several times faster than HMAC on small frames.
    # Keyed once per stream; each frame's tag starts from a copy.
    return hashlib.blake2b(key=key, digest_size=16)


def _tag(keyed: hashlib.blake2b, sequence: int, payload: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(_TAG_INPUT.pack(sequence, len(payload)))
    mac.update(payload)
    return mac.digest()
