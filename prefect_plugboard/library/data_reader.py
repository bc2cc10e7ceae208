"""`DataReader`: the base of components that emit the rows of a data source."""

from abc import ABC, abstractmethod
import asyncio
from collections.abc import Iterable, Mapping, Sequence
import contextlib
import typing as _t

from prefect_plugboard.exceptions import DataIOError, IOStreamClosedError, NoMoreDataException
from prefect_plugboard.library._common import (
    LibraryComponent,
    check_chunk_size,
    check_field_names,
    label,
)
from prefect_plugboard.schemas.component import ComponentArgsDict


__all__ = ["DataReader", "DataReaderArgsDict", "DataReaderArgsSpec"]

_END: _t.Final = object()


class DataReaderArgsDict(ComponentArgsDict, total=False):
    """The keyword arguments of a `DataReader`, for `**kwargs: Unpack[DataReaderArgsDict]`.

    Attributes:
        field_names: The fields to read, which are also the component's outputs.
        chunk_size: How many rows to fetch at a time; `None` fetches everything at once.
    """

    field_names: _t.Required[Sequence[str]]
    chunk_size: int | None


DataReaderArgsSpec = DataReaderArgsDict
"""plugboard's name for `DataReaderArgsDict`."""


class DataReader(LibraryComponent, ABC):
    """Emits the rows of a data source, one row per step, fetching them a chunk at a time.

    Its outputs are `field_names`. `init()` fetches the first chunk, so a source that cannot be
    read fails before the first step. While the graph works on one chunk, the next one is
    fetched in the background. After the last row the reader ends its output; a `step()` past
    the end raises `IOStreamClosedError`.

    To read from your own source, implement two methods (as in plugboard):

    ```python
    class RangeReader(DataReader):
        def __init__(self, stop: int, **kwargs: Unpack[DataReaderArgsDict]) -> None:
            super().__init__(**kwargs)
            self._stop, self._next = stop, 0

        async def _fetch(self) -> range:
            if self._next >= self._stop:
                raise NoMoreDataException  # no more data: the reader ends
            size = self._chunk_size or self._stop
            chunk = range(self._next, min(self._next + size, self._stop))
            self._next = chunk.stop
            return chunk

        async def _convert(self, data: range) -> dict[str, list[int]]:
            return {"n": list(data)}  # field name -> values, one per row
    ```

    Keep open files or connections out of `__init__`: open them in `init()` (before calling
    `super().init()`, which makes the first `_fetch`) and close them in `destroy()`, and list
    their attributes in `_live_attributes` so that they are not pickled to a Ray worker.

    Args:
        field_names: The fields to read, which are also the component's outputs.
        chunk_size: How many rows `_fetch` should return at a time (`self._chunk_size`);
            `None` lets it return everything at once.
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = ("_prefetch",)

    def __init__(
        self,
        field_names: Sequence[str],
        chunk_size: int | None = None,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._field_names = check_field_names(self, field_names)
        self._chunk_size = check_chunk_size(self, chunk_size)
        self.io.add_outputs(*self._field_names)
        self._reset()

    def _reset(self) -> None:
        self._columns: tuple[tuple[str, Sequence[_t.Any]], ...] = ()
        self._length = 0
        self._index = 0
        self._ready: tuple[tuple[tuple[str, Sequence[_t.Any]], ...], int] | None = None
        self._prefetch: asyncio.Future[_t.Any] | None = None
        self._ended = False
        self._rows_emitted = 0

    @abstractmethod
    async def _fetch(self) -> _t.Any:
        """Fetches the next chunk of data from the source.

        Raises:
            NoMoreDataException: The source has no more data.
        """

    @abstractmethod
    async def _convert(self, data: _t.Any) -> Mapping[str, Iterable[_t.Any]]:
        """Turns a fetched chunk into `{field name: values}`, the values in row order."""

    async def init(self) -> None:
        """Fetches the first chunk, so that a source that cannot be read fails here."""
        self._reset()
        self._ready = await self._fetch_and_convert()

    async def step(self) -> None:
        """Emits the next row; after the last row, ends the output.

        Raises:
            IOStreamClosedError: There are no more rows (the output is then closed).
        """
        index = self._index
        if index >= self._length:
            if not await self._advance():
                await self.io.close()
                msg = f"{label(self)} has no more data: it emitted {self._rows_emitted} rows"
                raise IOStreamClosedError(msg)
            index = 0
        state = self.__dict__
        for field, values in self._columns:
            state[field] = values[index]
        self._index = index + 1

    async def destroy(self) -> None:
        """Stops a fetch still under way."""
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None and not prefetch.done():
            prefetch.cancel()
            with contextlib.suppress(BaseException):
                await prefetch

    async def _advance(self) -> bool:
        """Makes the next non-empty chunk current and starts fetching the one after it."""
        self._rows_emitted += self._length
        self._columns, self._length, self._index = (), 0, 0
        while True:
            ready, self._ready = self._ready, None
            if ready is None:
                if self._ended:
                    return False
                pending, self._prefetch = self._prefetch, None
                ready = await (pending if pending is not None else self._fetch_and_convert())
            if ready is None:
                self._ended = True
                return False
            self._columns, self._length = ready
            if not self._ended:
                self._prefetch = asyncio.ensure_future(self._fetch_and_convert())
                await asyncio.sleep(0)  # the fetch starts now, not when this one waits
            if self._length:
                return True

    async def _fetch_and_convert(
        self,
    ) -> tuple[tuple[tuple[str, Sequence[_t.Any]], ...], int] | None:
        """The next chunk as `(field, values)` pairs and its length; `None` at the end."""
        try:
            data = await self._fetch()
        except NoMoreDataException:
            return None
        converted = await self._convert(data)
        columns: list[tuple[str, Sequence[_t.Any]]] = []
        for field in self._field_names:
            try:
                values = converted[field]
            except KeyError:
                msg = f"{label(self)}: its data has no field {field!r}; it has {sorted(converted)}"
                raise DataIOError(msg) from None
            # Indexed once per row: a list, not a deque (whose middle is slow to index).
            fast = isinstance(values, list | tuple | range)
            columns.append((field, _t.cast(Sequence[_t.Any], values) if fast else list(values)))
        lengths = {len(values) for _, values in columns}
        if len(lengths) > 1:
            sizes = {field: len(values) for field, values in columns}
            msg = f"{label(self)}: its fields have different numbers of rows in one chunk: {sizes}"
            raise DataIOError(msg)
        return tuple(columns), lengths.pop() if lengths else 0
