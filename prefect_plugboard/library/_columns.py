"""Arrow tables to Python values and back, keeping column types across a round trip.

Values leave a reader as plain Python objects (`int`, `float`, `str`, `bool`, `datetime`,
`date`, `Decimal`, `bytes`, `None`) where the Python type stands for the column's type, which
a writer turns back into int64, double, string, bool, timestamp[us] (with its time zone),
date32, decimal and binary columns. The other columns' values carry their Arrow type, whether
or not the column has missing values (`None`), so that a writer gives every chunk the type
the reader read:

- int8/16/32, unsigned, float16/32 and timestamps in s, ms or ns without a time zone leave as
  NumPy scalars of that type;
- decimals, large strings and binaries, dictionary-encoded columns, zoned timestamps in
  s/ms/ns, dates as date64, times or durations in other units than microseconds, and nested
  columns (lists, structs, maps) leave as instances of a subclass of the Python type (`str`,
  `Decimal`, `datetime`, `list`, `dict`, ...) whose `__arrow_type__` is the column's type.
  They behave as the Python values they are; Python keeps microseconds, so a zoned timestamp
  in ns loses what is below the microsecond. The values inside a list or a dict are plain.

What no value can carry is the type of a column whose values are all missing (a writer gives
it the type of the first value it receives, or Arrow's `null`), and the type of a dictionary
of `bool` (a `bool` is written as `bool`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import datetime as _dt
import decimal
import itertools
import operator
import typing as _t

from prefect_plugboard.library._common import lazy_module


if _t.TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pat
else:
    np = lazy_module("numpy")
    pa = lazy_module("pyarrow")
    pc = lazy_module("pyarrow.compute")
    pat = lazy_module("pyarrow.types")


__all__ = [
    "ColumnTypeError",
    "arrow_type_of",
    "parse_schema",
    "plain_values",
    "python_columns",
    "table_from_columns",
]

_NARROW_NUMBERS = (
    "is_int8",
    "is_int16",
    "is_int32",
    "is_uint8",
    "is_uint16",
    "is_uint32",
    "is_uint64",
    "is_float16",
    "is_float32",
)
"""The Arrow type checks (in `pyarrow.types`) of the types that leave as NumPy scalars."""

_TYPED_BASES: tuple[type, ...] = (
    str,
    bytes,
    decimal.Decimal,
    int,
    float,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    list,
    dict,
)
"""Python types whose values can carry an Arrow type (`bool` cannot be subclassed)."""

_typed_classes: dict[tuple[type, _t.Any], type] = {}


def _rebuilt(cls: _t.Any, value: _t.Any) -> _t.Any:
    """`value` as an instance of `cls`, a Python type of `_TYPED_BASES` or a subclass of one."""
    if issubclass(cls, _dt.datetime):
        return cls.combine(value.date(), value.timetz())
    if issubclass(cls, _dt.date):
        return cls(value.year, value.month, value.day)
    if issubclass(cls, _dt.time):
        return cls(
            value.hour, value.minute, value.second, value.microsecond, value.tzinfo, fold=value.fold
        )
    if issubclass(cls, _dt.timedelta):
        return cls(value.days, value.seconds, value.microseconds)
    return cls(value)


def _base_of(value: _t.Any) -> type:
    return next(b for b in type(value).__mro__ if b in _TYPED_BASES)


def _reduce_typed(value: _t.Any, protocol: int = 2) -> tuple[_t.Any, ...]:
    base = _base_of(value)
    return (typed_value, (type(value).__arrow_type__, base, _rebuilt(base, value)))


def _typed_class(base: type, kind: pa.DataType) -> type:
    key = (base, kind)
    cls = _typed_classes.get(key)
    if cls is None:
        namespace = {
            "__slots__": (),
            "__arrow_type__": kind,
            "__reduce__": _reduce_typed,
            "__reduce_ex__": _reduce_typed,
            "__module__": __name__,
            "__doc__": f"A `{base.__name__}` from an Arrow column of type {kind}.",
        }
        cls = _typed_classes[key] = type(base.__name__, (base,), namespace)
    return cls


def typed_value(kind: pa.DataType, base: type, value: _t.Any) -> _t.Any:
    """`value` (an instance of `base`) as an instance of `base` that carries `kind`.

    Also what a pickled typed value is rebuilt with, on a Ray worker, say.
    """
    return _rebuilt(_typed_class(base, kind), value)


def arrow_type_of(values: Sequence[_t.Any]) -> pa.DataType | None:
    """The Arrow type the first value that is not `None` carries, if it carries one."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return None
    carried = getattr(type(first), "__arrow_type__", None)
    if carried is not None:
        return _t.cast("pa.DataType", carried)
    if isinstance(first, np.generic) and not isinstance(first, np.object_ | np.str_):
        try:
            return pa.from_numpy_dtype(first.dtype)
        except (pa.ArrowException, TypeError):
            return None
    return None


