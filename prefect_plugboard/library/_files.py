"""Where a file is (fsspec URLs and local paths) and which format it has."""

from __future__ import annotations

import os
import typing as _t

from prefect_plugboard.exceptions import DataIOError, ValidationError


if _t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem


__all__ = ["EXTRAS", "FORMATS", "file_format", "filesystem", "is_url", "resolve_location"]

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


EXTRAS: dict[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}
"""URL protocols and the extra of prefect-plugboard that installs their filesystem."""


def filesystem(
    location: str, options: dict[str, _t.Any], *, needed_by: str
) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for `location` and the path within it.

    Args:
        location: The file's URL or local path.
        options: fsspec `storage_options`.
        needed_by: Who needs it, for messages, e.g. `"FileReader 'read'"`.

    Raises:
        DataIOError: The filesystem's package is not installed (naming the extra to install),
            or the filesystem cannot be made with these options.
    """
    from fsspec.core import url_to_fs

    try:
        return _t.cast("tuple[AbstractFileSystem, str]", url_to_fs(location, **options))
    except ImportError as exc:
        protocol = location.split("::")[-1].partition("://")[0] if is_url(location) else ""
        extra = EXTRAS.get(protocol.lower())
        install = (
            f"install it with `pip install 'prefect-plugboard[{extra}]'`"
            if extra
            else "install the fsspec filesystem for it"
        )
        msg = (
            f"{needed_by}: cannot open {location}: its filesystem is not installed ({exc}); "
            f"{install}"
        )
        raise DataIOError(msg) from None
    except Exception as exc:
        msg = (
            f"{needed_by}: cannot open the filesystem of {location} with its storage_options: "
            f"{type(exc).__name__}: {exc}"
        )
        raise DataIOError(msg) from exc
