"""Ray for a `RayProcess`: starting or joining a cluster, checking a graph against it.

Every component of a graph runs for the whole run and waits on the others, so all of them
must be placed at once: one that cannot be placed makes the rest wait forever. Before
anything starts, each component's request is checked against every node (a GPU on a
CPU-only cluster, an unknown custom resource), the graph's total against the cluster, and
finally a placement group reserves one bundle per worker process, with a deadline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
import contextlib
import importlib.machinery
import logging
import os
import signal
import site
import socket
import sys
import threading
import types
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.exceptions import Issue, RayConnectionError, ResourceError


__all__ = [
    "RayConnection",
    "RayConnectionError",
    "ResourceError",
    "check_resources",
    "pickle_user_modules",
    "reserve",
]

_logger = logging.getLogger(__name__)


_LOCAL_ONLY = ("num_cpus", "num_gpus", "resources", "object_store_memory", "include_dashboard")
"""`ray.init` arguments that only apply when starting a new local instance."""

REACH_TIMEOUT = 5.0
"""How long (s) to try to reach a cluster's address before giving up."""


def _check_reachable(address: str) -> None:
    """Fails fast when nothing listens at `host:port` (Ray itself retries for minutes)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: Ray resolves them
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise RayConnectionError(address, exc) from exc


class RayConnection:
    """Starts a local Ray instance or joins a cluster; shuts down only what it started.

    Args:
        address: `None` (then `RAY_ADDRESS`, else a new local instance), `"auto"`,
            `"host:port"` or `"ray://host:10001"`.
        init_kwargs: Extra keyword arguments for `ray.init`.
    """

    def __init__(self, address: str | None, init_kwargs: Mapping[str, _t.Any] | None) -> None:
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self.owned = False

    @property
    def starts_local_instance(self) -> bool:
        """Whether `ensure` will start a new local Ray (seconds), not join one."""
        import ray

        return not ray.is_initialized() and self._target() == "local"

    def _target(self) -> str:
        return self.address or os.environ.get("RAY_ADDRESS") or "local"

    def ensure(self) -> None:
        """Makes sure this process is connected to Ray.

        Raises:
            RayConnectionError: The cluster to join is unreachable or refused the connection.
        """
        import ray

        if ray.is_initialized():
            return
        address = self._target()
        kwargs: dict[str, _t.Any] = {
            "namespace": "prefect",
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            **self.init_kwargs,
        }
        if address == "local":
            _logger.info("Starting a local Ray instance")
            with _keeping_sigterm_handler(), _without_prefect_settings():
                ray.init(address=address, **kwargs)
            _stop_autoscaler_monitor()
        else:
            _logger.info("Joining the Ray cluster at %s", address)
            _check_reachable(address)
            local_only = {k: kwargs.pop(k) for k in _LOCAL_ONLY if k in kwargs}
            if local_only:
                _logger.warning(
                    "Ignoring %s: they size a new local Ray, not the cluster at %s",
                    ", ".join(sorted(local_only)),
                    address,
                )
            try:
                with _keeping_sigterm_handler():
                    ray.init(address=address, **kwargs)
            except Exception as exc:
                raise RayConnectionError(address, exc) from exc
        self.owned = True

    def release(self) -> None:
        """Disconnects from Ray (stopping a local instance) if `ensure` connected."""
        import ray

        if self.owned and ray.is_initialized():
            with _keeping_sigterm_handler():
                ray.shutdown()
        self.owned = False


def _stop_autoscaler_monitor() -> None:
    """Stops the autoscaler's monitor of a Ray just started here (nothing to autoscale).

    The monitor is a Python process of about 80 MiB (of the seed benchmark's 1.3 GiB). Left
    running, it also slows the end: `ray.shutdown` (Ray 2.60) stops it after the GCS, its
    SIGTERM handler then tries to report its end to the GCS that is gone, and Ray waits a full
    second before killing it (1.2 s of a 1.2 s shutdown; 0.4 s without it). Joined clusters
    have no monitor of this process's, and a Ray without this private method keeps its own.
    """
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    kill_monitor = getattr(node, "kill_monitor", None)
    if node is not None and getattr(node, "head", False) and kill_monitor is not None:
        with contextlib.suppress(Exception):
            kill_monitor(check_alive=False)


@contextlib.contextmanager
def _without_prefect_settings() -> Iterator[None]:
    """Keeps Prefect's settings (its API's address, its key) out of a Ray started here.

    The processes of a local Ray inherit the environment of the process that starts it, and
    its workers theirs; workers run components only and must not receive credentials.
    """
    hidden = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("PREFECT_")}
    try:
        yield
    finally:
        os.environ.update(hidden)


@contextlib.contextmanager
def _keeping_sigterm_handler() -> Iterator[None]:
    """Keeps the SIGTERM handler that was there before `ray.init` or `ray.shutdown`.

    `ray.init` makes SIGTERM a bare `sys.exit` in the driver. In a flow run started by a
    Prefect worker or `serve`, Prefect's own handler turns SIGTERM (how Prefect cancels a
    run) into a cancellation: replaced, the run would end `Crashed` instead of `Cancelled`.
    `ray.shutdown` puts the process's SIGTERM back to the default (the process dies on it)
    while Python still names its handler: setting it again makes it the one called.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main_thread else None
    try:
        yield
    finally:
        if previous not in (None, signal.SIG_DFL):
            signal.signal(signal.SIGTERM, previous)


