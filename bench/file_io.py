"""File I/O benchmark: FileReader -> FileWriter, Parquet->Parquet and CSV->CSV, rows/s.

1,000,000 rows of three columns (int, float, text) are copied through a `LocalProcess`, the
Prefect flow run included, timed around `process.run()`. With `--peer PYTHON`, plugboard
0.9.0's same model (`bench/peer/file_io_peer.py`, plugboard's own FileReader and FileWriter
with the same arguments) copies the same files in the same invocation, and the ratio is
printed.

    python bench/file_io.py                                   # ours only
    python bench/file_io.py --peer /tmp/peer-venv/bin/python  # side by side
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
import typing as _t


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import PeakRSS, run_peer
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from prefect_plugboard import AsyncioConnector, ConnectorSpec, LocalProcess
from prefect_plugboard.library import FileReader, FileWriter


FIELDS = ["x", "y", "label"]
FORMATS = ("parquet", "csv")


def make_input(folder: Path, rows: int) -> dict[str, Path]:
    """Writes the input files: `rows` rows of an int, a float and a text column."""
    table = pa.table(
        {
            "x": pa.array(range(rows), pa.int64()),
            "y": pa.array([i * 0.25 for i in range(rows)], pa.float64()),
            "label": pa.array([f"row {i}" for i in range(rows)], pa.string()),
        }
    )
    paths = {"parquet": folder / f"in-{rows}.parquet", "csv": folder / f"in-{rows}.csv"}
    pq.write_table(table, paths["parquet"])
    pa_csv.write_csv(table, paths["csv"])
    return paths


def chunk_sizes(fmt: str, chunk: int) -> tuple[int, int | None]:
    """Reader and writer chunk sizes, the same on both sides.

    plugboard's FileWriter refuses a chunk size for Parquet ("Only CSV files support chunked
    writing"), so the Parquet writer gets none on both sides.
    """
    return chunk, (chunk if fmt == "csv" else None)


def build(source: Path, target: Path, fmt: str, chunk: int) -> LocalProcess:
    read_chunk, write_chunk = chunk_sizes(fmt, chunk)
    return LocalProcess(
        components=[
            FileReader(name="read", path=source, field_names=FIELDS, chunk_size=read_chunk),
            FileWriter(name="save", path=target, field_names=FIELDS, chunk_size=write_chunk),
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source=f"read.{f}", target=f"save.{f}"))
            for f in FIELDS
        ],
    )


def check_copy(source: Path, target: Path, fmt: str, same_types: bool = True) -> None:
    """Checks the copy has every row; with `same_types`, every column type too.

    plugboard's copy of a Parquet file has its text as large_string (pandas 3), so its side
    is checked for values only.
    """
    read = pq.read_table if fmt == "parquet" else pa_csv.read_csv
    original, copy = read(source).select(FIELDS), read(target)
    assert copy.num_rows == original.num_rows, (copy.num_rows, original.num_rows)
    if not same_types:
        copy = copy.select(FIELDS).cast(original.schema)
    assert copy.equals(original), f"{target} differs from {source}"


async def measure(source: Path, target: Path, fmt: str, chunk: int, rows: int) -> float:
    process = build(source, target, fmt, chunk)
    async with process:
        started = time.perf_counter()
        await process.run()
        run_s = time.perf_counter() - started
    check_copy(source, target, fmt)
    return rows / run_s


async def main(args: argparse.Namespace, folder: Path) -> dict[str, _t.Any]:
    inputs = make_input(folder, args.rows)
    warm = make_input(folder, 1000)
    await measure(warm["csv"], folder / "warm.csv", "csv", args.chunk, 1000)  # starts the API
    await asyncio.sleep(args.idle)  # let the API's background work settle (design §4)
    result: dict[str, _t.Any] = {"bench": "file_io", "rows": args.rows, "chunk": args.chunk}
    with PeakRSS() as rss:
        for fmt in FORMATS:
            runs = []
            for i in range(args.repeat):
                target = folder / f"out-{i}.{fmt}"
                runs.append(await measure(inputs[fmt], target, fmt, args.chunk, args.rows))
                await asyncio.sleep(args.idle)
            result[fmt] = {
                "rows_per_s": round(statistics.median(runs)),
                "runs": [round(r) for r in runs],
            }
    result["peak_tree_rss_mib"] = round(rss.peak_mib, 1)
    return result


def run_peer_side(args: argparse.Namespace, folder: Path, result: dict[str, _t.Any]) -> None:
    inputs = make_input(folder, args.peer_rows) if args.peer_rows != args.rows else None
    for fmt in FORMATS:
        source = (inputs or {fmt: folder / f"in-{args.rows}.{fmt}"})[fmt]
        target = folder / f"peer-out.{fmt}"
        read_chunk, write_chunk = chunk_sizes(fmt, args.chunk)
        peer = run_peer(
            args.peer,
            Path(__file__).resolve().parent / "peer" / "file_io_peer.py",
            str(source),
            str(target),
            str(read_chunk),
            "none" if write_chunk is None else str(write_chunk),
            timeout=args.peer_timeout,
        )
        check_copy(source, target, fmt, same_types=False)
        peer_rate = args.peer_rows / peer["run_s"]
        result[fmt]["peer_rows_per_s"] = round(peer_rate)
        result[fmt]["peer_rows"] = args.peer_rows
        result[fmt]["ratio_vs_peer"] = round(result[fmt]["rows_per_s"] / peer_rate, 1)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per read/write chunk")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=3.0, help="pause between runs (s)")
    parser.add_argument("--peer", help="python of the peer's venv (plugboard 0.9.0)")
    parser.add_argument("--peer-rows", type=int, help="rows for the peer (default: --rows)")
    parser.add_argument("--peer-timeout", type=float, default=1800)
    args = parser.parse_args()
    args.peer_rows = args.peer_rows or args.rows
    with tempfile.TemporaryDirectory(prefix="plugboard-file-io-") as tmp:
        folder = Path(tmp)
        result = asyncio.run(main(args, folder))
        if args.peer:
            run_peer_side(args, folder, result)
    for fmt in FORMATS:
        line = f"{fmt:>7} -> {fmt:<7} prefect-plugboard: {result[fmt]['rows_per_s']:>9,} rows/s"
        if "peer_rows_per_s" in result[fmt]:
            line += (
                f"   plugboard 0.9.0: {result[fmt]['peer_rows_per_s']:>7,} rows/s "
                f"({result[fmt]['peer_rows']:,} rows)   ratio {result[fmt]['ratio_vs_peer']}x"
            )
        print(line)
    runs = [result[f]["runs"] for f in FORMATS]
    print(f"({args.rows:,} rows, chunks of {args.chunk:,}; runs {runs})")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    cli()
