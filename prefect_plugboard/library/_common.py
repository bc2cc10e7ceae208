"""What the library's components share: argument checks, labels, live resources."""

from __future__ import annotations

from abc import ABC
import asyncio
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
import importlib
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.exceptions import DataIOError, ValidationError


__all__ = [
    "IOThread",
    "LibraryComponent",
    "check_chunk_size",
    "check_field_names",
    "label",
    "live_state",
    "with_block_references",
]


def label(component: object) -> str:
    """`FileReader 'read'`: how messages name a component."""
    return f"{type(component).__name__} {vars(component).get('name', '?')!r}"


def check_field_names(component: Component, field_names: Iterable[str]) -> list[str]:
    """Returns the field names as a list; refuses none or a plain string."""
    if isinstance(field_names, str) or not field_names:
        msg = f"{label(component)} needs `field_names`: a list of one or more field names"
        raise ValidationError([msg], subject=f"component {component.name!r}")
    return list(field_names)


def check_columns(
    component: object, needed: Iterable[str], available: Sequence[str], in_what: str
) -> None:
    """Fails when a reader's data lacks a column its fields need.

    Args:
        component: The reader, named in the message.
        needed: Its field names.
        available: The columns the data has.
        in_what: The data, for the message: `"data.csv"`, `"the query's result on URL"`.

    Raises:
        DataIOError: Naming the columns missing and those there are.
    """
    missing = [f for f in needed if f not in available]
    if missing:
        msg = (
            f"{label(component)}: {in_what} has no column(s) {missing}; "
            f"its columns are {list(available)}"
        )
        raise DataIOError(msg)


def check_chunk_size(component: Component, chunk_size: int | None) -> int | None:
    """Returns `chunk_size` once it is `None` or a positive whole number."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        msg = (
            f"{label(component)}: chunk_size must be a positive whole number or None, "
            f"got {chunk_size!r}"
        )
        raise ValidationError([msg], subject=f"component {component.name!r}")
    return chunk_size


def live_state(component: Component, state: dict[str, _t.Any]) -> dict[str, _t.Any]:
    """Blanks, in a pickled state, the attributes that hold live resources.

    Each class names its own in a `_live_attributes` tuple; files, engines, sockets, tasks and
    threads are opened again by `init()` where the component runs (a Ray worker, say).
    """
    for klass in type(component).__mro__:
        for name in klass.__dict__.get("_live_attributes", ()):
            if name in state:
                state[name] = None
    return state


_R = _t.TypeVar("_R")


class IOThread:
    """One thread for a component's blocking I/O: calls run in order, off the event loop.

    Args:
        name: Names the thread (`plugboard-<name>`), for debuggers and thread dumps.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"plugboard-{name}")

    async def run(self, function: _t.Callable[..., _R], *args: _t.Any) -> _R:
        """Runs `function(*args)` on the thread and returns its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def close(self) -> None:
        """Waits for the call under way, if any, and ends the thread."""
        await asyncio.to_thread(self._executor.shutdown, True)


def with_block_references(component: Component, exported: dict[str, _t.Any]) -> dict[str, _t.Any]:
    """An `export()` whose Prefect block arguments are given by reference, not by value.

    A saved block becomes `"<block type slug>/<block name>"`, so that a dumped model holds no
    secret and loads the same block again.

    Raises:
        ValidationError: An argument is a block that is not saved: it has no reference, and
            its fields (a password, a key) must not be written to a model file.
    """
    args = exported.get("args", {})
    for key, value in args.items():
        if not _is_block(value):
            continue
        name = getattr(value, "_block_document_name", None)
        if not name or getattr(value, "_is_anonymous", False):
            slug = type(value).get_block_type_slug()
            msg = (
                f"{label(component)}: its `{key}` is a {type(value).__name__} block that is not "
                f"saved, so the model cannot be written without its secrets; save it "
                f"(`block.save('my-name')`) and pass it, or its reference "
                f"'{slug}/my-name', instead"
            )
            raise ValidationError([msg], subject=f"component {component.name!r}")
        args[key] = f"{type(value).get_block_type_slug()}/{name}"
    return exported


class LibraryComponent(Component, ABC):
    """What the library's components share beyond `Component`.

    Their live resources (`_live_attributes`) stay out of a pickle, and their Prefect block
    arguments are exported by reference.
    """

    def export(self) -> dict[str, _t.Any]:
        """`{"type": ..., "args": {...}}`, with saved Prefect blocks given by reference.

        Raises:
            ValidationError: An argument is a Prefect block that is not saved.
        """
        return with_block_references(self, super().export())

    def __getstate__(self) -> dict[str, _t.Any]:
        return live_state(self, super().__getstate__())


def _is_block(value: object) -> bool:
    """Whether `value` is a Prefect block (without importing Prefect's blocks to find out)."""
    return any(
        klass.__name__ == "Block" and klass.__module__ == "prefect.blocks.core"
        for klass in type(value).__mro__
    )


class _LazyModule:
    """A module imported on first use of one of its names."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> _t.Any:
        module = importlib.import_module(self._name)
        return getattr(module, attribute)


def lazy_module(name: str) -> _t.Any:
    """`name` imported when one of its names is first used, not now.

    The library's Arrow-based components are built on the driver (and checked by
    `prefect-plugboard validate`) without Arrow: it loads where they read or write.
    """
    return _LazyModule(name)
