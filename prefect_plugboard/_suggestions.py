"""The one "did you mean" of every message about an unknown name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import difflib


__all__ = ["did_you_mean"]


def did_you_mean(
    word: str,
    candidates: Iterable[str] | Mapping[str, str],
    *,
    listing: str | None = None,
    cutoff: float = 0.6,
) -> str:
    """The tail of a message about an unknown `word`: `"; did you mean 'x'?"`.

    Args:
        word: The name that was not found.
        candidates: The names that exist; or a mapping from the keys `word` is compared with
            to what the message suggests (`{"sink": "blocks/sink"}`).
        listing: When no candidate is close, the tail lists them all after this label
            (`"; known keys: a, b"`); without it, the tail is then empty.
        cutoff: How close (0 to 1) a candidate must be to be suggested.

    Returns:
        The tail to append to a message (with its leading `"; "`), or `""`.
    """
    shown = dict(candidates) if isinstance(candidates, Mapping) else {c: c for c in candidates}
    close = difflib.get_close_matches(word, list(shown), n=1, cutoff=cutoff)
    if close:
        return f"; did you mean {shown[close[0]]!r}?"
    if listing is not None:
        return f"; {listing}: {', '.join(dict.fromkeys(shown.values())) or 'none'}"
    return ""
