"""TLS for the streams, with Ray's own certificates, when Ray is set up for TLS.

Ray turns TLS on with `RAY_USE_TLS=1` and finds its certificate, key and CA in
`RAY_TLS_SERVER_CERT`, `RAY_TLS_SERVER_KEY` and `RAY_TLS_CA_CERT` on every node. The streams
use the same files, the same way Ray's gRPC does: both ends present their certificate and
check the other's against the CA. Host names are not checked: Ray's certificates name the
cluster, not each node (its own recipe lists IPs as DNS names), and the run's secret already
says which peer belongs to the run.
"""

from __future__ import annotations

import functools
import os
import ssl

from prefect_plugboard.exceptions import ChannelError


__all__ = ["TLS_ENVIRONMENT", "client_context", "ray_uses_tls", "server_context"]

TLS_ENVIRONMENT = ("RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT")
"""Ray's variables naming its certificate, key and CA."""


def ray_uses_tls() -> bool:
    """Whether Ray is set up for TLS here (`RAY_USE_TLS`, read as Ray reads it)."""
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def server_context() -> ssl.SSLContext:
    """The receivers' TLS context, from Ray's files on this node.

    Raises:
        ChannelError: Ray's TLS variables are not all set here, or a file cannot be loaded.
    """
    return _context(True, *_files())


def client_context() -> ssl.SSLContext:
    """The senders' TLS context, from Ray's files on this node.

    Raises:
        ChannelError: Ray's TLS variables are not all set here, or a file cannot be loaded.
    """
    return _context(False, *_files())


def _files() -> tuple[str, str, str]:
    missing = [name for name in TLS_ENVIRONMENT if not os.environ.get(name)]
    if missing:
        msg = (
            "this run's streams use TLS (Ray is set up for it: RAY_USE_TLS), but "
            f"{', '.join(missing)} is not set on this worker; set RAY_TLS_SERVER_CERT, "
            "RAY_TLS_SERVER_KEY and RAY_TLS_CA_CERT on every node, as Ray's own TLS needs"
        )
        raise ChannelError(msg)
    cert, key, ca = (os.environ[name] for name in TLS_ENVIRONMENT)
    return cert, key, ca


@functools.lru_cache(maxsize=8)
def _context(server: bool, cert: str, key: str, ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED  # both ends: a peer without the CA's blessing fails
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(ca)
    except (OSError, ssl.SSLError) as exc:
        msg = (
            f"this run's streams use TLS, but Ray's certificate files could not be loaded on "
            f"this worker ({cert}, {key}, {ca}): {exc}"
        )
        raise ChannelError(msg) from exc
    return context
