"""`FileReader` / `FileWriter`: formats, fsspec URLs, types, bad input."""

from __future__ import annotations

from collections.abc import Sequence
import csv
import datetime as dt
from decimal import Decimal
import gzip
import importlib.util
import io
from pathlib import Path
import pickle
import subprocess
import sys
import typing as _t
import uuid

import fsspec
from hypothesis import example, given, settings, strategies as st
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from prefect_plugboard import LocalProcess, PlugboardError
from prefect_plugboard.exceptions import DataIOError, IOStreamClosedError, ValidationError
from prefect_plugboard.library import FileReader, FileWriter
from prefect_plugboard.library._columns import ColumnTypeError, table_from_columns
from prefect_plugboard.testing import Collector, ListSource, run_in_memory
from tests.helpers import connect, error_text, run_failing_midway, wire


TABLE = pa.table(
    {
        "x": [1, 2, 3, 4, 5],
        "y": [0.5, 1.5, 2.5, 3.5, 4.5],
        "z": ["a", "b", "c, with a comma", "d", "e"],
    }
)


def _write(table: pa.Table, url: str) -> None:
    with fsspec.open(url, "wb") as f:
        if url.endswith(".parquet"):
            pq.write_table(table, f)
        elif url.endswith(".csv.gz"):
            with gzip.GzipFile(fileobj=f, mode="wb") as gz:
                pa_csv.write_csv(table, gz)
        else:
            pa_csv.write_csv(table, f)


def _read(url: str) -> pa.Table:
    with fsspec.open(url, "rb") as f:
        if url.endswith(".parquet"):
            return pq.read_table(f)
        data = f.read()
    if url.endswith(".gz"):
        data = gzip.decompress(data)
    return pa_csv.read_csv(io.BytesIO(data))


@pytest.fixture(params=["local", "memory"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "files")
    return f"memory://plugboard-tests/{uuid.uuid4().hex}"


def _copy_model(
    source: str | Path,
    target: str | Path,
    chunk_size: int | None,
    fields: Sequence[str] = ("x", "y", "z"),
) -> LocalProcess:
    """A `FileReader` of `fields` from `source` into a `FileWriter` to `target`."""
    fields = list(fields)
    return LocalProcess(
        components=[
            FileReader(name="read", path=source, field_names=fields, chunk_size=chunk_size),
            FileWriter(name="save", path=target, field_names=fields, chunk_size=chunk_size),
        ],
        connectors=wire("read", "save", fields),
    )


@pytest.mark.parametrize("chunk_size", [None, 2])
@pytest.mark.parametrize("fmt", [".csv", ".csv.gz", ".parquet"])
async def test_a_file_is_copied_row_by_row(location: str, fmt: str, chunk_size: int | None) -> None:
    source, target = f"{location}/in{fmt}", f"{location}/out/copy{fmt}"
    if not location.startswith("memory"):
        Path(location).mkdir(parents=True)
    _write(TABLE, source)
    process = _copy_model(source, target, chunk_size)
    await run_in_memory(process)
    assert _read(target).equals(TABLE)
    assert process.components["save"].run_stats.steps == TABLE.num_rows


async def test_a_parquet_round_trip_keeps_every_column_type(tmp_path: Path) -> None:
    stamps = [dt.datetime(2024, 1, 1, 12, 30, i) for i in range(3)]
    table = pa.table(
        {
            "i64": pa.array([1, 2, 3], pa.int64()),
            "i32": pa.array([1, 2, 3], pa.int32()),
            "u8": pa.array([1, 2, 3], pa.uint8()),
            "f64": pa.array([0.5, 1.5, 2.5], pa.float64()),
            "f32": pa.array([0.5, 1.5, 2.5], pa.float32()),
            "text": pa.array(["a", "b", None], pa.string()),
            "flag": pa.array([True, False, True], pa.bool_()),
            "ts_us": pa.array(stamps, pa.timestamp("us")),
            "ts_ns": pa.array(stamps, pa.timestamp("ns")),
            "ts_utc": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "day": pa.array([d.date() for d in stamps], pa.date32()),
            "maybe": pa.array([1, None, 3], pa.int64()),
        }
    )
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, source)
    fields = table.column_names
    process = _copy_model(source, target, 2, fields)
    await run_in_memory(process)
    copied = pq.read_table(target)
    assert copied.schema == table.schema
    assert copied.equals(table)


