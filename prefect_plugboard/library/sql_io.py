"""`SQLReader` and `SQLWriter`: rows from a query, rows into a table, through SQLAlchemy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import datetime as _dt
import decimal
import numbers
import typing as _t

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeEngine

from prefect_plugboard.exceptions import DataIOError, NoMoreDataException, ValidationError
from prefect_plugboard.library._columns import plain_values
from prefect_plugboard.library._common import check_columns, label
from prefect_plugboard.library._database import Database, parse_url, safe_url
from prefect_plugboard.library.credentials import sql_connection
from prefect_plugboard.library.data_reader import DataReader, DataReaderArgsDict
from prefect_plugboard.library.data_writer import DataWriter, DataWriterArgsDict


__all__ = ["SQLReader", "SQLWriter"]


class _SQLComponent:
    """The connection handling both SQL components share."""

    name: str
    _database: Database | None

    def _connect_to(
        self, connection_string: _t.Any, connect_args: Mapping[str, _t.Any] | None
    ) -> None:
        connection = sql_connection(connection_string, needed_by=label(self))
        try:
            self._url = parse_url(connection.url)
        except ValueError as exc:
            msg = f"{label(self)}: {exc}"
            raise ValidationError([msg], subject=f"component {self.name!r}") from None
        self._engine_args = dict(connect_args or {})
        if connection.connect_args:
            self._engine_args.setdefault("connect_args", connection.connect_args)
        self._database = None

    @property
    def is_async_driver(self) -> bool | None:
        """Whether the last run used an async driver (`None` before the first run)."""
        return self.__dict__.get("_async_driver")

    async def _open_database(self) -> Database:
        """Connects once, so that a database that cannot be reached fails in `init()`."""
        database = self._database = Database(self._url, self._engine_args, self.name)
        self._async_driver = database.is_async
        try:
            await database.check()
        except (SQLAlchemyError, OSError) as exc:
            doing = "cannot connect to"
            raise self._error(doing, exc) from exc
        return database

    async def _close_database(self) -> None:
        database, self._database = self._database, None
        if database is not None:
            await database.close()

    def _error(self, doing: str, exc: BaseException) -> DataIOError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {detail[0] if detail else ''}"
        message = f"{label(self)}: {doing} {safe_url(self._url)}: {reason}"
        return DataIOError(message)


class SQLReader(_SQLComponent, DataReader):
    """Emits the rows of a SQL query, one row per step.

    Its outputs are `field_names`, read from the result columns of the same names. The query
    runs in `init()` (so a database that cannot be reached, or a query that fails, stops the
    model before it starts); with a `chunk_size` its rows are streamed through a server-side
    cursor, `chunk_size` at a time, the next chunk fetched while the graph works on this one.
    A bare `sqlite://` or `postgresql://` URL uses the async driver (aiosqlite, asyncpg) when
    it is installed; any other SQLAlchemy driver works, run on a thread of its own.

    Args:
        connection_string: A SQLAlchemy URL, or a `SqlAlchemyConnector` block (the object or
            `"sqlalchemy-connector/<name>"`), so that no password sits in the model.
        query: The SQL query, with `:name` placeholders for `params`.
        params: The query's parameters.
        connect_args: Keyword arguments of SQLAlchemy's `create_engine`.
        **kwargs: `field_names`, `chunk_size` and the other `ComponentArgsDict` arguments.
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = ("_database",)

    def __init__(
        self,
        connection_string: str | _t.Any,
        query: str,
        params: Mapping[str, _t.Any] | None = None,
        connect_args: Mapping[str, _t.Any] | None = None,
        **kwargs: _t.Unpack[DataReaderArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._connect_to(connection_string, connect_args)
        self._query = query
        self._params = dict(params or {})
        self._positions: list[int] = []

    async def init(self) -> None:
        """Connects, runs the query and fetches the first chunk.

        Raises:
            DataIOError: The database cannot be reached, the query fails, or its result lacks
                a field.
        """
        database = await self._open_database()
        try:
            columns = await database.start_query(self._query, self._params, self._chunk_size)
        except (SQLAlchemyError, OSError) as exc:
            doing = "the query failed on"
            raise self._error(doing, exc) from exc
        check_columns(
            self, self._field_names, columns, f"the query's result on {safe_url(self._url)}"
        )
        self._positions = [columns.index(f) for f in self._field_names]
        await super().init()

    async def destroy(self) -> None:
        """Ends the query and closes the connection."""
        try:
            await super().destroy()
        finally:
            await self._close_database()

    async def _fetch(self) -> Sequence[Sequence[_t.Any]]:
        try:
            rows = await _t.cast(Database, self._database).fetch(self._chunk_size)
        except (SQLAlchemyError, OSError) as exc:
            doing = "cannot read the query's rows from"
            raise self._error(doing, exc) from exc
        if not rows:
            raise NoMoreDataException
        return rows

    async def _convert(self, data: Sequence[Sequence[_t.Any]]) -> dict[str, Sequence[_t.Any]]:
        columns = list(zip(*data, strict=True))
        return {f: columns[i] for f, i in zip(self._field_names, self._positions, strict=True)}


class SQLWriter(_SQLComponent, DataWriter):
    """Inserts the rows it receives into a table, a chunk per transaction.

    `init()` connects and reflects the table: an existing table must have a column for each of
    `field_names`; a table that does not exist is created, each column's type taken from the
    first value of its field that is not `None` (`int` -> BIGINT, `float` -> FLOAT, `str` ->
    TEXT, `bool`, `datetime`, `date`, `Decimal`, `bytes`, and JSON for dicts and lists).
    Until every field has had a value, rows are held back (in memory); a field that has had
    none when the writer ends gets a TEXT column. Rows buffered or held back when the model
    ends, fails or is stopped are inserted before the connection closes.

    Args:
        connection_string: A SQLAlchemy URL or a `SqlAlchemyConnector` block (as for
            `SQLReader`).
        table: The table to write to (`schema.table` names a schema).
        connect_args: Keyword arguments of SQLAlchemy's `create_engine`.
        **kwargs: `field_names`, `chunk_size`, `flush_interval` and the other
            `ComponentArgsDict` arguments (see `DataWriter`).
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = ("_database", "_table", "_held")

    def __init__(
        self,
        connection_string: str | _t.Any,
        table: str,
        connect_args: Mapping[str, _t.Any] | None = None,
        **kwargs: _t.Unpack[DataWriterArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._connect_to(connection_string, connect_args)
        self._table_name = table
        self._table: Table | None = None
        self._held: list[dict[str, _t.Any]] = []
        """Rows received before every field had a value, for a table not created yet."""
        self._column_types: dict[str, TypeEngine[_t.Any]] = {}

    async def init(self) -> None:
        """Connects and reflects the table.

        Raises:
            DataIOError: The database cannot be reached, or the table lacks a column.
        """
        self._held, self._column_types = [], {}
        database = await self._open_database()
        try:
            self._table = await database.table(self._table_name)
        except (SQLAlchemyError, OSError) as exc:
            doing = f"cannot read table {self._table_name!r} in"
            raise self._error(doing, exc) from exc
        if self._table is not None:
            missing = [f for f in self._field_names if f not in self._table.columns]
            if missing:
                msg = (
                    f"{label(self)}: table {self._table_name!r} in {safe_url(self._url)} has "
                    f"no column(s) {missing} for its fields; its columns are "
                    f"{list(self._table.columns.keys())}"
                )
                raise DataIOError(msg)

    async def destroy(self) -> None:
        """Inserts the rows still buffered or held back and closes the connection."""
        try:
            try:
                await super().destroy()
            finally:
                if self._held:  # a field never had a value: its column is TEXT
                    await self._create_and_insert(self._held)
        finally:
            await self._close_database()

    async def _convert(self, data: dict[str, list[_t.Any]]) -> list[dict[str, _t.Any]]:
        columns = [plain_values(values) for values in data.values()]
        return [dict(zip(data, row, strict=True)) for row in zip(*columns, strict=True)]

    async def _save(self, data: list[dict[str, _t.Any]]) -> None:
        if self._table is None:
            self._held.extend(data)
            for field in self._field_names:
                if field not in self._column_types:
                    first = next((row[field] for row in data if row[field] is not None), None)
                    if first is not None:
                        self._column_types[field] = _column_type(first)
            if len(self._column_types) < len(self._field_names):
                return  # a column's type is not known yet
            data = self._held
        await self._create_and_insert(data)

    async def _create_and_insert(self, rows: list[dict[str, _t.Any]]) -> None:
        database = _t.cast(Database, self._database)
        try:
            if self._table is None:
                self._held = []
                self._table = _new_table(self._table_name, self._field_names, self._column_types)
                await database.create(self._table)
            await database.insert(self._table, rows)
        except (SQLAlchemyError, OSError) as exc:
            doing = f"cannot insert into table {self._table_name!r} in"
            raise self._error(doing, exc) from exc


def _column_type(value: _t.Any) -> TypeEngine[_t.Any]:
    kinds: list[tuple[type | tuple[type, ...], TypeEngine[_t.Any]]] = [
        (bool, Boolean()),
        (numbers.Integral, BigInteger()),
        (decimal.Decimal, Numeric()),
        (numbers.Real, Float()),
        (str, Text()),
        ((bytes, bytearray), LargeBinary()),
        (_dt.datetime, DateTime(timezone=getattr(value, "tzinfo", None) is not None)),
        (_dt.date, Date()),
        (_dt.time, Time()),
        ((dict, list), JSON()),
    ]
    for kind, column_type in kinds:
        if isinstance(value, kind):
            return column_type
    return Text()


def _new_table(name: str, fields: Sequence[str], types: Mapping[str, TypeEngine[_t.Any]]) -> Table:
    schema, _, table_name = name.rpartition(".")
    columns = [Column(field, types.get(field, Text())) for field in fields]
    return Table(table_name, MetaData(), *columns, schema=schema or None)