def plain_values(values: list[_t.Any]) -> list[_t.Any]:
    """The values as plain Python values (`int`, `str`, `datetime`, ...), e.g. for a driver.

    NumPy scalars and values that carry an Arrow type (see the module doc) become the Python
    values they stand for; a NumPy timestamp becomes a `datetime` (to the microsecond).
    """
    first = next((v for v in values if v is not None), None)
    if first is None:
        return values
    if getattr(type(first), "__arrow_type__", None) is not None:
        base = _base_of(first)
        return [v if v is None else _rebuilt(base, v) for v in values]
    if type(first).__module__ != "numpy":
        return values
    return [_plain_numpy(v) for v in values]


def _plain_numpy(value: _t.Any) -> _t.Any:
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[us]").item()
    if isinstance(value, np.timedelta64):
        return value.astype("timedelta64[us]").item()
    return value.item() if hasattr(value, "item") else value


def _keeps_type_as_numpy(kind: pa.DataType) -> bool:
    if any(getattr(pat, check)(kind) for check in _NARROW_NUMBERS):
        return True
    return pat.is_timestamp(kind) and kind.unit != "us" and kind.tz is None


def _is_python_type(kind: pa.DataType) -> bool:
    """Whether the Python values of a column of `kind` are inferred back as `kind`."""
    if kind in (pa.int64(), pa.float64(), pa.string(), pa.binary(), pa.bool_(), pa.date32()):
        return True
    if pat.is_null(kind):
        return True
    if pat.is_timestamp(kind) or pat.is_time64(kind) or pat.is_duration(kind):
        return bool(kind.unit == "us")
    return False


def _numpy_values(column: pa.ChunkedArray | pa.Array) -> list[_t.Any]:
    """NumPy scalars of the column's type, `None` where a value is missing."""
    if not column.null_count:
        return list(column.to_numpy())
    values: list[_t.Any] = list(column.fill_null(pa.scalar(0, column.type)).to_numpy())
    missing = pc.is_null(column)
    if isinstance(missing, pa.ChunkedArray):
        missing = missing.combine_chunks()
    for index in np.flatnonzero(missing.to_numpy(zero_copy_only=False)):
        values[index] = None
    return values


def _values(column: pa.ChunkedArray | pa.Array) -> list[_t.Any]:
    kind = column.type
    if _is_python_type(kind):
        return _t.cast(list[_t.Any], column.to_pylist())
    if _keeps_type_as_numpy(kind):
        return _numpy_values(column)
    values: list[_t.Any]
    if pat.is_dictionary(kind):
        values = column.cast(kind.value_type).to_pylist()
    elif pat.is_timestamp(kind):
        # Python's datetime, time and timedelta hold microseconds.
        values = column.cast(pa.timestamp("us", tz=kind.tz), safe=False).to_pylist()
    elif pat.is_time(kind) or pat.is_duration(kind):
        target = pa.duration("us") if pat.is_duration(kind) else pa.time64("us")
        values = column.cast(target, safe=False).to_pylist()
    else:
        values = column.to_pylist()
    first = next((v for v in values if v is not None), None)
    if first is None or type(first) not in _TYPED_BASES:
        return values  # nothing to carry the type (all missing, or a `bool`)
    cls = _typed_class(type(first), kind)
    return [v if v is None else _rebuilt(cls, v) for v in values]


def python_columns(
    table: pa.Table | pa.RecordBatch, names: Sequence[str]
) -> dict[str, list[_t.Any]]:
    """Returns the named columns of `table` as lists of Python values (see the module doc)."""
    return {name: _values(table.column(name)) for name in names}


