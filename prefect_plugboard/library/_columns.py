"""Arrow tables to Python values and back, keeping column types across a round trip.

Values leave a reader as plain Python objects (`int`, `float`, `str`, `bool`, `datetime`,
`date`, `Decimal`, `bytes`, `None`), which is what a writer turns back into int64, double,
string, bool, timestamp[us] (with its time zone), date32, decimal and binary columns. Types
that no Python type stands for (int8/16/32, unsigned, float16/32, timestamps in s, ms or ns)
leave as NumPy scalars of that type, which the writer turns back into the same type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import typing as _t

import pyarrow as pa
import pyarrow.types as pat


__all__ = ["ColumnTypeError", "parse_schema", "python_columns", "table_from_columns"]

_NARROW_NUMBERS = (
    pat.is_int8,
    pat.is_int16,
    pat.is_int32,
    pat.is_uint8,
    pat.is_uint16,
    pat.is_uint32,
    pat.is_uint64,
    pat.is_float16,
    pat.is_float32,
)


def _keeps_type_as_numpy(column: pa.ChunkedArray | pa.Array) -> bool:
    kind = column.type
    if column.null_count:
        return False  # NumPy has no null for these: plain values and None instead
    if any(check(kind) for check in _NARROW_NUMBERS):
        return True
    return pat.is_timestamp(kind) and kind.unit != "us" and kind.tz is None


def _values(column: pa.ChunkedArray | pa.Array) -> list[_t.Any]:
    if _keeps_type_as_numpy(column):
        return list(column.to_numpy())
    kind = column.type
    if pat.is_timestamp(kind) and kind.unit != "us":
        # A zoned or nullable timestamp in s/ms/ns: Python's datetime holds microseconds.
        column = column.cast(pa.timestamp("us", tz=kind.tz), safe=False)
    elif pat.is_time(kind) and kind.unit == "ns":
        column = column.cast(pa.time64("us"), safe=False)
    elif pat.is_dictionary(kind):
        column = column.cast(kind.value_type)
    return _t.cast(list[_t.Any], column.to_pylist())


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
            chunk of a file has the same types.
        types: Types to use for some columns instead of inferring them from the values.

    Raises:
        ColumnTypeError: A column's values do not fit one type (e.g. numbers and text).
    """
    arrays = []
    for name, values in columns.items():
        wanted = schema.field(name).type if schema is not None else (types or {}).get(name)
        try:
            array = pa.array(values, type=wanted) if wanted is not None else pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            if wanted is not None and pat.is_null(wanted):
                array = pa.array(values)
            else:
                kinds = sorted({type(v).__name__ for v in values if v is not None})
                what = f" to {wanted}" if wanted is not None else ""
                msg = (
                    f"column {name!r}: its values ({', '.join(kinds)}) cannot be written"
                    f"{what}: {exc}"
                )
                raise ColumnTypeError(msg) from None
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=list(columns))
