"""`SQLReader` / `SQLWriter` against a real SQLite file and, where one starts, PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import sqlite3

import numpy as np
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from prefect_plugboard import LocalProcess, PlugboardError
from prefect_plugboard.exceptions import ValidationError
from prefect_plugboard.library import SQLReader, SQLWriter
from prefect_plugboard.testing import Collector, ListSource, run_in_memory
from tests.helpers import connect, error_text, free_port, run_failing_midway, wire


ROWS = [(i, f"name-{i}", i * 0.5) for i in range(12)]


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (num INTEGER, label TEXT, score REAL)")
        db.executemany("INSERT INTO items VALUES (?, ?, ?)", ROWS)
    return path


SQLITE_URLS = {"async": "sqlite:///{}", "sync": "sqlite+pysqlite:///{}"}


async def _failure(process: LocalProcess) -> str:
    with pytest.raises(PlugboardError) as info:
        await run_in_memory(process)
    return error_text(info.value)


def _one_row_into(url: str, table: str) -> LocalProcess:
    """A model writing one row of `x` into `table` at `url`."""
    return LocalProcess(
        components=[
            ListSource(name="src", items=[1]),
            SQLWriter(name="save", connection_string=url, table=table, field_names=["x"]),
        ],
        connectors=wire("src", "save", ["x"]),
    )


@pytest.mark.parametrize("chunk_size", [None, 1, 5])
@pytest.mark.parametrize("driver", ["async", "sync"])
async def test_rows_of_a_query_with_parameters_are_copied_to_a_new_table(
    sqlite_file: Path, driver: str, chunk_size: int | None
) -> None:
    url = SQLITE_URLS[driver].format(sqlite_file)
    fields = ["num", "label", "score"]
    reader = SQLReader(
        name="read",
        connection_string=url,
        query="SELECT score, label, num FROM items WHERE num >= :low ORDER BY num",
        params={"low": 4},
        field_names=fields,
        chunk_size=chunk_size,
    )
    process = LocalProcess(
        components=[
            reader,
            SQLWriter(name="save", connection_string=url, table="copied", field_names=fields),
        ],
        connectors=wire("read", "save", fields),
    )
    await run_in_memory(process)
    assert reader.is_async_driver is (driver == "async")
    with sqlite3.connect(sqlite_file) as db:
        assert db.execute("SELECT num, label, score FROM copied").fetchall() == ROWS[4:]
        types = {r[1]: r[2] for r in db.execute("PRAGMA table_info(copied)")}
    assert types == {"num": "BIGINT", "label": "TEXT", "score": "FLOAT"}


async def test_a_writer_appends_to_an_existing_table_in_chunks(sqlite_file: Path) -> None:
    url = f"sqlite:///{sqlite_file}"
    process = LocalProcess(
        components=[
            ListSource(name="ids", items=[100, 101, 102]),
            ListSource(name="labels", items=["x", "y", "z"], field="label"),
            SQLWriter(
                name="save",
                connection_string=url,
                table="items",
                field_names=["num", "label"],
                chunk_size=2,
            ),
        ],
        connectors=connect("ids.x -> save.num", "labels.label -> save.label"),
    )
    await run_in_memory(process)
    with sqlite3.connect(sqlite_file) as db:
        added = db.execute("SELECT num, label, score FROM items WHERE num >= 100").fetchall()
    assert added == [(100, "x", None), (101, "y", None), (102, "z", None)]


@pytest.mark.parametrize("driver", ["async", "sync"])
async def test_a_failure_mid_run_keeps_every_row_the_writer_received(
    tmp_path: Path, driver: str
) -> None:
    path = tmp_path / "out.db"
    writer = SQLWriter(
        name="save",
        connection_string=SQLITE_URLS[driver].format(path),
        table="results",
        field_names=["y"],
        chunk_size=4,
    )
    received = await run_failing_midway(writer)
    assert received >= 5  # a full chunk, and rows still buffered when the run failed
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT y FROM results ORDER BY rowid").fetchall()
    assert rows == [(i,) for i in range(received)]


async def test_numpy_timestamps_are_written_as_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    stamp = np.datetime64("2024-01-01T12:00:00.000001", "ns")  # as from timestamp[ns] Parquet
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[stamp, None]),
            SQLWriter(
                name="save", connection_string=f"sqlite:///{path}", table="t", field_names=["t"]
            ),
        ],
        connectors=connect("src.x -> save.t"),
    )
    await run_in_memory(process)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT t FROM t ORDER BY rowid").fetchall()
    assert rows == [("2024-01-01 12:00:00.000001",), (None,)]


def _column_types(database: Path, table: str) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        return {r[1]: r[2] for r in db.execute(f"PRAGMA table_info({table})")}


@pytest.mark.parametrize("driver", ["async", "sync"])
async def test_a_new_table_takes_a_column_s_type_from_its_first_value_not_none(
    tmp_path: Path, driver: str
) -> None:
    # The first row, written as a chunk of its own, has no value for `x` yet.
    database = tmp_path / "out.db"
    url = SQLITE_URLS[driver].format(database)
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[None, 1, 2]),
            SQLWriter(
                name="save", connection_string=url, table="made", field_names=["x"], chunk_size=1
            ),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    await run_in_memory(process)
    assert _column_types(database, "made") == {"x": "BIGINT"}
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT x FROM made").fetchall() == [(None,), (1,), (2,)]


async def test_a_field_without_any_value_gets_a_text_column_when_the_writer_ends(
    tmp_path: Path,
) -> None:
    database = tmp_path / "out.db"
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[None, None]),
            SQLWriter(
                name="save",
                connection_string=f"sqlite:///{database}",
                table="made",
                field_names=["x"],
                chunk_size=1,
            ),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    await run_in_memory(process)
    assert _column_types(database, "made") == {"x": "TEXT"}
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT x FROM made").fetchall() == [(None,), (None,)]


async def test_a_table_without_the_fields_columns_is_refused(sqlite_file: Path) -> None:
    url = f"sqlite:///{sqlite_file}"
    process = _one_row_into(url, "items")
    text_ = await _failure(process)
    assert "SQLWriter 'save'" in text_ and "table 'items'" in text_ and str(sqlite_file) in text_
    assert "no column(s) ['x']" in text_ and "['num', 'label', 'score']" in text_


async def test_a_query_without_a_field_is_refused(sqlite_file: Path) -> None:
    reader = SQLReader(
        name="read",
        connection_string=f"sqlite:///{sqlite_file}",
        query="SELECT num FROM items",
        field_names=["num", "missing"],
    )
    process = LocalProcess(
        components=[reader, Collector(name="s", fields=["num", "missing"])],
        connectors=wire("read", "s", ["num", "missing"]),
    )
    text_ = await _failure(process)
    assert "SQLReader 'read'" in text_ and "no column(s) ['missing']" in text_


async def test_a_database_that_cannot_be_reached_fails_without_showing_the_password() -> None:
    url = f"postgresql://analyst:s3cret@127.0.0.1:{free_port()}/warehouse"
    reader = SQLReader(name="read", connection_string=url, query="SELECT 1 AS x", field_names=["x"])
    process = LocalProcess(
        components=[reader, Collector(name="s")], connectors=connect("read.x -> s.x")
    )
    text_ = await _failure(process)
    assert "SQLReader 'read': cannot connect to postgresql+asyncpg://analyst:***@127.0.0.1" in text_
    assert "s3cret" not in text_


async def test_a_writer_whose_database_cannot_be_reached_fails_before_the_run() -> None:
    url = f"postgresql://analyst:s3cret@127.0.0.1:{free_port()}/warehouse"
    process = _one_row_into(url, "t")
    text_ = await _failure(process)
    assert "SQLWriter 'save': cannot connect to postgresql+asyncpg://analyst:***@127.0.0.1" in text_
    assert "s3cret" not in text_
    assert process.components["src"].run_stats.steps == 0


def test_a_malformed_url_or_a_missing_driver_is_refused_when_built() -> None:
    with pytest.raises(ValidationError, match="SQLWriter 'w'.*not a SQLAlchemy URL"):
        SQLWriter(name="w", connection_string="no url at all", table="t", field_names=["x"])
    with pytest.raises(ValidationError, match="SQLReader 'r'.*install the database driver"):
        SQLReader(name="r", connection_string="nosuchdb://h/d", query="q", field_names=["x"])


# ----- PostgreSQL: a real server, started for the session ---------------------------------


def _async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
async def pg_table(postgres_url: str) -> str:
    engine = create_async_engine(_async_url(postgres_url))
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS readings, copies"))
        await conn.execute(
            text("CREATE TABLE readings (num INT, at TIMESTAMPTZ, value DOUBLE PRECISION)")
        )
        await conn.execute(
            text("INSERT INTO readings SELECT g, timestamptz '2024-05-01 00:00+00' "
                 "+ g * interval '1 minute', g / 4.0 FROM generate_series(1, 20) g")
        )  # fmt: skip
    await engine.dispose()
    return postgres_url


@pytest.mark.slow  # starts a PostgreSQL server
async def test_postgres_rows_are_streamed_and_copied(pg_table: str) -> None:
    fields = ["num", "at", "value"]
    reader = SQLReader(
        name="read",
        connection_string=pg_table,
        query="SELECT num, at, value FROM readings WHERE num <= :top ORDER BY num",
        params={"top": 15},
        field_names=fields,
        chunk_size=4,
    )
    process = LocalProcess(
        components=[
            reader,
            SQLWriter(name="save", connection_string=pg_table, table="copies", field_names=fields),
        ],
        connectors=wire("read", "save", fields),
    )
    await run_in_memory(process)
    assert reader.is_async_driver
    engine = create_async_engine(_async_url(pg_table))
    async with engine.connect() as conn:
        query = text("SELECT num, at, value FROM copies ORDER BY num")
        copied = (await conn.execute(query)).fetchall()
        columns = await conn.run_sync(
            lambda sync: {c["name"]: str(c["type"]) for c in inspect(sync).get_columns("copies")}
        )
    await engine.dispose()
    assert [r[0] for r in copied] == list(range(1, 16))
    assert copied[0][1] == dt.datetime(2024, 5, 1, 0, 1, tzinfo=dt.UTC)
    assert columns == {"num": "BIGINT", "at": "TIMESTAMP", "value": "DOUBLE PRECISION"}


@pytest.mark.slow  # starts a PostgreSQL server
@pytest.mark.parametrize("chunk_size", [10, None])
async def test_postgres_chunks_come_from_a_server_side_cursor(
    postgres_url: str, chunk_size: int | None
) -> None:
    # Row 500 divides by zero. Streamed through a server-side cursor, rows before it are
    # emitted before the server computes row 500; read whole, the query fails in init().
    reader = SQLReader(
        name="read",
        connection_string=postgres_url,
        query="SELECT g, 1 / (500 - g) AS bad FROM generate_series(1, 1000) g",
        field_names=["g"],
        chunk_size=chunk_size,
    )
    process = LocalProcess(
        components=[reader, Collector(name="sink", fields=["g"])],
        connectors=wire("read", "sink", ["g"]),
    )
    assert "division by zero" in await _failure(process)
    if chunk_size is None:
        assert reader.g is None
    else:
        assert reader.g is not None and 10 <= reader.g < 500


@pytest.mark.slow  # starts a PostgreSQL server
async def test_postgres_new_table_takes_a_column_s_type_from_its_first_value_not_none(
    postgres_url: str,
) -> None:
    engine = create_async_engine(_async_url(postgres_url))
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS late_values"))
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[None, 1.5, 2.5]),
            SQLWriter(
                name="save",
                connection_string=postgres_url,
                table="late_values",
                field_names=["x"],
                chunk_size=1,
            ),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    await run_in_memory(process)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT x FROM late_values"))).fetchall()
        columns = await conn.run_sync(
            lambda sync: {
                c["name"]: str(c["type"]) for c in inspect(sync).get_columns("late_values")
            }
        )
    await engine.dispose()
    assert sorted(rows, key=lambda r: r[0] or 0) == [(None,), (1.5,), (2.5,)]
    assert columns == {"x": "DOUBLE PRECISION"}
