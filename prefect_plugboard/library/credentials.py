"""Connection settings from Prefect blocks, so that no secret sits in a model file.

A component's `connection_string` (SQL) or `storage_options` (files) may be a saved Prefect
block, given as the block object or as its reference `"<block type slug>/<block name>"`, in
Python and in YAML:

- `SQLReader`/`SQLWriter` `connection_string`: `SqlAlchemyConnector` or
  `AsyncSqlAlchemyConnector` (from `prefect-sqlalchemy`);
- `FileReader`/`FileWriter` `storage_options`: `AwsCredentials`, `MinIOCredentials` or
  `S3Bucket` (from `prefect-aws`).

Blocks are loaded where the component is built (the driver), never on a Ray worker.
"""

from __future__ import annotations

from collections.abc import Mapping
import re
import typing as _t

from prefect_plugboard.exceptions import ValidationError


__all__ = ["SQLConnection", "Storage", "is_block_reference", "sql_connection", "storage"]

_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9-]*/[^/\s]+$")


def is_block_reference(value: object) -> bool:
    """Whether `value` is a `"<block type slug>/<block name>"` string (not a URL or a path)."""
    return isinstance(value, str) and "://" not in value and bool(_REFERENCE.match(value))


class SQLConnection(_t.NamedTuple):
    """A database to connect to.

    Attributes:
        url: The SQLAlchemy URL, password included.
        connect_args: DBAPI connection arguments from the block (SQLAlchemy's `connect_args`).
    """

    url: str
    connect_args: dict[str, _t.Any]


class Storage(_t.NamedTuple):
    """Where files are, for fsspec.

    Attributes:
        options: fsspec `storage_options`.
        root: A URL that relative paths are taken in (an `S3Bucket`'s bucket and folder).
    """

    options: dict[str, _t.Any]
    root: str | None = None


def sql_connection(value: _t.Any, *, needed_by: str) -> SQLConnection:
    """Returns the database URL given by a connection string or a SQLAlchemy block.

    Args:
        value: A SQLAlchemy URL, a `SqlAlchemyConnector`/`AsyncSqlAlchemyConnector` block, or a
            block reference such as `"sqlalchemy-connector/warehouse"`.
        needed_by: Who needs it, for messages, e.g. `"SQLReader 'read'"`.

    Raises:
        ValidationError: The block cannot be loaded or is of another kind.
    """
    if is_block_reference(value):
        value = load_block(value, needed_by=needed_by)
    if isinstance(value, str):
        return SQLConnection(value, {})
    info = getattr(value, "connection_info", None)
    if info is None:
        raise _wrong_block(value, needed_by, "a SQL connection string or a SqlAlchemyConnector")
    from sqlalchemy.engine import make_url

    url = info.create_url() if hasattr(info, "create_url") else make_url(str(info))
    return SQLConnection(
        url.render_as_string(hide_password=False), dict(getattr(value, "connect_args", None) or {})
    )


def storage(value: _t.Any, *, needed_by: str) -> Storage:
    """Returns the fsspec storage options given by a dict or a credentials block.

    Args:
        value: `None`, a dict of fsspec `storage_options`, an `AwsCredentials`,
            `MinIOCredentials` or `S3Bucket` block, or a block reference such as
            `"aws-credentials/prod"`.
        needed_by: Who needs it, for messages, e.g. `"FileReader 'read'"`.

    Raises:
        ValidationError: The block cannot be loaded or is of a kind not supported.
    """
    if value is None:
        return Storage({})
    if is_block_reference(value):
        value = load_block(value, needed_by=needed_by)
    if isinstance(value, Mapping):
        return Storage(dict(value))
    if hasattr(value, "bucket_name") and hasattr(value, "credentials"):  # S3Bucket
        folder = str(getattr(value, "bucket_folder", "") or "").strip("/")
        root = f"s3://{value.bucket_name}" + (f"/{folder}" if folder else "")
        return Storage(s3_options(value.credentials), root)
    if hasattr(value, "aws_client_parameters"):  # AwsCredentials, MinIOCredentials
        return Storage(s3_options(value))
    raise _wrong_block(value, needed_by, "storage options (a dict) or an AWS/MinIO/S3 block")


def s3_options(credentials: _t.Any) -> dict[str, _t.Any]:
    """s3fs `storage_options` for an `AwsCredentials` or `MinIOCredentials` block."""
    options: dict[str, _t.Any] = {}
    client_kwargs: dict[str, _t.Any] = {}
    key = getattr(credentials, "aws_access_key_id", None) or getattr(
        credentials, "minio_root_user", None
    )
    secret = getattr(credentials, "aws_secret_access_key", None) or getattr(
        credentials, "minio_root_password", None
    )
    if key:
        options["key"] = key
    if secret is not None:
        options["secret"] = secret.get_secret_value()
    if getattr(credentials, "aws_session_token", None):
        options["token"] = credentials.aws_session_token
    if getattr(credentials, "profile_name", None):
        options["profile"] = credentials.profile_name
    if getattr(credentials, "region_name", None):
        client_kwargs["region_name"] = credentials.region_name
    parameters = getattr(credentials, "aws_client_parameters", None)
    if parameters is not None:
        if parameters.endpoint_url:
            options["endpoint_url"] = parameters.endpoint_url
        if not parameters.use_ssl:
            options["use_ssl"] = False
        verify = parameters.verify_cert_path or parameters.verify
        if verify is not None and verify is not True:
            client_kwargs["verify"] = verify if isinstance(verify, bool) else str(verify)
        if parameters.api_version:
            client_kwargs["api_version"] = parameters.api_version
        if parameters.config:
            options["config_kwargs"] = dict(parameters.config)
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options


def load_block(reference: str, *, needed_by: str) -> _t.Any:
    """Loads the block saved in Prefect under `"<block type slug>/<block name>"`.

    Raises:
        ValidationError: No such block, or its block type's package is not installed.
    """
    from prefect.blocks.core import Block

    try:
        # `_sync`: Prefect's `load` would return a coroutine when called on an event loop.
        return Block.load(reference, _sync=True)  # type: ignore[call-arg]
    except (ValueError, KeyError) as exc:
        slug = reference.partition("/")[0]
        hint = {
            "aws-credentials": " (install prefect-plugboard[s3])",
            "minio-credentials": " (install prefect-plugboard[s3])",
            "s3-bucket": " (install prefect-plugboard[s3])",
            "sqlalchemy-connector": " (install prefect-plugboard[sql-blocks])",
            "async-sqlalchemy-connector": " (install prefect-plugboard[sql-blocks])",
        }.get(slug, "")
        msg = (
            f"{needed_by}: cannot load the Prefect block {reference!r}{hint}: {exc}; "
            "`prefect block ls` lists the saved blocks"
        )
        raise ValidationError([msg], subject=f"block {reference!r}") from None


def _wrong_block(value: object, needed_by: str, expected: str) -> ValidationError:
    msg = f"{needed_by} needs {expected}, got a {type(value).__name__}"
    return ValidationError([msg], subject=needed_by)