_STAMPS = [dt.datetime(2024, 1, 1, 12, 30, i) for i in range(5)]
_WITH_GAPS = [_STAMPS[0], None, *_STAMPS[2:4], None]
# In chunks of two rows, each column's first and last chunk have a missing value and the
# middle one has none: the values of every chunk must carry the column's type.
TYPED_COLUMNS = {
    "int32": pa.array([1, None, 3, 4, None], pa.int32()),
    "float32": pa.array([0.5, None, 2.5, 3.5, None], pa.float32()),
    "ts_ns": pa.array(_WITH_GAPS, pa.timestamp("ns")),
    "ts_ns_utc": pa.array(_WITH_GAPS, pa.timestamp("ns", tz="UTC")),
    "decimal": pa.array(
        [Decimal("1.25"), None, Decimal("12345678.99"), Decimal("0.01"), None],
        pa.decimal128(10, 2),
    ),
    "large_string": pa.array(["a", None, "c", "d", None], pa.large_string()),
    "dictionary": pa.array(["a", None, "b", "a", None]).dictionary_encode(),
    "list": pa.array([[1, 2], None, [3], [], None], pa.list_(pa.int32())),
    "struct": pa.array(
        [{"a": 1, "b": "x"}, None, {"a": 3, "b": None}, {"a": 4, "b": "y"}, None],
        pa.struct([("a", pa.int16()), ("b", pa.large_string())]),
    ),
    "map": pa.array([[("k", 1)], None, [("j", 2)], [], None], pa.map_(pa.string(), pa.int32())),
}


@pytest.mark.parametrize("chunk_size", [None, 2])
@pytest.mark.parametrize("column", list(TYPED_COLUMNS))
async def test_a_parquet_round_trip_keeps_a_nullable_column_type(
    tmp_path: Path, column: str, chunk_size: int | None
) -> None:
    table = pa.table({column: TYPED_COLUMNS[column]})
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, source)
    process = _copy_model(source, target, chunk_size, [column])
    await run_in_memory(process)
    copied = pq.read_table(target)
    # as read from the source file: Parquet names a list's items "element", as pyarrow reads
    assert copied.schema == pq.read_schema(source)
    # by value: a dictionary column's chunks have dictionaries of their own
    assert copied.to_pylist() == table.to_pylist()


@pytest.mark.parametrize("fmt", [".parquet", ".csv", ".csv.gz"])
async def test_a_column_whose_first_chunk_is_all_missing_is_typed_by_a_later_chunk(
    tmp_path: Path, fmt: str
) -> None:
    table = pa.table({"a": pa.array([None, None, 1, 2], pa.int64()), "b": [1, 2, 3, 4]})
    source, target = str(tmp_path / f"in{fmt}"), str(tmp_path / f"out{fmt}")
    _write(table, source)
    fields = ["a", "b"]
    process = _copy_model(source, target, 2, fields)
    await run_in_memory(process)
    copied = _read(target)
    assert copied.equals(table)
    if fmt == ".parquet":
        assert pq.ParquetFile(target).num_row_groups == 2  # held back, then written as chunks


@pytest.mark.parametrize("fmt", [".csv", ".parquet"])
async def test_an_output_not_yet_set_does_not_fix_a_column_s_type(tmp_path: Path, fmt: str) -> None:
    # A model's first row can be written before its output is set (None), as a chunk of its
    # own: a CSV file flushes every second.
    target = tmp_path / f"out{fmt}"
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[None, 1, 2]),
            FileWriter(name="save", path=target, field_names=["x"], chunk_size=1),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    await run_in_memory(process)
    if fmt == ".csv":  # a missing value in a file of one column is an empty line
        keep_empty_lines = pa_csv.ParseOptions(ignore_empty_lines=False)
        copied = pa_csv.read_csv(target, parse_options=keep_empty_lines)
    else:
        copied = pq.read_table(target)
    assert copied.column("x").to_pylist() == [None, 1, 2]
    assert copied.schema.field("x").type == pa.int64()


async def test_a_parquet_column_that_never_has_a_value_is_written_at_the_end(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.parquet"
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[None, None, None]),
            FileWriter(name="save", path=target, field_names=["x"], chunk_size=1),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    await run_in_memory(process)
    copied = pq.read_table(target)
    assert copied.column("x").to_pylist() == [None, None, None]
    assert copied.schema.field("x").type == pa.null()


