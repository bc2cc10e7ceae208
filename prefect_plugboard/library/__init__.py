"""Library components ready to use in a graph: data readers and writers.

| component | reads or writes |
|---|---|
| `FileReader` / `FileWriter` | CSV, CSV.GZ and Parquet files, local or at any fsspec URL |
| `SQLReader` / `SQLWriter` | SQL databases through SQLAlchemy (async drivers where available) |
| `WebsocketReader` / `WebsocketWriter` | websocket servers, with reconnection |
| `DataReader` / `DataWriter` | the bases to read from or write to your own source |

Each module is imported on first use, so that using one component does not import the
libraries of the others.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.library.data_reader import (
        DataReader as DataReader,
        DataReaderArgsDict as DataReaderArgsDict,
    )
    from prefect_plugboard.library.data_writer import (
        DataWriter as DataWriter,
        DataWriterArgsDict as DataWriterArgsDict,
    )
    from prefect_plugboard.library.file_io import (
        FileReader as FileReader,
        FileWriter as FileWriter,
    )
    from prefect_plugboard.library.sql_io import SQLReader as SQLReader, SQLWriter as SQLWriter
    from prefect_plugboard.library.websocket_io import (
        WebsocketBase as WebsocketBase,
        WebsocketReader as WebsocketReader,
        WebsocketWriter as WebsocketWriter,
    )

_PUBLIC: dict[str, str] = {
    "DataReader": "prefect_plugboard.library.data_reader",
    "DataReaderArgsDict": "prefect_plugboard.library.data_reader",
    "DataWriter": "prefect_plugboard.library.data_writer",
    "DataWriterArgsDict": "prefect_plugboard.library.data_writer",
    "FileReader": "prefect_plugboard.library.file_io",
    "FileWriter": "prefect_plugboard.library.file_io",
    "SQLReader": "prefect_plugboard.library.sql_io",
    "SQLWriter": "prefect_plugboard.library.sql_io",
    "WebsocketBase": "prefect_plugboard.library.websocket_io",
    "WebsocketReader": "prefect_plugboard.library.websocket_io",
    "WebsocketWriter": "prefect_plugboard.library.websocket_io",
}

__all__ = [
    "DataReader",
    "DataReaderArgsDict",
    "DataWriter",
    "DataWriterArgsDict",
    "FileReader",
    "FileWriter",
    "SQLReader",
    "SQLWriter",
    "WebsocketBase",
    "WebsocketReader",
    "WebsocketWriter",
]

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
