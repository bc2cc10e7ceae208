"""The Prefect task that runs one component, and what it needs from Prefect to start fast."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
import logging
import typing as _t

from prefect_plugboard.component.component import Component, RunStats
from prefect_plugboard.component.runner import ComponentRunner
from prefect_plugboard.exceptions import Issue, ValidationError
from prefect_plugboard.log_lines import LogLine


if _t.TYPE_CHECKING:
    from prefect import Task


__all__ = [
    "PLUGBOARD_TAG",
    "component_tags",
    "component_task",
    "prepare_tag_concurrency",
    "prime_no_limits_cache",
    "run_with_task_logger",
    "write_log_lines",
]

PLUGBOARD_TAG = "plugboard"
"""Tag carried by every component task run."""

_logger = logging.getLogger(__name__)
_PAGE = 200


def component_tags(component: Component) -> frozenset[str]:
    """The tags of a component's task run: `plugboard`, its class and its name."""
    return frozenset({PLUGBOARD_TAG, type(component).__name__, component.name})


def component_task(
    component: Component, fn: Callable[..., Awaitable[_t.Any]]
) -> Task[..., Awaitable[_t.Any]]:
    """Returns the Prefect task that runs `component` by awaiting `fn()`.

    The task run is named after the component and tagged with `plugboard`, the component's
    class and its name. Components hold live state and channels, so nothing is cached,
    persisted or retried. `fn` takes one parameter, `upstream`, which only carries the links
    Prefect draws in its run graph.
    """
    from prefect import Task
    from prefect.cache_policies import NO_CACHE

    doc = (type(component).__doc__ or "").strip()
    return Task(
        fn=fn,
        name=component.name,
        task_run_name=component.name,
        description=doc.splitlines()[0] if doc else None,
        tags=set(component_tags(component)),
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=0,
    )


async def prepare_tag_concurrency(components: Iterable[Component]) -> set[str]:
    """Checks tag concurrency limits against the graph and skips Prefect's lease writes.

    Prefect's task engine takes a concurrency lease for every tagged task run as it starts,
    a database write per task run. On the default SQLite-backed API those writes queue behind
    the server's own background work, ~2 s each, random. One read of the concurrency limits
    tells which tag sets have none; Prefect's own "no limits" cache is primed for those, so
    their task runs start at once. Tags that do have limits keep Prefect's normal path.

    Args:
        components: The components about to start.

    Returns:
        The names (`tag:...`) of the active concurrency limits.

    Raises:
        ValidationError: A tag's concurrency limit is smaller than the number of components
            carrying the tag: they all have to run at once, so the graph could never start.
    """
    from prefect.client.orchestration import get_client

    tag_sets = [component_tags(c) for c in components]
    async with get_client() as client:
        limits = []
        offset = 0
        while True:
            page = await client.read_global_concurrency_limits(limit=_PAGE, offset=offset)
            limits.extend(page)
            if len(page) < _PAGE:
                break
            offset += _PAGE
    active = {limit.name: limit.limit for limit in limits if limit.active}
    needed = Counter(f"tag:{tag}" for tags in tag_sets for tag in tags)
    too_small = [
        Issue(
            f"concurrency limit {name!r} allows {active[name]} task runs at once, but "
            f"{needed[name]} components carry the tag and all run at once; raise the limit "
            f"(`prefect gcl update {name} --limit {needed[name]}`) or remove it"
        )
        for name in sorted(needed)
        if name in active and active[name] < needed[name]
    ]
    if too_small:
        raise ValidationError(too_small, subject="the Prefect concurrency limits")
    prime_no_limits_cache(tag_sets, set(active))
    return set(active)


def prime_no_limits_cache(tag_sets: Iterable[frozenset[str]], limited: set[str]) -> None:
    """Tells Prefect's task engine, in this process, that these tag sets have no limits."""
    try:
        from prefect.concurrency.services import _cache_lock, _no_limits_cache
    except ImportError:  # pragma: no cover - a Prefect without the cache: just slower starts
        _logger.debug("Prefect has no concurrency 'no limits' cache; task runs start normally")
        return
    with _cache_lock:
        for tags in tag_sets:
            names = frozenset(f"tag:{tag}" for tag in tags)
            if not names & limited:
                _no_limits_cache[names] = True


def write_log_lines(
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger], lines: Iterable[LogLine]
) -> None:
    """Writes captured log lines through a run logger, each with its own timestamp.

    Args:
        logger: A task run's logger (`get_run_logger()`), or any logger.
        lines: The lines, oldest first.
    """
    if isinstance(logger, logging.LoggerAdapter):
        base, extra = logger.logger, dict(logger.extra or {})
    else:
        base, extra = logger, {}
    for line in lines:
        if base.isEnabledFor(line.level):
            base.handle(line.to_record(base.name, extra))


async def run_with_task_logger(runner: ComponentRunner, held: Iterable[LogLine] = ()) -> RunStats:
    """Runs a component with `self.logger` bound to the current task run, then logs figures.

    Args:
        runner: The component's runner.
        held: Lines the component logged before its task run existed (in its `init()`).
    """
    from prefect.logging import get_run_logger

    component = runner.component
    logger = get_run_logger()
    write_log_lines(logger, held)
    component._run_logger = logger
    try:
        stats = await runner.run()
        logger.info("Component %r finished: %s.", component.name, stats.summary())
        return stats
    finally:
        component._run_logger = None