def parse_schema(schema: Mapping[str, str | pa.DataType] | None) -> dict[str, pa.DataType]:
    """Turns `{"x": "int32", "t": "timestamp[ns]"}` into Arrow types.

    Raises:
        ValueError: A type name Arrow does not know.
    """
    parsed: dict[str, pa.DataType] = {}
    for name, kind in (schema or {}).items():
        if isinstance(kind, pa.DataType):
            parsed[name] = kind
            continue
        try:
            parsed[name] = _type_from_name(str(kind))
        except (ValueError, TypeError, KeyError) as exc:
            msg = f"column {name!r}: {kind!r} is not an Arrow type name ({exc})"
            raise ValueError(msg) from None
    return parsed


def _type_from_name(name: str) -> pa.DataType:
    text = name.strip()
    if text.startswith("timestamp[") and text.endswith("]"):
        unit, _, tz = text[len("timestamp[") : -1].partition(",")
        zone = tz.strip().removeprefix("tz=").strip() or None
        return pa.timestamp(unit.strip(), tz=zone)
    if text.startswith("decimal128(") and text.endswith(")"):
        precision, _, scale = text[len("decimal128(") : -1].partition(",")
        return pa.decimal128(int(precision), int(scale or 0))
    aliases = {"str": "string", "float": "float32", "double": "float64", "boolean": "bool"}
    return pa.type_for_alias(aliases.get(text, text))


class ColumnTypeError(ValueError):
    """The values of a column cannot become one Arrow column; the message names the column."""


def table_from_columns(
    columns: Mapping[str, Sequence[_t.Any]],
    schema: pa.Schema | None = None,
    types: Mapping[str, pa.DataType] | None = None,
) -> pa.Table:
    """Builds a table from lists of Python values, one per column, in the mapping's order.

    Args:
        columns: Column name -> values.
        schema: The schema of what was written before: the new table is cast to it, so every
            chunk of a file has the same types, except in columns of type `null` (no value
            so far), whose types come from `types` or the values.
        types: Types to use for some columns instead of inferring them from the values.

    Raises:
        ColumnTypeError: A column's values do not fit one type (e.g. numbers and text).
    """
    arrays = []
    for name, values in columns.items():
        wanted = schema.field(name).type if schema is not None else None
        if wanted is None or pat.is_null(wanted):  # no value so far: typed by this chunk
            wanted = (types or {}).get(name) or arrow_type_of(values)
        arrays.append(_array(name, values, wanted))
    return pa.Table.from_arrays(arrays, names=list(columns))


def _conversion_errors() -> tuple[type[Exception], ...]:
    # A function: pyarrow is loaded where a file is written, not when this module is.
    return (pa.ArrowException, OverflowError, TypeError, ValueError)


def _array(name: str, values: Sequence[_t.Any], wanted: pa.DataType | None) -> pa.Array:
    built = _plain_array(values, wanted)
    if built is not None:
        return built
    if wanted is not None:
        try:
            return pa.array(values, type=wanted)
        except _conversion_errors():
            pass  # e.g. NumPy timestamps in ns for a column in us: inferred, then cast
    try:
        array = pa.array(values)
        if wanted is None or pat.is_null(wanted):
            return array
        return array.cast(wanted)
    except _conversion_errors() as exc:
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        what = f" to {wanted}" if wanted is not None else ""
        msg = (
            f"column {name!r}: its values ({', '.join(kinds)}) cannot be written{what}: "
            f"{type(exc).__name__}: {exc}"
        )
        raise ColumnTypeError(msg) from None


_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()
_MICROSECOND = _dt.timedelta(microseconds=1)

_PlainBuffers: _t.TypeAlias = _t.Callable[[Sequence[_t.Any], int], list["pa.Buffer"] | None]
"""Builds the data buffers of an array from its values, given how many of them are missing."""


