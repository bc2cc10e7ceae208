"""Where a file is (fsspec URLs and local paths) and which format it has."""

from __future__ import annotations

import os
import typing as _t

from prefect_plugboard.exceptions import ValidationError


if _t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem


__all__ = ["FORMATS", "file_format", "filesystem", "is_url", "resolve_location"]

FORMATS: dict[str, str] = {".csv.gz": "csv.gz", ".csv": "csv", ".parquet": "parquet"}
"""File name endings and the formats they stand for."""


def is_url(path: str) -> bool:
    """Whether `path` names a protocol (`s3://...`, `memory://...`, a chained `a::b`)."""
    return "://" in path or "::" in path


def resolve_location(path: str | os.PathLike[str], root: str | None) -> str:
    """The URL or absolute path a component reads or writes.

    A local relative path is made absolute where the component is built, so it means what it
    meant to the user who typed it, also on a Ray worker whose working directory differs. With
    a `root` (an `S3Bucket` block's bucket and folder), a relative path is taken inside it.
    """
    text = os.fspath(path)
    if is_url(text):
        return text
    if root is not None:
        return f"{root.rstrip('/')}/{text.lstrip('/')}"
    return os.path.abspath(os.path.expanduser(text))


def file_format(location: str, *, needed_by: str, subject: str) -> str:
    """The format of the file at `location`, from the end of its name.

    Raises:
        ValidationError: The name ends in none of `.csv`, `.csv.gz`, `.parquet`.
    """
    name = location.rsplit("/", 1)[-1].lower()
    for ending, fmt in FORMATS.items():
        if name.endswith(ending):
            return fmt
    msg = (
        f"{needed_by}: {location!r} is not a file format it knows; "
        f"name the file with one of {', '.join(sorted(FORMATS))}"
    )
    raise ValidationError([msg], subject=subject)


def filesystem(location: str, options: dict[str, _t.Any]) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for `location` and the path within it."""
    from fsspec.core import url_to_fs

    return _t.cast("tuple[AbstractFileSystem, str]", url_to_fs(location, **options))
