"""`DataWriter`: the base of components that save the rows they receive."""

from abc import ABC, abstractmethod
import asyncio
from collections import deque
from collections.abc import Sequence
import typing as _t

from prefect_plugboard.exceptions import ValidationError
from prefect_plugboard.library._common import (
    LibraryComponent,
    check_chunk_size,
    check_field_names,
    label,
)
from prefect_plugboard.schemas.component import ComponentArgsDict


__all__ = ["DataWriter", "DataWriterArgsDict", "DataWriterArgsSpec"]

DEFAULT_FLUSH_INTERVAL = 1.0
"""Seconds after which rows still buffered are written, whether or not the chunk is full."""


class DataWriterArgsDict(ComponentArgsDict, total=False):
    """The keyword arguments of a `DataWriter`, for `**kwargs: Unpack[DataWriterArgsDict]`.

    Attributes:
        field_names: The fields to write, which are also the component's inputs.
        chunk_size: How many rows to buffer before writing them; `None`: no limit.
        flush_interval: Seconds after which buffered rows are written anyway; `None`: never.
    """

    field_names: _t.Required[Sequence[str]]
    chunk_size: int | None
    flush_interval: float | None


DataWriterArgsSpec = DataWriterArgsDict
"""plugboard's name for `DataWriterArgsDict`."""


class DataWriter(LibraryComponent, ABC):
    """Saves the rows it receives, buffering them and writing them a chunk at a time.

    Its inputs are `field_names`; each step adds a row. Rows are written when `chunk_size` of
    them are buffered, when the oldest buffered row is `flush_interval` seconds old (so a slow
    stream reaches its file or table within a second), and at the end, also after a failure or
    a stop: every row the writer received is written. Writing happens in the background while
    the graph goes on; at most one chunk is being written at a time.

    A row is written only when every field has a new value. Fields fed by connectors always
    arrive together; fields populated by event handlers (`populates_fields`) may arrive in
    different steps, and are queued until every field of the row has arrived.

    To write to your own destination, implement two methods (as in plugboard):

    ```python
    class ListWriter(DataWriter):
        async def _convert(self, data: dict[str, list[Any]]) -> list[dict[str, Any]]:
            return [dict(zip(data, row)) for row in zip(*data.values())]

        async def _save(self, data: list[dict[str, Any]]) -> None:
            self.saved.extend(data)  # write the converted chunk
    ```

    Open files or connections in `init()` and close them in `destroy()` after
    `await super().destroy()`, which writes what is left.

    Args:
        field_names: The fields to write, which are also the component's inputs.
        chunk_size: How many rows to buffer before writing them; `None`: no limit.
        flush_interval: Seconds after which buffered rows are written even if fewer than
            `chunk_size`; `None` writes only full chunks and the rest at the end (plugboard's
            behaviour).
        **kwargs: `name` and the other `ComponentArgsDict` arguments.
    """

    _live_attributes: _t.ClassVar[tuple[str, ...]] = ("_timer", "_saving")

    def __init__(
        self,
        field_names: Sequence[str],
        chunk_size: int | None = None,
        flush_interval: float | None = DEFAULT_FLUSH_INTERVAL,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._field_names = check_field_names(self, field_names)
        self._chunk_size = check_chunk_size(self, chunk_size)
        if flush_interval is not None and not flush_interval > 0:
            msg = f"{label(self)}: flush_interval must be positive or None, got {flush_interval!r}"
            raise ValidationError([msg], subject=f"component {self.name!r}")
        self._flush_interval = flush_interval
        self.io.add_inputs(*self._field_names)
        populated = {f for _, fields in type(self)._event_handlers.values() for f in fields}
        event_fields = [f for f in self._field_names if f in populated]
        # Fields set by event handlers are queued as they are set (see __setattr__).
        self._queued: dict[str, deque[_t.Any]] | None = (
            {f: deque() for f in self._field_names} if event_fields else None
        )
        self._channel_fields = tuple(f for f in self._field_names if f not in populated)
        self.__dict__["_event_fields"] = frozenset(event_fields)
        self._timer: asyncio.TimerHandle | None = None
        self._saving: asyncio.Future[None] | None = None
        self._rows_written = 0
        self._new_buffer()

    def __setattr__(self, name: str, value: _t.Any) -> None:
        if name in self.__dict__.get("_event_fields", ()):
            _t.cast(dict[str, deque[_t.Any]], self._queued)[name].append(value)
        super().__setattr__(name, value)

    def _new_buffer(self) -> dict[str, list[_t.Any]]:
        buffer: dict[str, list[_t.Any]] | None = getattr(self, "_buffer", None)
        self._buffer: dict[str, list[_t.Any]] = {f: [] for f in self._field_names}
        self._buffer_columns = tuple(self._buffer.items())
        self._buffered = 0
        return buffer or {}

    @abstractmethod
    async def _convert(self, data: dict[str, list[_t.Any]]) -> _t.Any:
        """Turns a chunk, `{field name: values in row order}`, into what `_save` writes."""

    @abstractmethod
    async def _save(self, data: _t.Any) -> None:
        """Writes one converted chunk to the destination."""

    async def step(self) -> None:
        """Adds this step's row to the buffer; writes a chunk when it is full."""
        state = self.__dict__
        if self._queued is None:
            for field, column in self._buffer_columns:
                column.append(state[field])
            self._buffered += 1
        else:
            self._queue_row(state)
        saving = self._saving
        if saving is not None and saving.done():
            self._saving = None
            saving.result()  # a chunk that failed to be written fails the component
        if self._chunk_size is not None and self._buffered >= self._chunk_size:
            await self._write_buffer()
        elif self._timer is None and self._buffered and self._flush_interval is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._flush_interval, self._flush_in_background)

    def _queue_row(self, state: dict[str, _t.Any]) -> None:
        queued = _t.cast(dict[str, deque[_t.Any]], self._queued)
        for field in self._channel_fields:
            queued[field].append(state[field])
        queues = [(column, queued[field]) for field, column in self._buffer_columns]
        while all(queue for _, queue in queues):
            for column, queue in queues:
                column.append(queue.popleft())
            self._buffered += 1

    async def destroy(self) -> None:
        """Writes the rows still buffered and waits for every write to finish."""
        self._cancel_timer()
        chunk = self._new_buffer() if self._buffered else None
        previous, self._saving = self._saving, None
        if chunk is not None:
            await self._write(chunk, previous)
        elif previous is not None:
            await previous

    async def _write_buffer(self) -> None:
        """Starts writing the buffer once the previous chunk is written (backpressure)."""
        self._cancel_timer()
        previous, self._saving = self._saving, None
        if previous is not None:
            await previous
        self._saving = asyncio.ensure_future(self._write(self._new_buffer(), None))

    def _flush_in_background(self) -> None:
        self._timer = None
        if self._buffered:
            self._saving = asyncio.ensure_future(self._write(self._new_buffer(), self._saving))

    async def _write(
        self, chunk: dict[str, list[_t.Any]], previous: asyncio.Future[None] | None
    ) -> None:
        if previous is not None:
            await previous
        rows = len(chunk[self._field_names[0]])
        await self._save(await self._convert(chunk))
        self._rows_written += rows

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
