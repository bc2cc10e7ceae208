"""One database for a SQL component, behind async methods.

An async SQLAlchemy engine where the driver allows, otherwise a sync engine driven from one
thread of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import importlib.util
import typing as _t

from sqlalchemy import MetaData, Table, insert, inspect as sa_inspect, text
from sqlalchemy.engine import URL, Connection, Engine, Result, create_engine, make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult, create_async_engine

from prefect_plugboard.library._common import IOThread


__all__ = ["Database", "parse_url", "safe_url"]

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "aiomysql"}
"""A dialect named without a driver uses its async driver when that is installed."""


def parse_url(connection_string: str) -> URL:
    """The URL to connect to: a bare dialect gets its async driver if it is installed.

    Raises:
        ValueError: The string is not a SQLAlchemy URL, or its driver is not installed.
    """
    try:
        url = make_url(connection_string)
    except ArgumentError as exc:
        msg = f"{connection_string!r} is not a SQLAlchemy URL: {exc}"
        raise ValueError(msg) from None
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is not None and importlib.util.find_spec(driver) is not None:
        url = url.set(drivername=f"{url.drivername}+{driver}")
    try:
        url.get_dialect()
    except NoSuchModuleError as exc:
        msg = f"{safe_url(url)}: {exc}; install the database driver it names"
        raise ValueError(msg) from None
    return url


def safe_url(url: URL | str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<a malformed URL>"


class Database:
    """Connections to one database, async whichever the driver.

    Args:
        url: Where to connect.
        engine_args: Keyword arguments of `create_engine` / `create_async_engine`.
        name: Names the thread a sync driver runs on.
    """

    def __init__(self, url: URL, engine_args: Mapping[str, _t.Any], name: str) -> None:
        self.url = url
        self._thread: IOThread | None = None
        self._engine: AsyncEngine | Engine
        try:
            self._engine = create_async_engine(url, **engine_args)
        except InvalidRequestError:  # the driver is not async: a thread of its own
            self._engine = create_engine(url, **engine_args)
            self._thread = IOThread(name)
        self._connection: AsyncConnection | Connection | None = None
        self._result: AsyncResult[_t.Any] | Result[_t.Any] | None = None
        self._rows: list[_t.Any] | None = None

    @property
    def is_async(self) -> bool:
        """Whether the driver is async (else calls run on the database's own thread)."""
        return self._thread is None

    async def check(self) -> None:
        """Connects once, so that a database that cannot be reached fails here."""
        if isinstance(self._engine, AsyncEngine):
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        else:
            await self._sync(self._check_sync)

    def _check_sync(self) -> None:
        with _t.cast(Engine, self._engine).connect() as conn:
            conn.execute(text("SELECT 1"))

    async def start_query(
        self, query: str, params: Mapping[str, _t.Any], chunk_size: int | None
    ) -> list[str]:
        """Runs `query`, streamed through a server-side cursor if there is a chunk size.

        Returns:
            The names of the result's columns.
        """
        statement = text(query)
        if isinstance(self._engine, AsyncEngine):
            conn = self._connection = await self._engine.connect()
            if chunk_size:
                streaming = await conn.execution_options(
                    stream_results=True, max_row_buffer=chunk_size
                )
                self._result = await streaming.stream(statement, dict(params))
                return list(self._result.keys())
            result = await conn.execute(statement, dict(params))
            self._rows = list(result.fetchall())
            return list(result.keys())
        return _t.cast(
            list[str], await self._sync(self._start_query_sync, statement, params, chunk_size)
        )

    def _start_query_sync(
        self, statement: _t.Any, params: Mapping[str, _t.Any], chunk_size: int | None
    ) -> list[str]:
        conn = self._connection = _t.cast(Engine, self._engine).connect()
        if chunk_size:
            conn = conn.execution_options(stream_results=True, max_row_buffer=chunk_size)
            self._result = conn.execute(statement, dict(params))
            return list(self._result.keys())
        result = conn.execute(statement, dict(params))
        self._rows = list(result.fetchall())
        return list(result.keys())

    async def fetch(self, size: int | None) -> Sequence[Sequence[_t.Any]]:
        """The next `size` rows of the query (what is left, without a size)."""
        if self._rows is not None:
            rows, self._rows = self._rows, []
            return rows
        result = self._result
        if isinstance(result, AsyncResult):
            return await (result.fetchmany(size) if size else result.fetchall())
        if result is None:
            return []
        if size:
            return _t.cast(Sequence[Sequence[_t.Any]], await self._sync(result.fetchmany, size))
        return _t.cast(Sequence[Sequence[_t.Any]], await self._sync(result.fetchall))

    async def table(self, name: str) -> Table | None:
        """The table `name` as it is in the database, or `None` if there is none."""
        if isinstance(self._engine, AsyncEngine):
            async with self._engine.connect() as conn:
                return _t.cast(Table | None, await conn.run_sync(_reflect, name))
        return _t.cast(Table | None, await self._sync(self._table_sync, name))

    def _table_sync(self, name: str) -> Table | None:
        with _t.cast(Engine, self._engine).connect() as conn:
            return _reflect(conn, name)

    async def create(self, table: Table) -> None:
        """Creates `table` unless it exists."""
        if isinstance(self._engine, AsyncEngine):
            async with self._engine.begin() as conn:
                await conn.run_sync(table.create, checkfirst=True)
        else:
            await self._sync(table.create, self._engine, True)

    async def insert(self, table: Table, rows: list[dict[str, _t.Any]]) -> None:
        """Inserts `rows` in one transaction."""
        if isinstance(self._engine, AsyncEngine):
            async with self._engine.begin() as conn:
                await conn.execute(insert(table), rows)
        else:
            await self._sync(self._insert_sync, table, rows)

    def _insert_sync(self, table: Table, rows: list[dict[str, _t.Any]]) -> None:
        with _t.cast(Engine, self._engine).begin() as conn:
            conn.execute(insert(table), rows)

    async def close(self) -> None:
        """Ends the query under way and disposes of the engine's connections."""
        result, self._result = self._result, None
        conn, self._connection = self._connection, None
        if isinstance(self._engine, AsyncEngine):
            if isinstance(result, AsyncResult):
                await result.close()
            if isinstance(conn, AsyncConnection):
                await conn.close()
            await self._engine.dispose()
            return
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            await thread.run(_close_sync, result, conn, self._engine)
        finally:
            await thread.close()

    async def _sync(self, function: _t.Callable[..., _t.Any], *args: _t.Any) -> _t.Any:
        return await _t.cast(IOThread, self._thread).run(function, *args)


def _reflect(conn: Connection, name: str) -> Table | None:
    schema, _, table_name = name.rpartition(".")
    if not sa_inspect(conn).has_table(table_name, schema=schema or None):
        return None
    return Table(table_name, MetaData(), autoload_with=conn, schema=schema or None)


def _close_sync(result: Result[_t.Any] | None, conn: Connection | None, engine: Engine) -> None:
    if result is not None:
        result.close()
    if conn is not None:
        conn.close()
    engine.dispose()
