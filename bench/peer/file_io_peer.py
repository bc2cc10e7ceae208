"""plugboard 0.9.0's side of `bench/file_io.py`: FileReader -> FileWriter, rows/s.

Run with the peer's python (plugboard 0.9.0 installed), e.g.
`/tmp/peer-venv/bin/python bench/peer/file_io_peer.py in.parquet out.parquet 100000 none`.
The model is written with plugboard's own API; `process.run()` is timed after `init()`.
Prints one `RESULT {json}` line.
"""

import asyncio
import json
import sys
import time

from plugboard.connector import AsyncioConnector
from plugboard.library import FileReader, FileWriter
from plugboard.process import LocalProcess
from plugboard.schemas import ConnectorSpec


FIELDS = ["x", "y", "label"]


def _size(text: str) -> int | None:
    return None if text == "none" else int(text)


async def main(source: str, target: str, read_chunk: int | None, write_chunk: int | None) -> None:
    process = LocalProcess(
        components=[
            FileReader(name="read", path=source, field_names=FIELDS, chunk_size=read_chunk),
            FileWriter(name="save", path=target, field_names=FIELDS, chunk_size=write_chunk),
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source=f"read.{f}", target=f"save.{f}"))
            for f in FIELDS
        ],
    )
    async with process:
        started = time.perf_counter()
        await process.run()
        run_s = time.perf_counter() - started
    print("RESULT " + json.dumps({"run_s": round(run_s, 3), "target": target}))


if __name__ == "__main__":
    source, target, read_chunk, write_chunk = sys.argv[1:5]
    asyncio.run(main(source, target, _size(read_chunk), _size(write_chunk)))
