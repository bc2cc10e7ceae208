"""CSV file components: `FileReader` emits rows, `FileWriter` writes them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import csv
import os
from pathlib import Path
import typing as _t

from prefect_plugboard.component.component import Component
from prefect_plugboard.schemas.component import ComponentArgsDict


__all__ = ["FileReader", "FileWriter"]


def _absolute(path: str | os.PathLike[str]) -> Path:
    # Resolved where the component is built, so a relative path means what it meant to the
    # user who typed it, also on a worker whose working directory differs.
    return Path(os.path.abspath(os.path.expanduser(path)))


def _parse(text: str) -> _t.Any:
    """A CSV cell as pandas reads it: empty is None, then int, then float, else the text."""
    if text == "":
        return None
    if "_" in text or text != text.strip():  # Python's int("1_000") and int(" 1") are not CSV
        return text
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


class FileWriter(Component):
    """Writes one CSV row per step, with a header row, flushing every row.

    Its inputs are `field_names`; each step writes their current values. Every row is flushed
    as it is written, so rows written before a later failure are on disk.

    Args:
        path: The CSV file to write (created or truncated). A relative path is relative to the
            working directory where the component is built.
        field_names: The columns, which are also the component's inputs.
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        field_names: Sequence[str],
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._path = _absolute(path)
        self._field_names = list(field_names)
        if not self._field_names:
            msg = f"FileWriter {self.name!r} needs at least one field name"
            raise ValueError(msg)
        self.io.add_inputs(*self._field_names)
        self._file: _t.TextIO | None = None

    async def init(self) -> None:
        """Creates the file and writes the header row."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self._field_names)
        self._file.flush()

    async def step(self) -> None:
        """Writes one row of the current input values."""
        state = self.__dict__
        self._writer.writerow([state[f] for f in self._field_names])
        _t.cast(_t.TextIO, self._file).flush()

    async def destroy(self) -> None:
        """Closes the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, _t.Any]:
        state = super().__getstate__()
        state["_file"] = None
        state.pop("_writer", None)
        return state


class FileReader(Component):
    """Emits the rows of a CSV file with a header row, one row per step.

    Its outputs are `field_names`, read from the columns of the same names. Numbers are parsed
    (`"3"` becomes `3`, `"0.5"` becomes `0.5`), empty cells become `None`, anything else stays
    a string. The component closes its output after the last row.

    Args:
        path: The CSV file to read. A relative path is relative to the working directory where
            the component is built.
        field_names: The columns to emit, which are also the component's outputs.
        parse_numbers: Whether to parse numbers; `False` keeps every value a string.
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        field_names: Sequence[str],
        parse_numbers: bool = True,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._path = _absolute(path)
        self._field_names = list(field_names)
        self._parse_numbers = parse_numbers
        if not self._field_names:
            msg = f"FileReader {self.name!r} needs at least one field name"
            raise ValueError(msg)
        self.io.add_outputs(*self._field_names)
        self._file: _t.TextIO | None = None

    async def init(self) -> None:
        """Opens the file and checks that it has the requested columns."""
        self._file = self._path.open(newline="", encoding="utf-8")
        reader = csv.reader(self._file)
        header = next(reader, None) or []
        missing = [f for f in self._field_names if f not in header]
        if missing:
            msg = (
                f"{self._path} has no column(s) {missing} for FileReader {self.name!r}; "
                f"its header is {header}"
            )
            raise ValueError(msg)
        columns = [header.index(f) for f in self._field_names]
        convert = _parse if self._parse_numbers else str
        self._rows: Iterator[list[_t.Any]] = (
            [convert(row[i]) if i < len(row) else None for i in columns] for row in reader
        )

    async def step(self) -> None:
        """Emits the next row, or closes the output after the last one."""
        row = next(self._rows, None)
        if row is None:
            await self.io.close()
            return
        state = self.__dict__
        for field, value in zip(self._field_names, row, strict=True):
            state[field] = value

    async def destroy(self) -> None:
        """Closes the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, _t.Any]:
        state = super().__getstate__()
        state["_file"] = None
        state.pop("_rows", None)
        return state