def _plain_array(values: Sequence[_t.Any], wanted: pa.DataType | None) -> pa.Array | None:
    """What `pa.array(values)` gives, built from its buffers, for values of one plain type.

    The plain types are `int`, `float`, `str`, `bool`, a naive `datetime` and `date`, with
    missing values among them. `None` for any other column, or one `wanted` as another type.

    `pa.array` imports pandas (about 48 MiB) the first time it is given Python values, for a
    check that such columns never need: a component that writes plain values stays without.
    """
    kinds = set(map(type, values))
    any_missing = type(None) in kinds
    kinds.discard(type(None))
    if not kinds:
        return pa.nulls(len(values), wanted or pa.null())
    kind = kinds.pop()
    if kinds or kind not in _PLAIN_COLUMNS:
        return None
    missing = values.count(None) if any_missing else 0  # compares plain values to `None`
    if kind is _dt.datetime and any(v is not None and v.tzinfo is not None for v in values):
        return None
    type_name, buffers_of = _PLAIN_COLUMNS[kind]
    arrow_type = pa.type_for_alias(type_name)
    if wanted is not None and wanted != arrow_type:
        return None
    validity = None
    if missing:
        present = map(operator.is_not, values, itertools.repeat(None))
        validity = pa.py_buffer(_bitmap(np.fromiter(present, bool, len(values))))
    try:
        data = buffers_of(values, missing)
    except (OverflowError, UnicodeEncodeError):
        return None  # pa.array gives the error, with the column's name
    if data is None:
        return None
    return pa.Array.from_buffers(arrow_type, len(values), [validity, *data], null_count=missing)


def _bitmap(
    flags: np.ndarray[_t.Any, np.dtype[np.bool_]],
) -> np.ndarray[_t.Any, np.dtype[np.uint8]]:
    return np.packbits(flags, bitorder="little")


def _filled(values: Sequence[_t.Any], missing: int, fill: _t.Any) -> _t.Iterable[_t.Any]:
    return (fill if v is None else v for v in values) if missing else values


def _number_buffers(dtype: str, zero: _t.Any) -> _PlainBuffers:
    def buffers(values: Sequence[_t.Any], missing: int) -> list[pa.Buffer]:
        numbers = np.fromiter(_filled(values, missing, zero), dtype, len(values))
        return [pa.py_buffer(numbers)]

    return buffers


def _bool_buffers(values: Sequence[_t.Any], missing: int) -> list[pa.Buffer]:
    flags = np.fromiter(_filled(values, missing, False), bool, len(values))
    return [pa.py_buffer(_bitmap(flags))]


def _string_buffers(values: Sequence[_t.Any], missing: int) -> list[pa.Buffer] | None:
    texts = list(_filled(values, missing, ""))
    joined = "".join(texts)
    if joined.isascii():  # a character is a byte: no string encoded on its own
        data, lengths = joined.encode(), map(len, texts)
    else:
        encoded = list(map(str.encode, texts))
        data, lengths = b"".join(encoded), map(len, encoded)
    if len(data) > np.iinfo(np.int32).max:
        return None  # pa.array splits such a column into chunks
    offsets = np.zeros(len(texts) + 1, np.int32)
    np.cumsum(np.fromiter(lengths, np.int32, len(texts)), out=offsets[1:])
    return [pa.py_buffer(offsets), pa.py_buffer(data)]


def _datetime_buffers(values: Sequence[_t.Any], missing: int) -> list[pa.Buffer]:
    micros = ((v - _EPOCH) // _MICROSECOND for v in _filled(values, missing, _EPOCH))
    return [pa.py_buffer(np.fromiter(micros, np.int64, len(values)))]


def _date_buffers(values: Sequence[_t.Any], missing: int) -> list[pa.Buffer]:
    days = (v.toordinal() - _EPOCH_DAY for v in _filled(values, missing, _EPOCH))
    return [pa.py_buffer(np.fromiter(days, np.int32, len(values)))]


_PLAIN_COLUMNS: dict[type, tuple[str, _PlainBuffers]] = {
    int: ("int64", _number_buffers("int64", 0)),
    float: ("float64", _number_buffers("float64", 0.0)),
    str: ("string", _string_buffers),
    bool: ("bool", _bool_buffers),
    _dt.datetime: ("timestamp[us]", _datetime_buffers),
    _dt.date: ("date32", _date_buffers),
}
"""For each plain Python type, the Arrow type `pa.array` infers for its values, and the data
buffers (after the validity bitmap) of an array of that type, given how many are missing."""