def pickle_user_modules(components: Sequence[Component]) -> None:
    """Ships the code of components defined outside installed packages along with them.

    Component classes from a script (`__main__`) are pickled by value anyway; classes from
    the user's own modules (beside the script or a YAML file) are registered to be pickled by
    value too, so workers need not import those modules: this also holds on a cluster whose
    workers run in another directory or on another machine.
    """
    from ray import cloudpickle

    for component in components:
        module_name = type(component).__module__
        top = module_name.split(".")[0]
        module = sys.modules.get(top)
        if module_name == "__main__" or module is None or _installed(module):
            continue
        cloudpickle.register_pickle_by_value(module)


def _installed(module: types.ModuleType) -> bool:
    """Whether a worker started from this Python finds `module` by itself.

    That is a module of the standard library, one in a site-packages folder, or one an
    editable install's import hook provides; not one found through a folder added to
    `sys.path` at run time (the script's, the YAML file's, the working directory).
    """
    name = module.__name__
    if name in sys.stdlib_module_names:
        return True
    origin = getattr(module, "__file__", None)
    if origin is not None:
        folder = os.path.realpath(os.path.dirname(origin))
        sites = [*site.getsitepackages(), site.getusersitepackages()]
        if any(folder.startswith(os.path.realpath(s) + os.sep) for s in sites):
            return True
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder or not hasattr(finder, "find_spec"):
            continue
        with contextlib.suppress(Exception):
            if finder.find_spec(name, None) is not None:
                return True
    return False


def _describe(bundle: Mapping[str, float]) -> str:
    parts = []
    for key, value in bundle.items():
        if key == "memory" or key == "object_store_memory":
            parts.append(f"{key} {value / 2**20:.0f}Mi")
        else:
            parts.append(f"{key} {value:g}")
    return ", ".join(parts) if parts else "nothing"


def _node_view(node: Mapping[str, _t.Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in node["Resources"].items()
        if not key.startswith("node:") and key != "object_store_memory" and "_group_" not in key
    }


def check_resources(components: Sequence[Component]) -> None:
    """Checks every component's request, and the graph's total, against the Ray cluster.

    Raises:
        ResourceError: A component asks for what no node has, or the components together ask
            for more than the cluster has. The message names the components, what they ask
            for and what the cluster has.
    """
    import ray

    nodes = [_node_view(n) for n in ray.nodes() if n.get("Alive")]
    known = sorted({key for node in nodes for key in node})
    issues: list[Issue] = []
    totals: defaultdict[str, float] = defaultdict(float)
    for component in components:
        bundle = component.resources.to_bundle()
        for key, value in bundle.items():
            totals[key] += value
        unknown = [key for key in bundle if key not in known]
        where = f"component {component.name!r} ({type(component).__name__})"
        if unknown:
            issues.append(
                Issue(
                    f"{where} asks for {_describe(bundle)}, but no node of the Ray cluster has "
                    f"{', '.join(repr(k) for k in unknown)}; the cluster has: "
                    f"{', '.join(known)}. Start Ray with it (e.g. `ray start --resources=...`) "
                    "or change the component's `resources`"
                )
            )
        elif not any(all(node.get(k, 0.0) >= v for k, v in bundle.items()) for node in nodes):
            issues.append(
                Issue(
                    f"{where} asks for {_describe(bundle)}, but no single node has that much; "
                    f"the nodes have: {'; '.join(_describe(n) for n in nodes)}"
                )
            )
    cluster = ray.cluster_resources()
    short = {k: v for k, v in totals.items() if k in cluster and v > float(cluster[k]) + 1e-9}
    if short:
        issues.append(
            Issue(
                f"the {len(components)} components run all at once and together ask for "
                f"{_describe(short)}, but the whole cluster has "
                f"{_describe({k: float(cluster[k]) for k in short})}; lower their `resources` "
                "or add capacity"
            )
        )
    if issues:
        raise ResourceError(issues, subject="the graph's resources")


def reserve(bundles: Sequence[Mapping[str, float]], components: int, timeout: float) -> _t.Any:
    """Reserves the placement-group bundles of a run, all at once, within `timeout`.

    Args:
        bundles: One bundle per worker process of the run.
        components: How many components they hold, for the message.
        timeout: The deadline (s).

    Returns:
        The placement group; worker `i` runs in bundle `i`.

    Raises:
        ResourceError: The bundles could not all be placed in time (other work holds the
            resources, or they do not fit the nodes as they are split).
    """
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group(list(bundles), strategy="PACK")
    try:
        ray.get(group.ready(), timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        remove_placement_group(group)
        available = ray.available_resources()
        asked: defaultdict[str, float] = defaultdict(float)
        for bundle in bundles:
            for key, value in bundle.items():
                asked[key] += value
        raise ResourceError(
            [
                Issue(
                    f"could not place all {components} components at once within "
                    f"{timeout:g}s: together they ask for {_describe(asked)}; the cluster has "
                    f"{_describe({k: float(available.get(k, 0)) for k in asked})} available now. "
                    "Free the cluster, add capacity, or lower the components' `resources`"
                )
            ],
            subject="the graph's resources",
        ) from None
    return group
