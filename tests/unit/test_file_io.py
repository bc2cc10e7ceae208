import csv
from pathlib import Path

import pytest

from prefect_plugboard import AsyncioConnector, ConnectorSpec, FileReader, FileWriter, LocalProcess
from prefect_plugboard.testing import Collector, ListSource, run_in_memory


async def test_writer_writes_a_header_and_one_row_per_step(tmp_path: Path) -> None:
    out = tmp_path / "out" / "rows.csv"
    process = LocalProcess(
        components=[
            ListSource(name="a", items=[1, 2, 3]),
            ListSource(name="b", items=["x", None, "z"], field="y"),
            FileWriter(name="save", path=out, field_names=["a", "b"]),
        ],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="a.x", target="save.a")),
            AsyncioConnector(spec=ConnectorSpec(source="b.y", target="save.b")),
        ],
    )
    await run_in_memory(process)
    with out.open() as f:
        assert list(csv.reader(f)) == [["a", "b"], ["1", "x"], ["2", ""], ["3", "z"]]


async def test_reader_emits_rows_with_numbers_parsed(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("n,label,unused\n1,one,x\n2.5,,y\n3,three,z\n1_000, 7,w\n")
    sink = Collector(name="sink", fields=["n", "label"])
    process = LocalProcess(
        components=[FileReader(name="read", path=source, field_names=["n", "label"]), sink],
        connectors=[
            AsyncioConnector(spec=ConnectorSpec(source="read.n", target="sink.n")),
            AsyncioConnector(spec=ConnectorSpec(source="read.label", target="sink.label")),
        ],
    )
    await run_in_memory(process)
    assert sink.received == [(1, "one"), (2.5, None), (3, "three"), ("1_000", " 7")]


async def test_reader_names_missing_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("a,b\n1,2\n")
    sink = Collector(name="sink", fields=["c"])
    process = LocalProcess(
        components=[FileReader(name="read", path=source, field_names=["c"]), sink],
        connectors=[AsyncioConnector(spec=ConnectorSpec(source="read.c", target="sink.c"))],
    )
    with pytest.raises(Exception) as info:
        await run_in_memory(process)
    assert "no column(s) ['c']" in str(info.value.__cause__)


def test_relative_paths_are_resolved_where_the_component_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    writer = FileWriter(name="w", path="ray.csv", field_names=["t"])
    assert writer._path == tmp_path / "ray.csv"
    assert writer.export()["args"]["path"] == "ray.csv"