async def test_typed_values_behave_as_python_values_and_pickle_with_their_type(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table(TYPED_COLUMNS), source)
    reader = FileReader(name="read", path=source, field_names=list(TYPED_COLUMNS))
    await reader.init()
    await reader.step()
    await reader.destroy()
    assert reader.decimal == Decimal("1.25") and isinstance(reader.decimal, Decimal)
    assert reader.large_string == "a" and reader.large_string + "!" == "a!"
    assert reader.dictionary == "a" and {"a": 1}[reader.dictionary] == 1
    assert reader.ts_ns_utc == _STAMPS[0].replace(tzinfo=dt.UTC)
    assert reader.list == [1, 2] and isinstance(reader.list, list)
    assert reader.struct == {"a": 1, "b": "x"} and reader.struct["a"] == 1
    assert reader.map == [("k", 1)]
    for field in ("decimal", "large_string", "dictionary", "ts_ns_utc", "list", "struct", "map"):
        value = getattr(reader, field)
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value and copy.__arrow_type__ == TYPED_COLUMNS[field].type


async def test_a_value_that_cannot_take_its_column_type_is_named(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    process = LocalProcess(
        components=[
            # one nanosecond cannot be written to a column in microseconds
            ListSource(name="src", items=[np.datetime64(1, "ns")]),
            FileWriter(name="save", path=target, field_names=["t"], schema={"t": "timestamp[us]"}),
        ],
        connectors=connect("src.x -> save.t"),
    )
    text = await _failure(process)
    assert "FileWriter 'save'" in text and str(target) in text and "column 't'" in text


async def test_a_csv_file_names_its_columns_even_without_rows(tmp_path: Path) -> None:
    target = tmp_path / "empty.csv"
    process = LocalProcess(
        components=[
            ListSource(name="a", items=[]),
            ListSource(name="b", items=[]),
            FileWriter(name="save", path=target, field_names=["time", "value"]),
        ],
        connectors=connect("a.x -> save.time", "b.x -> save.value"),
    )
    await run_in_memory(process)
    with target.open() as f:
        assert list(csv.reader(f)) == [["time", "value"]]


async def test_a_csv_is_read_with_a_type_per_column(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("n,ratio,label,unused\n1,0.5,one,x\n2,,,y\n3,2,three,z\n")
    sink = Collector(name="sink", fields=["n", "ratio", "label"])
    process = LocalProcess(
        components=[
            FileReader(name="read", path=source, field_names=["n", "ratio", "label"]),
            sink,
        ],
        connectors=wire("read", "sink", ["n", "ratio", "label"]),
    )
    await run_in_memory(process)
    assert sink.received == [(1, 0.5, "one"), (2, None, None), (3, 2.0, "three")]
    assert [type(v) for v in sink.received[0]] == [int, float, str]


async def test_parse_numbers_false_reads_text(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("n,label\n1,one\n2,two\n")
    sink = Collector(name="sink", fields=["n"])
    process = LocalProcess(
        components=[
            FileReader(name="read", path=source, field_names=["n"], parse_numbers=False),
            sink,
        ],
        connectors=wire("read", "sink", ["n"]),
    )
    await run_in_memory(process)
    assert sink.received == ["1", "2"]


async def test_the_writer_takes_column_types_from_schema(tmp_path: Path) -> None:
    target = tmp_path / "typed.parquet"
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[1, 2, 3]),
            FileWriter(
                name="save", path=target, field_names=["x"], schema={"x": "int16"}, chunk_size=2
            ),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    await run_in_memory(process)
    assert pq.read_table(target).schema.field("x").type == pa.int16()


@pytest.mark.parametrize("chunk_size", [None, 2])
async def test_file_reader_stepped_past_its_end_raises_like_plugboard(
    tmp_path: Path, chunk_size: int | None
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(TABLE, source)
    reader = FileReader(name="read", path=source, field_names=["x", "z"], chunk_size=chunk_size)
    await reader.init()
    for row in TABLE.to_pylist():
        await reader.step()
        assert (reader.x, reader.z) == (row["x"], row["z"])
    with pytest.raises(IOStreamClosedError):
        await reader.step()
    await reader.destroy()


async def test_an_open_reader_pickles_without_its_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    _write(TABLE, str(source))
    reader = FileReader(name="read", path=source, field_names=["x"], chunk_size=2)
    await reader.init()
    try:
        copy = pickle.loads(pickle.dumps(reader))
    finally:
        await reader.destroy()
    assert copy._file is None and copy._thread is None
    await copy.init()
    await copy.step()
    assert copy.x == 1
    await copy.destroy()


def test_relative_paths_are_resolved_where_the_component_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    writer = FileWriter(name="w", path="ray.csv", field_names=["t"])
    assert writer._location == str(tmp_path / "ray.csv")
    assert writer.export()["args"]["path"] == "ray.csv"
    assert FileReader(name="r", path="memory://x/in.csv", field_names=["t"])._location == (
        "memory://x/in.csv"
    )


@pytest.mark.parametrize("cls", [FileReader, FileWriter])
def test_an_unknown_format_is_refused_when_the_component_is_built(cls: type) -> None:
    with pytest.raises(ValidationError) as info:
        cls(name="io", path="data/table.xlsx", field_names=["x"])
    assert f"{cls.__name__} 'io'" in str(info.value)
    assert "table.xlsx" in str(info.value) and ".parquet" in str(info.value)


async def _failure(process: LocalProcess) -> str:
    with pytest.raises(PlugboardError) as info:
        await run_in_memory(process)
    return error_text(info.value)


@pytest.mark.parametrize(
    "path", ["missing.csv", "memory://plugboard-tests/missing.parquet"], ids=["local", "memory"]
)
async def test_a_missing_file_fails_naming_the_component_and_the_path(
    tmp_path: Path, path: str
) -> None:
    url = path if "://" in path else str(tmp_path / path)
    process = LocalProcess(
        components=[FileReader(name="read", path=url, field_names=["x"]), Collector(name="s")],
        connectors=connect("read.x -> s.x"),
    )
    text = await _failure(process)
    assert "FileReader 'read'" in text and url in text and "no file" in text


async def test_missing_columns_are_named(tmp_path: Path) -> None:
    for fmt in (".csv", ".parquet"):
        source = tmp_path / f"in{fmt}"
        _write(TABLE, str(source))
        process = LocalProcess(
            components=[
                FileReader(name="read", path=source, field_names=["x", "w"]),
                Collector(name="s", fields=["x", "w"]),
            ],
            connectors=wire("read", "s", ["x", "w"]),
        )
        text = await _failure(process)
        assert "FileReader 'read'" in text and str(source) in text
        assert "no column(s) ['w']" in text and "['x', 'y', 'z']" in text


async def test_values_of_mixed_types_fail_naming_the_column(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    process = LocalProcess(
        components=[
            ListSource(name="src", items=[1, "two"]),
            FileWriter(name="save", path=target, field_names=["x"]),
        ],
        connectors=wire("src", "save", ["x"]),
    )
    text = await _failure(process)
    assert "FileWriter 'save'" in text and str(target) in text and "column 'x'" in text


def test_a_parquet_writer_makes_no_early_row_groups_unless_asked() -> None:
    assert FileWriter(name="w", path="out.parquet", field_names=["x"])._flush_interval is None
    assert FileWriter(name="w", path="out.csv", field_names=["x"])._flush_interval == 1.0
    asked = FileWriter(name="w", path="out.parquet", field_names=["x"], flush_interval=5)
    assert asked._flush_interval == 5


@pytest.mark.parametrize(
    ("protocol", "package", "extra"), [("gs", "gcsfs", "gcs"), ("az", "adlfs", "azure")]
)
@pytest.mark.parametrize("cls", [FileReader, FileWriter])
async def test_a_cloud_url_without_its_extra_names_the_extra_to_install(
    cls: type, protocol: str, package: str, extra: str
) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed: {protocol}:// URLs open")
    url = f"{protocol}://bucket/table.parquet"
    component = cls(name="io", path=url, field_names=["x"])
    with pytest.raises(DataIOError) as info:
        await component.init()
    await component.destroy()
    text = str(info.value)
    assert f"{cls.__name__} 'io'" in text and url in text
    assert f"pip install 'prefect-plugboard[{extra}]'" in text


async def test_a_file_url_is_read_and_written(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out" / "copy.parquet"
    _write(TABLE, str(source))
    await run_in_memory(_copy_model(f"file://{source}", f"file://{target}", chunk_size=2))
    assert pq.read_table(target).equals(TABLE)


async def test_storage_options_go_to_the_filesystem(tmp_path: Path) -> None:
    # fsspec's `dir://` filesystem finds its files only in the folder its options name
    folder = {"path": str(tmp_path), "target_protocol": "file"}
    _write(TABLE, str(tmp_path / "in.csv"))
    process = LocalProcess(
        components=[
            FileReader(
                name="read",
                path="dir://in.csv",
                field_names=["x", "y", "z"],
                storage_options=folder,
            ),
            FileWriter(
                name="save",
                path="dir://out.csv.gz",
                field_names=["x", "y", "z"],
                storage_options=folder,
            ),
        ],
        connectors=wire("read", "save", ["x", "y", "z"]),
    )
    await run_in_memory(process)
    assert _read(str(tmp_path / "out.csv.gz")).equals(TABLE)


@pytest.mark.parametrize("fmt", [".parquet", ".csv"])
async def test_a_failure_mid_run_keeps_every_row_the_writer_received(
    tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / f"out{fmt}"
    writer = FileWriter(name="save", path=target, field_names=["y"], chunk_size=4)
    received = await run_failing_midway(writer)
    assert received >= 5  # a full chunk, and rows still buffered when the run failed
    assert _read(str(target)).column("y").to_pylist() == list(range(received))


_PLAIN_VALUES = {
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(allow_nan=False),
    "str": st.text(),
    "ascii": st.text(st.characters(max_codepoint=127)),
    "bool": st.booleans(),
    "datetime": st.datetimes(),
    "date": st.dates(),
}


_PLAIN_COLUMNS = st.sampled_from(sorted(_PLAIN_VALUES)).flatmap(
    lambda kind: st.lists(st.none() | _PLAIN_VALUES[kind], max_size=20)
)


@settings(max_examples=150, deadline=None)
@given(values=_PLAIN_COLUMNS)
@example(values=["a", "bcd", None, "ef"])  # ASCII: encoded at once
@example(values=["é", "bc", None, "déf"])  # not ASCII: each string encoded
@example(values=[1, None, -(2**63)])
@example(values=[True, None, False])
def test_a_column_of_plain_values_is_the_array_pyarrow_infers(values: list[_t.Any]) -> None:
    """Plain columns are built from their buffers (no pandas): the same array as `pa.array`,
    with or without missing values, and with their type wanted by an earlier chunk."""
    expected = pa.array(values)
    built = table_from_columns({"x": values}).column("x").combine_chunks()
    built.validate(full=True)
    assert built.type == expected.type
    assert built.to_pylist() == expected.to_pylist()
    if pa.types.is_null(expected.type):
        return
    again = table_from_columns({"x": values}, pa.schema([("x", expected.type)])).column("x")
    assert again.combine_chunks().equals(expected)


def test_plain_values_that_arrow_refuses_fail_naming_their_column() -> None:
    with pytest.raises(ColumnTypeError, match="'big'.*int"):
        table_from_columns({"big": [2**64, None]})
    with pytest.raises(ColumnTypeError, match="'mixed'"):
        table_from_columns({"mixed": [1, "a"]})


def test_a_chunk_of_missing_values_takes_the_type_written_before() -> None:
    schema = pa.schema([("x", pa.int64())])
    assert table_from_columns({"x": [None, None]}, schema).column("x").type == pa.int64()


@pytest.mark.slow  # a fresh interpreter
def test_a_writer_of_plain_values_leaves_pandas_unloaded(tmp_path: Path) -> None:
    """pyarrow imports pandas (about 48 MiB) for `pa.array` of Python values; a component that
    writes plain values does without, in the seed's Ray worker as anywhere."""
    code = (
        "import asyncio, datetime, sys\n"
        "from prefect_plugboard.library._columns import table_from_columns\n"
        "now = datetime.datetime.now()\n"
        "plain = [1, 0.5, 'é', True, now, now.date()]\n"
        "table_from_columns({str(i): [v, None] for i, v in enumerate(plain)})\n"
        "from prefect_plugboard import AsyncioConnector, ConnectorSpec, FileWriter, LocalProcess\n"
        "from prefect_plugboard.testing import ListSource, run_in_memory\n"
        "stamps = [datetime.datetime.now().isoformat() for _ in range(5)]\n"
        "process = LocalProcess(\n"
        "    components=[\n"
        "        ListSource(name='src', items=stamps, field='t'),\n"
        "        FileWriter(name='save', path='out.csv', field_names=['t']),\n"
        "    ],\n"
        "    connectors=[AsyncioConnector(spec=ConnectorSpec(source='src.t', target='save.t'))],\n"
        ")\n"
        "asyncio.run(run_in_memory(process))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 6
