"""`FileReader` and `FileWriter`: CSV, CSV.GZ and Parquet files, local or at any fsspec URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import os
import typing as _t

from prefect_plugboard.exceptions import DataIOError, NoMoreDataException, ValidationError
from prefect_plugboard.library._columns import (
    ColumnTypeError,
    parse_schema,
    python_columns,
    table_from_columns,
)
from prefect_plugboard.library._common import IOThread, check_columns, label, lazy_module
from prefect_plugboard.library._files import file_format, filesystem, resolve_location
from prefect_plugboard.library.credentials import storage
from prefect_plugboard.library.data_reader import DataReader, DataReaderArgsDict
from prefect_plugboard.library.data_writer import DataWriter, DataWriterArgsDict


if _t.TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import pyarrow.types as pat
else:  # loaded where a file is read or written, not where the component is built
    pa = lazy_module("pyarrow")
    pa_csv = lazy_module("pyarrow.csv")
    pq = lazy_module("pyarrow.parquet")
    pat = lazy_module("pyarrow.types")


__all__ = ["FileReader", "FileWriter"]

CSV_BLOCK_SIZE = 4 << 20
"""Bytes of CSV read at a time when chunked; column types are inferred from the first block."""
PARQUET_BATCH_ROWS = 65_536


def _locate(
    component: DataReader | DataWriter, path: str | os.PathLike[str], storage_options: _t.Any
) -> tuple[dict[str, _t.Any], str, str]:
    """Where a file component's file is: fsspec's options, the file's URL, and its format.

    Raises:
        ValidationError: The storage options or the format cannot be made out.
    """
    located = storage(storage_options, needed_by=label(component))
    location = resolve_location(path, located.root)
    subject = f"component {component.name!r}"
    return (
        located.options,
        location,
        file_format(location, needed_by=label(component), subject=subject),
    )


class FileReader(DataReader):
    """Emits the rows of a CSV, CSV.GZ or Parquet file, one row per step.

    Its outputs are `field_names`, read from the columns of the same names. The file is read
    with pyarrow through fsspec: a local path, or any fsspec URL (`file://`, `memory://`,
    `s3://`, `gs://`, `az://`, ...; the cloud ones need `prefect-plugboard[s3]`, `[gcs]` or
    `[azure]`). Values are plain Python objects (`int`, `float`, `str`, `bool`, `datetime`,
    `None` for a missing value); columns of types Python has no type for (int32, float32,
    timestamp[ns], ...) give NumPy scalars of that type, and decimals, large strings,
    dictionary-encoded and zoned ns columns, lists, structs and maps (...) Python values
    (`Decimal`, `str`, `list`, `dict`, ...) that carry their Arrow type (see
    `prefect_plugboard.library._columns`), so a `FileWriter` writes them back with the same
    type, with or without missing values. A column whose values are all missing cannot
    carry its type.

    Args:
        path: The file. A relative local path is relative to the working directory where the
            component is built; with an `S3Bucket` block, relative to its bucket and folder.
        storage_options: fsspec options for the filesystem (credentials, endpoint), or a
            Prefect block giving them (see `prefect_plugboard.library.credentials`).
        parse_numbers: CSV only: `False` reads every column as text.
        **kwargs: `field_names`, `chunk_size` (rows per read; `None` reads the whole file at
            once) and the other `ComponentArgsDict` arguments.

    Raises:
        ValidationError: The file name does not end in `.csv`, `.csv.gz` or `.parquet`.
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = ("_thread", "_file", "_batches", "_pending")

    def __init__(
        self,
        path: str | os.PathLike[str],
        storage_options: Mapping[str, _t.Any] | str | _t.Any | None = None,
        parse_numbers: bool = True,
        **kwargs: _t.Unpack[DataReaderArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._storage_options, self._location, self._format = _locate(self, path, storage_options)
        self._parse_numbers = parse_numbers
        self._thread: IOThread | None = None
        self._file: _t.Any = None
        self._batches: _t.Iterator[pa.RecordBatch] | None = None
        self._pending: list[pa.Table] | None = None

    async def init(self) -> None:
        """Opens the file, checks its columns and reads the first chunk.

        Raises:
            DataIOError: The file does not exist, cannot be read, or lacks a column.
        """
        self._thread = IOThread(self.name)
        await self._thread.run(self._open)
        await super().init()

    async def destroy(self) -> None:
        """Closes the file."""
        await super().destroy()
        thread, self._thread = self._thread, None
        if thread is not None:
            await thread.close()
        file, self._file = self._file, None
        self._batches = self._pending = None
        if file is not None:
            file.close()

    async def _fetch(self) -> pa.Table:
        return await _t.cast(IOThread, self._thread).run(self._read_chunk)

    async def _convert(self, data: pa.Table) -> dict[str, list[_t.Any]]:
        return await _t.cast(IOThread, self._thread).run(python_columns, data, self._field_names)

    def _open(self) -> None:
        fs, path = filesystem(self._location, self._storage_options, needed_by=label(self))
        try:
            self._file = fs.open(path, "rb")
        except FileNotFoundError:
            msg = f"{label(self)}: there is no file at {self._location}"
            raise DataIOError(msg) from None
        except Exception as exc:
            msg = f"{label(self)}: cannot open {self._location}: {type(exc).__name__}: {exc}"
            raise DataIOError(msg) from exc
        try:
            if self._format == "parquet":
                self._open_parquet()
            else:
                self._open_csv()
        except DataIOError:
            raise
        except Exception as exc:
            msg = f"{label(self)}: cannot read {self._location}: {type(exc).__name__}: {exc}"
            raise DataIOError(msg) from exc

    def _check_columns(self, available: Sequence[str]) -> None:
        check_columns(self, self._field_names, available, self._location)

    def _open_parquet(self) -> None:
        parquet = pq.ParquetFile(self._file)
        self._check_columns(parquet.schema_arrow.names)
        if self._chunk_size is None:
            self._pending = [parquet.read(columns=self._field_names)]
        else:
            self._batches = parquet.iter_batches(
                batch_size=min(self._chunk_size, PARQUET_BATCH_ROWS), columns=self._field_names
            )
            self._pending = []

    def _csv_stream(self) -> _t.Any:
        self._file.seek(0)
        if self._format == "csv.gz":
            return pa.CompressedInputStream(self._file, "gzip")
        return self._file

    def _open_csv(self) -> None:
        types = None if self._parse_numbers else dict.fromkeys(self._field_names, pa.string())
        convert = pa_csv.ConvertOptions(
            include_columns=self._field_names,
            column_types=types,
            strings_can_be_null=True,  # an empty cell is a missing value, as in pandas
            quoted_strings_can_be_null=False,  # `""` is an empty string
        )
        try:
            if self._chunk_size is None:
                # The whole file at once: column types are inferred from all of it.
                self._pending = [pa_csv.read_csv(self._csv_stream(), convert_options=convert)]
            else:
                read = pa_csv.ReadOptions(block_size=CSV_BLOCK_SIZE)
                reader = pa_csv.open_csv(
                    self._csv_stream(), read_options=read, convert_options=convert
                )
                self._batches = iter(reader)
                self._pending = []
        except pa.ArrowKeyError:
            header = pa_csv.open_csv(
                self._csv_stream(), read_options=pa_csv.ReadOptions(block_size=1 << 16)
            )
            self._check_columns(header.schema.names)
            raise

    def _read_chunk(self) -> pa.Table:
        """The next `chunk_size` rows (all of them without a chunk size)."""
        pending = self._pending
        if pending is None:
            raise NoMoreDataException
        if self._batches is None:  # one table holds the whole file
            self._pending = None
            if not pending:
                raise NoMoreDataException
            return pending[0]
        wanted = _t.cast(int, self._chunk_size)
        rows = sum(t.num_rows for t in pending)
        try:
            while rows < wanted:
                batch = next(self._batches, None)
                if batch is None:
                    break
                pending.append(pa.Table.from_batches([batch]))
                rows += batch.num_rows
        except pa.ArrowInvalid as exc:
            msg = (
                f"{label(self)}: cannot read {self._location} after row "
                f"{self._rows_emitted + self._length}: {exc}. Column types are inferred from "
                f"the first {CSV_BLOCK_SIZE >> 20} MiB of a CSV read in chunks; give "
                "chunk_size=None to infer them from the whole file"
            )
            raise DataIOError(msg) from None
        if not rows:
            self._pending = None
            raise NoMoreDataException
        table = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
        self._pending = [table.slice(wanted)] if table.num_rows > wanted else []
        return table.slice(0, wanted)


class FileWriter(DataWriter):
    """Writes the rows it receives to a CSV, CSV.GZ or Parquet file, with its column names.

    The file (local, or at any fsspec URL, as for `FileReader`) is created, or truncated, by
    `init()`, and written with pyarrow a chunk at a time (a Parquet row group per chunk). A
    CSV file gets buffered rows every `flush_interval` seconds; a Parquet file, readable only
    once the writer ends, gets full chunks and the rest at the end (unless `flush_interval`
    is given). Column types are given by `schema`, or taken from the first value of each
    column that is not `None`: a NumPy scalar or a value from a `FileReader` that carries its
    Arrow type gives that type; otherwise they are inferred from the values (Python `int` ->
    int64, `float` -> double, `str` -> string, `datetime` -> timestamp). Later chunks take the
    types of the first, except in a column that has had only missing values so far, which
    takes the type of its first chunk with a value. A Parquet file's types are fixed by its
    first row group, so its chunks are held back until every column has had a value (or
    the writer ends, where a column without any value has Arrow's `null` type). The columns
    are `field_names`, in order.

    Args:
        path: The file to write; parent folders of a local file are created.
        storage_options: fsspec options, or a Prefect block giving them (as for `FileReader`).
        schema: Arrow types for some columns, e.g. `{"x": "int32", "t": "timestamp[ns]"}`.
        **kwargs: `field_names`, `chunk_size` (rows per write), `flush_interval` and the other
            `ComponentArgsDict` arguments (see `DataWriter`).

    Raises:
        ValidationError: The file name does not end in `.csv`, `.csv.gz` or `.parquet`, or
            `schema` names an unknown type.
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = (
        "_thread",
        "_file",
        "_sink",
        "_writer",
        "_held",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        storage_options: Mapping[str, _t.Any] | str | _t.Any | None = None,
        schema: Mapping[str, str] | None = None,
        **kwargs: _t.Unpack[DataWriterArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._storage_options, self._location, self._format = _locate(self, path, storage_options)
        if self._format == "parquet" and "flush_interval" not in kwargs:
            # A Parquet file can be read only once it is closed: writing early would only
            # make small row groups.
            self._flush_interval = None
        try:
            self._types = parse_schema(schema)
        except ValueError as exc:
            msg = f"{label(self)}: schema {exc}"
            raise ValidationError([msg], subject=f"component {self.name!r}") from None
        self._thread: IOThread | None = None
        self._file: _t.Any = None
        self._sink: _t.Any = None
        self._writer: pa_csv.CSVWriter | pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        """The columns' types so far; `null` for a column that has had no value yet."""
        self._writer_schema: pa.Schema | None = None
        self._held: list[pa.Table] = []

    async def init(self) -> None:
        """Creates (or truncates) the file.

        Raises:
            DataIOError: The file cannot be created.
        """
        self._thread = IOThread(self.name)
        self._schema = self._writer_schema = None
        self._held = []
        await self._thread.run(self._open)

    async def destroy(self) -> None:
        """Writes the rows still buffered and closes the file."""
        try:
            await super().destroy()
        finally:
            thread, self._thread = self._thread, None
            if thread is not None:
                try:
                    await thread.run(self._close)
                finally:
                    await thread.close()

    async def _convert(self, data: dict[str, list[_t.Any]]) -> pa.Table:
        return await _t.cast(IOThread, self._thread).run(self._table, data)

    async def _save(self, data: pa.Table) -> None:
        await _t.cast(IOThread, self._thread).run(self._write_table, data)

    def _open(self) -> None:
        fs, path = filesystem(self._location, self._storage_options, needed_by=label(self))
        try:
            if "file" in _t.cast(tuple[str, ...], fs.protocol):
                fs.makedirs(fs._parent(path), exist_ok=True)
            self._file = fs.open(path, "wb")
        except Exception as exc:
            msg = f"{label(self)}: cannot create {self._location}: {type(exc).__name__}: {exc}"
            raise DataIOError(msg) from exc
        self._sink = (
            pa.CompressedOutputStream(self._file, "gzip") if self._format == "csv.gz" else None
        )

    def _table(self, data: dict[str, list[_t.Any]]) -> pa.Table:
        try:
            return table_from_columns(data, self._schema, self._types)
        except ColumnTypeError as exc:
            msg = f"{label(self)}: cannot write to {self._location}: {exc}"
            raise DataIOError(msg) from None

    def _write_table(self, table: pa.Table, *, last: bool = False) -> None:
        """Writes `table`, or holds it back while a Parquet file's types are not all known.

        A column that has had only missing values has Arrow's `null` type and takes the type of
        its first chunk with a value. A CSV file, which keeps no types, gets every chunk at
        once; a Parquet file's schema is fixed by its first row group, so its chunks wait until
        every column has a type, or until the end (`last`), where `null` is the type.
        """
        schema = table.schema
        if self._schema is not None:
            schema = _with_new_types(self._schema, schema)
        self._schema = schema
        self._held.append(table)
        if self._format == "parquet" and not last and any(_untyped(t) for t in schema.types):
            return
        held, self._held = self._held, []
        if self._writer is None or self._writer_schema != schema:
            self._start(schema)
        for chunk in held:
            self._write_chunk(chunk, schema)
        if self._sink is None:
            self._file.flush()

    def _write_chunk(self, table: pa.Table, schema: pa.Schema) -> None:
        if table.schema != schema:
            try:
                table = table.cast(schema)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                msg = (
                    f"{label(self)}: rows do not fit the columns already written to "
                    f"{self._location} ({schema}): {exc}; give the types with `schema=`"
                )
                raise DataIOError(msg) from None
        try:
            _t.cast(_t.Any, self._writer).write_table(table)
        except pa.ArrowException as exc:
            msg = f"{label(self)}: cannot write to {self._location}: {type(exc).__name__}: {exc}"
            raise DataIOError(msg) from None

    def _start(self, schema: pa.Schema) -> None:
        """Starts the file, or goes on without a header in a CSV file whose column got a type."""
        sink = self._sink if self._sink is not None else self._file
        first = self._writer is None
        if not first:  # CSV only; closing a CSV writer leaves its sink open
            _t.cast(_t.Any, self._writer).close()
        self._writer_schema = schema
        if self._format == "parquet":
            self._writer = pq.ParquetWriter(sink, schema)
        else:
            options = pa_csv.WriteOptions(include_header=first)
            self._writer = pa_csv.CSVWriter(sink, schema, write_options=options)

    def _close(self) -> None:
        if self._file is None:
            return
        try:
            if self._held:  # a Parquet file with a column that never had a value
                self._write_table(self._held.pop(), last=True)
            if self._writer is None:  # no row came: the columns alone
                empty: dict[str, list[_t.Any]] = {f: [] for f in self._field_names}
                types = {f: self._types.get(f, pa.string()) for f in self._field_names}
                self._write_table(table_from_columns(empty, None, types), last=True)
            _t.cast(_t.Any, self._writer).close()
            if self._sink is not None:
                self._sink.close()
        finally:
            self._file.close()
            self._file = self._sink = self._writer = None
            self._held = []


def _untyped(kind: pa.DataType) -> bool:
    """Whether `kind` is, or holds, Arrow's `null` type: the type of values all missing."""
    if pat.is_null(kind):
        return True
    return any(_untyped(kind.field(i).type) for i in range(kind.num_fields))


def _with_new_types(known: pa.Schema, new: pa.Schema) -> pa.Schema:
    """`known`, where a column not typed yet takes its type from `new`."""
    fields = [new.field(i) if _untyped(field.type) else field for i, field in enumerate(known)]
    return pa.schema(fields)
