"""Library components from YAML with plugboard's type paths, and settings from blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_plugboard import ValidationError, build_process, load_model
from prefect_plugboard.builder.type_paths import PLUGBOARD_ALIASES, TypeNotFound, resolve_type
from prefect_plugboard.component import Component
from prefect_plugboard.library import (
    DataReader,
    DataWriter,
    FileReader,
    FileWriter,
    SQLReader,
    SQLWriter,
    WebsocketBase,
    WebsocketReader,
    WebsocketWriter,
)
from prefect_plugboard.library.credentials import is_block_reference, storage


LIBRARY: dict[str, list[type]] = {
    "data_reader": [DataReader],
    "data_writer": [DataWriter],
    "file_io": [FileReader, FileWriter],
    "sql_io": [SQLReader, SQLWriter],
    "websocket_io": [WebsocketBase, WebsocketReader, WebsocketWriter],
}


@pytest.mark.parametrize(
    ("module", "cls"), [(m, c) for m, classes in LIBRARY.items() for c in classes]
)
def test_every_library_class_has_plugboard_s_type_paths(module: str, cls: type) -> None:
    for path in (f"plugboard.library.{cls.__name__}", f"plugboard.library.{module}.{cls.__name__}"):
        assert path in PLUGBOARD_ALIASES
        assert resolve_type(path, Component, "component") is cls


def test_llm_components_are_refused_saying_why() -> None:
    with pytest.raises(TypeNotFound, match="LLM components need a model service"):
        resolve_type("plugboard.library.LLMChat", Component, "component")


MODEL = """\
plugboard:
  process:
    type: plugboard.process.LocalProcess
    args:
      components:
      - type: plugboard.library.file_io.FileReader
        args: {{name: read, path: {source}, field_names: [x, y], chunk_size: 2}}
      - type: plugboard.library.SQLWriter
        args:
          name: save
          connection_string: sqlite:///{db}
          table: copied
          field_names: [x, y]
          chunk_size: 10
      - type: plugboard.library.FileWriter
        args: {{name: copy, path: {target}, field_names: [x], chunk_size: 1}}
      connectors:
      - {{source: read.x, target: save.x}}
      - {{source: read.y, target: save.y}}
      - {{source: read.x, target: copy.x}}
"""


def test_library_components_build_from_yaml_with_plugboard_s_arguments(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        MODEL.format(source=tmp_path / "in.csv", db=tmp_path / "d.db", target=tmp_path / "o.csv")
    )
    process = build_process(load_model(model))
    reader = process.components["read"]
    assert isinstance(reader, FileReader) and reader._chunk_size == 2
    writer = process.components["save"]
    assert isinstance(writer, SQLWriter) and writer._chunk_size == 10
    assert process.components["copy"].io.inputs == ("x",)


def test_a_missing_library_argument_is_reported_with_its_place(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    text = MODEL.format(source="in.csv", db="d.db", target="o.csv")
    model.write_text(text.replace(", field_names: [x], chunk_size: 1", ", fieldnames: [x]"))
    with pytest.raises(ValidationError) as info:
        build_process(load_model(model))
    message = str(info.value)
    assert "FileWriter has no argument 'fieldnames'; did you mean 'field_names'?" in message
    assert "FileWriter needs the argument 'field_names'" in message


def test_aws_credentials_become_s3fs_storage_options() -> None:
    aws = pytest.importorskip("prefect_aws")
    credentials = aws.AwsCredentials(
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="s3cret",
        aws_session_token="token-1",
        region_name="eu-west-2",
        aws_client_parameters={"endpoint_url": "http://127.0.0.1:9000", "verify": False},
    )
    located = storage(credentials, needed_by="FileReader 'r'")
    assert located.root is None
    assert located.options == {
        "key": "AKIAEXAMPLE",
        "secret": "s3cret",
        "token": "token-1",
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-west-2", "verify": False},
    }
    s3fs = pytest.importorskip("s3fs")
    fs = s3fs.S3FileSystem(**located.options)  # s3fs takes them as they are (no request made)
    assert fs.key == "AKIAEXAMPLE" and fs.secret == "s3cret" and fs.endpoint_url.endswith(":9000")


def test_an_s3_bucket_block_gives_its_credentials_and_a_root_for_relative_paths() -> None:
    aws = pytest.importorskip("prefect_aws")
    bucket = aws.S3Bucket(
        bucket_name="models",
        bucket_folder="runs/",
        credentials=aws.AwsCredentials(aws_access_key_id="K", aws_secret_access_key="S"),
    )
    reader = FileReader(
        name="read", path="day-1/in.parquet", storage_options=bucket, field_names=["x"]
    )
    assert reader._location == "s3://models/runs/day-1/in.parquet"
    assert reader._storage_options == {"key": "K", "secret": "S"}
    absolute = FileReader(
        name="r2", path="s3://other/x.csv", storage_options=bucket, field_names=["x"]
    )
    assert absolute._location == "s3://other/x.csv"


def test_block_references_are_told_from_urls_and_paths() -> None:
    assert is_block_reference("sqlalchemy-connector/warehouse")
    assert is_block_reference("aws-credentials/prod")
    for value in ("sqlite:///a/b.db", "postgresql://u@h/db", "./in.csv", "in.csv", "a/b/c"):
        assert not is_block_reference(value)


def test_storage_options_of_another_kind_are_refused() -> None:
    with pytest.raises(ValidationError, match="FileWriter 'w' needs storage options"):
        FileWriter(name="w", path="out.csv", storage_options=42, field_names=["x"])
