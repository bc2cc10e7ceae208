"""Loading channel blocks by reference, with errors that say what to do.

A reference is `"<block type slug>/<document name>"`, as Prefect writes it
(`prefect block ls`), e.g. `"plugboard-asyncio-channel/asyncio-default"`.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
import inspect
import typing as _t

from pydantic import ValidationError as PydanticValidationError

from prefect_plugboard._suggestions import did_you_mean
from prefect_plugboard.blocks.channel_block import ChannelBlock
from prefect_plugboard.exceptions import Issue, ValidationError


__all__ = ["channel_block_types", "load_channel_block", "resolve_channel_block"]

BlockT = _t.TypeVar("BlockT", bound="ChannelBlock[_t.Any]")


def channel_block_types() -> dict[str, type[ChannelBlock[_t.Any]]]:
    """Returns every channel block class defined so far, by block type slug."""
    found: dict[str, type[ChannelBlock[_t.Any]]] = {}
    pending = ChannelBlock.__subclasses__()
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not inspect.isabstract(cls):
            found.setdefault(cls.get_block_type_slug(), cls)
    return dict(sorted(found.items()))


def load_channel_block(reference: str, *, location: str = "") -> ChannelBlock[_t.Any]:
    """Loads the channel block saved in Prefect under `reference`.

    Args:
        reference: `"<block type slug>/<document name>"`, e.g.
            `"plugboard-asyncio-channel/asyncio-default"`.
        location: Where the reference was written, for the error, e.g.
            `"connectors[2].channel"`.

    Returns:
        The block: an `AsyncioChannelBlock`, a `RayChannelBlock`, ...

    Raises:
        ValidationError: The reference is malformed, names a block type that is not a
            channel, or names no saved block document; the message names the reference and,
            where one is close, the saved channel block it probably meant.
    """
    text = str(reference)
    slug, _, name = text.partition("/")
    types = channel_block_types()
    if not slug or not name:
        example = f"{next(iter(types))}/NAME" if types else "SLUG/NAME"
        message = (
            f"{reference!r} is not a channel block reference: write "
            f"'<block type slug>/<block name>', e.g. {example!r}"
        )
        raise _error(reference, location, message + _closest_saved(text, _saved(types)))
    block_class = types.get(slug)
    if block_class is None:
        message = (
            f"{slug!r} is not a channel block type; the channel block types are {_listing(types)}"
        )
        guess = did_you_mean(slug, {t: f"{t}/{name}" for t in types})
        guess = guess or _closest_saved(reference, _saved(types))
        raise _error(reference, location, message + guess)
    try:
        # `_sync`: Prefect's `load` would return a coroutine when called on an event loop.
        loaded = block_class.load(name, _sync=True)  # type: ignore[call-arg]
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'block'}: {e['msg']}" for e in exc.errors()
        )
        message = f"the saved settings do not fit {block_class.__name__}: {problems}"
        raise _error(reference, location, message) from None
    except ValueError:
        saved = _saved({slug: block_class})
        if reference in saved:
            raise
        message = f"no {block_class.__name__} named {name!r} is saved in {_api()}"
        guess = _closest_saved(text, _saved(types)) or "; `prefect block ls` lists the saved blocks"
        raise _error(reference, location, message + guess) from None
    return _t.cast("ChannelBlock[_t.Any]", loaded)


def resolve_channel_block(
    block: ChannelBlock[_t.Any] | str, expected: type[BlockT], *, needed_by: str = "this use"
) -> BlockT:
    """Returns `block` (loading it if it is a reference) once it is an `expected` block.

    Its `build(spec)` then makes a connector with the block's settings.

    Example:
        ```python
        spec = ConnectorSpec(source="a.x", target="b.x")
        resolve_channel_block("plugboard-ray-channel/ray-default", RayChannelBlock).build(spec)
        ```

    Args:
        block: A channel block, or a `"<block type slug>/<document name>"` reference.
        expected: The channel block class required.
        needed_by: What needs it, for the error, e.g. `"connectors[2]"`.

    Raises:
        ValidationError: The reference cannot be loaded (see `load_channel_block`), or the
            block is not an `expected` block; the message names both.
    """
    loaded: object = load_channel_block(block) if isinstance(block, str) else block
    if isinstance(loaded, expected):
        return loaded
    if isinstance(loaded, ChannelBlock):
        reference = loaded.reference
        found = f"is of type {type(loaded).__name__} ({loaded.get_block_type_slug()})"
    else:
        reference = repr(loaded)
        found = f"is not a channel block but a {type(loaded).__name__}"
    message = (
        f"{needed_by} needs a block of type {expected.__name__} "
        f"({expected.get_block_type_slug()}), but {reference!r} {found}"
    )
    raise _error(reference, "", message)


def _error(reference: object, location: str, message: str) -> ValidationError:
    return ValidationError([Issue(message, location)], subject=f"channel block {reference!r}")


def _saved(types: _t.Mapping[str, type[ChannelBlock[_t.Any]]]) -> list[str]:
    """The references of every block document saved for the given block types."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    references = []
    with get_client(sync_client=True) as client:
        for slug in types:
            try:
                documents = client.read_block_documents_by_type(slug, include_secrets=False)
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code == HTTPStatus.NOT_FOUND:
                    continue  # the block type was never registered with this API
                raise
            references += [f"{slug}/{d.name}" for d in documents if not d.is_anonymous]
    return references


def _closest_saved(reference: str, saved: Iterable[str]) -> str:
    """`"; did you mean 'x/y'?"` for the saved reference closest to `reference`, else `""`.

    A saved reference is compared whole and by its name alone.
    """
    by_key: dict[str, str] = {}
    for candidate in saved:
        by_key.setdefault(candidate, candidate)
        by_key.setdefault(candidate.partition("/")[2], candidate)
    return did_you_mean(reference, by_key)


def _listing(types: Iterable[str]) -> str:
    names = [repr(slug) for slug in types]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _api() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return f"the Prefect API at {url}" if url else "the local Prefect database (PREFECT_HOME)"
