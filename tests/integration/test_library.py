"""The component library in real runs: flow runs, Prefect blocks for settings, Ray workers."""

from __future__ import annotations

from pathlib import Path
import sqlite3
import uuid

import fsspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from prefect_plugboard import (
    LocalProcess,
    PlugboardError,
    RayConnector,
    RayProcess,
    Status,
    build_process,
    load_model,
)
from prefect_plugboard.library import FileReader, FileWriter, SQLReader, SQLWriter
from prefect_plugboard.schemas import ConnectorSpec
from prefect_plugboard.testing import Collector, run_in_memory
from tests.helpers import error_text, wire
from tests.prefect_api import final_flow_run


TABLE = pa.table({"x": list(range(50)), "label": [f"row {i}" for i in range(50)]})


async def test_a_csv_file_becomes_a_parquet_file_in_a_flow_run(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out" / "copy.parquet"
    pa_csv.write_csv(TABLE, source)
    process = LocalProcess(
        components=[
            FileReader(name="read", path=source, field_names=["x", "label"], chunk_size=8),
            FileWriter(name="save", path=target, field_names=["x", "label"], chunk_size=16),
        ],
        connectors=wire("read", "save", ["x", "label"]),
    )
    async with process:
        await process.run()
    assert pq.read_table(target).equals(TABLE)
    flow_run = await final_flow_run(process.flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_completed()


async def test_a_missing_file_stops_the_model_before_any_row(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "in.parquet"
    target = tmp_path / "out.csv"
    process = LocalProcess(
        components=[
            FileReader(name="read", path=missing, field_names=["x"]),
            FileWriter(name="save", path=target, field_names=["x"]),
        ],
        connectors=wire("read", "save", ["x"]),
    )
    with pytest.raises(PlugboardError) as info:
        async with process:
            await process.run()
    text = error_text(info.value)
    assert "FileReader 'read'" in text and str(missing) in text
    assert process.components["save"].run_stats.steps == 0


# ----- settings from saved Prefect blocks ---------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sales (region TEXT, amount REAL)")
        db.executemany("INSERT INTO sales VALUES (?, ?)", [("north", 1.5), ("south", 2.5)])
    return path


async def _saved_connector(url: str) -> str:
    sqlalchemy_blocks = pytest.importorskip("prefect_sqlalchemy")
    block = sqlalchemy_blocks.SqlAlchemyConnector(connection_info=url)
    name = f"warehouse-{uuid.uuid4().hex[:8]}"
    await block.save(name)
    return f"sqlalchemy-connector/{name}"


async def test_a_sql_connection_comes_from_a_saved_sqlalchemy_block(sqlite_db: Path) -> None:
    reference = await _saved_connector(f"sqlite:///{sqlite_db}")
    sink = Collector(name="sink", fields=["region", "amount"])
    reader = SQLReader(
        name="read",
        connection_string=reference,
        query="SELECT region, amount FROM sales ORDER BY region",
        field_names=["region", "amount"],
    )
    process = LocalProcess(
        components=[reader, sink], connectors=wire("read", "sink", ["region", "amount"])
    )
    await run_in_memory(process)
    assert sink.received == [("north", 1.5), ("south", 2.5)]
    assert reader.export()["args"]["connection_string"] == reference  # no URL in a dump


async def test_a_yaml_model_names_the_sql_block_instead_of_a_url(
    sqlite_db: Path, tmp_path: Path
) -> None:
    reference = await _saved_connector(f"sqlite:///{sqlite_db}")
    model = tmp_path / "model.yaml"
    model.write_text(f"""\
plugboard:
  process:
    args:
      components:
      - type: plugboard.library.sql_io.SQLReader
        args:
          name: read
          connection_string: {reference}
          query: SELECT region, amount FROM sales WHERE amount > :least
          params: {{least: 2}}
          field_names: [region, amount]
      - type: plugboard.library.sql_io.SQLWriter
        args:
          name: save
          connection_string: {reference}
          table: big_sales
          field_names: [region, amount]
      connectors:
      - {{source: read.region, target: save.region}}
      - {{source: read.amount, target: save.amount}}
""")
    process = build_process(load_model(model))
    async with process:
        await process.run()
    assert process.status is Status.COMPLETED
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT region, amount FROM big_sales").fetchall() == [("south", 2.5)]
    dumped = tmp_path / "dumped.yaml"
    process.dump(dumped)
    assert reference in dumped.read_text() and str(sqlite_db) not in dumped.read_text()


async def test_file_storage_options_come_from_a_saved_aws_credentials_block() -> None:
    aws = pytest.importorskip("prefect_aws")
    name = f"files-{uuid.uuid4().hex[:8]}"
    await aws.AwsCredentials(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="s3cret").save(
        name
    )
    writer = FileWriter(
        name="save",
        path=f"memory://plugboard-tests/{name}.csv",
        storage_options=f"aws-credentials/{name}",
        field_names=["x"],
    )
    assert writer._storage_options == {"key": "AKIAEXAMPLE", "secret": "s3cret"}
    assert writer.export()["args"]["storage_options"] == f"aws-credentials/{name}"


async def test_a_yaml_model_takes_file_storage_options_from_a_saved_block(
    tmp_path: Path,
) -> None:
    aws = pytest.importorskip("prefect_aws")
    name = f"yaml-files-{uuid.uuid4().hex[:8]}"
    await aws.AwsCredentials(aws_access_key_id="AKIAYAML", aws_secret_access_key="y4ml").save(name)
    target = f"memory://plugboard-tests/{name}.csv"
    model = tmp_path / "model.yaml"
    model.write_text(f"""\
plugboard:
  process:
    args:
      components:
      - type: prefect_plugboard.testing.ListSource
        args: {{name: src, items: [1, 2, 3]}}
      - type: plugboard.library.FileWriter
        args:
          name: save
          path: {target}
          storage_options: aws-credentials/{name}
          field_names: [x]
      connectors:
      - {{source: src.x, target: save.x}}
""")
    process = build_process(load_model(model))
    writer = process.components["save"]
    assert writer._storage_options == {"key": "AKIAYAML", "secret": "y4ml"}
    async with process:
        await process.run()
    assert process.status is Status.COMPLETED
    with fsspec.open(target, "rb") as f:
        assert pa_csv.read_csv(f).column("x").to_pylist() == [1, 2, 3]
    dumped = tmp_path / "dumped.yaml"
    process.dump(dumped)
    assert f"aws-credentials/{name}" in dumped.read_text() and "y4ml" not in dumped.read_text()


async def test_a_block_that_is_not_saved_is_named() -> None:
    pytest.importorskip("prefect_sqlalchemy")
    with pytest.raises(PlugboardError) as info:
        SQLWriter(
            name="save",
            connection_string="sqlalchemy-connector/no-such-block",
            table="t",
            field_names=["x"],
        )
    assert (
        "SQLWriter 'save': cannot load the Prefect block 'sqlalchemy-connector/no-such-block'"
        in str(info.value)
    )


def test_a_model_with_an_unsaved_sql_block_is_not_dumped_with_its_secret(tmp_path: Path) -> None:
    sqlalchemy_blocks = pytest.importorskip("prefect_sqlalchemy")
    block = sqlalchemy_blocks.SqlAlchemyConnector(
        connection_info="postgresql://user:topsecret@127.0.0.1:1/db"
    )
    process = LocalProcess(
        components=[
            SQLReader(
                name="read", connection_string=block, query="SELECT 1 AS x", field_names=["x"]
            ),
            Collector(name="sink"),
        ],
        connectors=wire("read", "sink", ["x"]),
    )
    model = tmp_path / "model.yaml"
    with pytest.raises(PlugboardError) as info:
        process.dump(model)
    text = str(info.value)
    assert "SQLReader 'read'" in text and "`connection_string`" in text and "not saved" in text
    assert "sqlalchemy-connector/" in text and "topsecret" not in text
    assert not model.exists()


def test_a_model_with_unsaved_aws_credentials_is_not_dumped(tmp_path: Path) -> None:
    aws = pytest.importorskip("prefect_aws")
    credentials = aws.AwsCredentials(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="s3")
    writer = FileWriter(
        name="save",
        path="memory://plugboard-tests/out.csv",
        storage_options=credentials,
        field_names=["x"],
    )
    with pytest.raises(PlugboardError, match="FileWriter 'save': its `storage_options`"):
        writer.export()


# ----- on Ray: components are pickled to workers, files opened there -------------------------


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_a_reader_and_a_writer_run_on_ray_workers(tmp_path: Path) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.csv.gz"
    pq.write_table(TABLE, source)
    process = RayProcess(
        components=[
            FileReader(name="read", path=source, field_names=["x", "label"], chunk_size=10),
            FileWriter(name="save", path=target, field_names=["x", "label"], chunk_size=7),
        ],
        connectors=[
            RayConnector(spec=ConnectorSpec(source=f"read.{f}", target=f"save.{f}"))
            for f in ("x", "label")
        ],
    )
    async with process:
        await process.run()
    assert process.status is Status.COMPLETED
    assert pa_csv.read_csv(target).equals(TABLE)
    assert process.components["save"].run_stats.steps == TABLE.num_rows
