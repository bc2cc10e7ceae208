"""Channel blocks without a Prefect API: fields, validation, the connectors they build."""

from pathlib import Path
import re
import subprocess
import sys
import typing as _t

from prefect.blocks.core import Block
import pydantic
import pytest
import yaml

from prefect_plugboard import (
    AsyncioConnector,
    ConnectorBuilder,
    ConnectorSpec,
    LocalProcess,
    RayConnector,
    RayProcess,
    ValidationError,
)
from prefect_plugboard.blocks import (
    AsyncioChannelBlock,
    ChannelBlock,
    RayChannelBlock,
    channel_block_types,
    resolve_channel_block,
)
from prefect_plugboard.connector.ray_connector import DEFAULT_BATCH_SIZE, DEFAULT_MAX_FRAME_BYTES
from prefect_plugboard.testing import Collector, ListSource, PassThrough, run_in_memory


BLOCK_CLASSES = [AsyncioChannelBlock, RayChannelBlock]
SPEC = ConnectorSpec(source="a.x", target="b.x")
BLOCKS_FOLDER = Path(__file__).parents[2] / "examples" / "blocks"


def test_the_block_types_have_their_slugs_and_names() -> None:
    assert channel_block_types() == {
        "plugboard-asyncio-channel": AsyncioChannelBlock,
        "plugboard-ray-channel": RayChannelBlock,
    }
    assert AsyncioChannelBlock.get_block_type_name() == "Plugboard Asyncio Channel"
    assert RayChannelBlock.get_block_type_name() == "Plugboard Ray Channel"


def test_the_base_block_is_abstract_and_never_registered() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ChannelBlock()  # type: ignore[abstract]
    assert "channelblock" not in channel_block_types()


@pytest.mark.parametrize("block_class", BLOCK_CLASSES)
def test_maxsize_is_required_so_the_block_can_be_a_flow_parameter(
    block_class: type[ChannelBlock[_t.Any]],
) -> None:
    schema = block_class.model_json_schema()
    assert schema["required"] == ["maxsize"]
    assert "0 means unbounded" in schema["properties"]["maxsize"]["description"]
    with pytest.raises(pydantic.ValidationError, match="maxsize"):
        block_class()


def test_ray_batch_size_defaults_to_the_connector_default() -> None:
    assert RayChannelBlock(maxsize=8).batch_size == DEFAULT_BATCH_SIZE
    assert RayChannelBlock.model_json_schema()["properties"]["batch_size"]["minimum"] == 1


@pytest.mark.parametrize(
    ("block_class", "values", "field"),
    [
        (AsyncioChannelBlock, {"maxsize": -1}, "maxsize"),
        (AsyncioChannelBlock, {"maxsize": True}, "maxsize"),
        (AsyncioChannelBlock, {"maxsize": "8"}, "maxsize"),
        (RayChannelBlock, {"maxsize": -5}, "maxsize"),
        (RayChannelBlock, {"maxsize": 8, "batch_size": 0}, "batch_size"),
        (RayChannelBlock, {"maxsize": 8, "batch_size": 2.5}, "batch_size"),
        (RayChannelBlock, {"maxsize": 8, "max_frame_bytes": 0}, "max_frame_bytes"),
        (RayChannelBlock, {"maxsize": 8, "max_frame_bytes": 1 << 32}, "max_frame_bytes"),
    ],
)
def test_invalid_values_are_refused(
    block_class: type[ChannelBlock[_t.Any]], values: dict[str, _t.Any], field: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        block_class.model_validate(values)
    assert [error["loc"] for error in info.value.errors()] == [(field,)]


@pytest.mark.parametrize("block_class", BLOCK_CLASSES)
def test_the_blocks_meet_prefects_block_standards(block_class: type[ChannelBlock[_t.Any]]) -> None:
    # The checks of prefect.testing.standard_test_suites.BlockStandardTestSuite (but the
    # logo's, which needs the network).
    assert block_class.get_description()
    assert block_class._documentation_url
    for name, field in block_class.model_fields.items():
        assert field.description and field.description.endswith("."), name
    example = block_class.get_code_example()
    assert example is not None
    assert re.search(rf"from .* import {block_class.__name__}", example)
    assert re.search(rf'.* = {block_class.__name__}\.load\("BLOCK_NAME"\)', example)


def test_an_asyncio_block_builds_asyncio_connectors_with_its_maxsize() -> None:
    block = AsyncioChannelBlock(maxsize=3)
    connector = block.build(SPEC)
    assert type(connector) is AsyncioConnector
    assert connector.spec == SPEC
    assert connector.settings() == {"maxsize": 3}
    from_dict = block.build({"source": "c.y", "target": "d.y"})
    assert (from_dict.id, from_dict.maxsize) == ("c.y..d.y", 3)


def test_a_ray_block_builds_ray_connectors_with_its_settings() -> None:
    connector = RayChannelBlock(maxsize=0, batch_size=7).build(SPEC)
    assert type(connector) is RayConnector
    assert connector.settings() == {
        "maxsize": 0,
        "batch_size": 7,
        "max_frame_bytes": DEFAULT_MAX_FRAME_BYTES,
    }
    limited = RayChannelBlock(maxsize=0, max_frame_bytes=4096).build(SPEC)
    assert limited.settings()["max_frame_bytes"] == 4096


@pytest.mark.parametrize(
    "block", [AsyncioChannelBlock(maxsize=5), RayChannelBlock(maxsize=5, batch_size=9)]
)
def test_the_connector_builder_builds_what_the_block_builds(block: ChannelBlock[_t.Any]) -> None:
    builder = block.connector_builder()
    assert isinstance(builder, ConnectorBuilder)
    built, direct = builder.build(SPEC), block.build(SPEC)
    assert type(built) is type(direct) is block.connector_class
    assert built.settings() == direct.settings()


async def test_a_block_is_a_process_connector_builder() -> None:
    sink = Collector(name="sink")
    process = LocalProcess(
        components=[ListSource(name="src", items=range(20)), PassThrough(name="p"), sink],
        connectors=[
            ConnectorSpec(source="src.x", target="p.x"),
            {"source": "p.y", "target": "sink.x"},
        ],
        connector_builder=AsyncioChannelBlock(maxsize=1),
    )
    assert [(type(c), c.maxsize) for c in process.connectors.values()] == [
        (AsyncioConnector, 1),
        (AsyncioConnector, 1),
    ]
    await run_in_memory(process)
    assert sink.received == list(range(20))


async def test_an_asyncio_block_on_a_ray_process_is_refused_before_ray_starts() -> None:
    process = RayProcess(
        components=[ListSource(name="src", items=[1]), Collector(name="sink")],
        connectors=[ConnectorSpec(source="src.x", target="sink.x")],
        connector_builder=AsyncioChannelBlock(maxsize=4),
    )
    with pytest.raises(ValidationError, match=r"connectors\[0\]: .*: AsyncioConnector only works"):
        await process.init()


def test_a_resolved_block_builds_its_kind_of_connector() -> None:
    asyncio_connector = resolve_channel_block(
        AsyncioChannelBlock(maxsize=2), AsyncioChannelBlock
    ).build(SPEC)
    assert type(asyncio_connector) is AsyncioConnector
    assert (asyncio_connector.spec, asyncio_connector.maxsize) == (SPEC, 2)
    ray_connector = resolve_channel_block(
        RayChannelBlock(maxsize=6, batch_size=3), RayChannelBlock
    ).build(SPEC)
    assert type(ray_connector) is RayConnector
    assert ray_connector.settings() == {
        "maxsize": 6,
        "batch_size": 3,
        "max_frame_bytes": DEFAULT_MAX_FRAME_BYTES,
    }


def test_a_block_of_the_other_kind_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as info:
        resolve_channel_block(
            RayChannelBlock(maxsize=2), AsyncioChannelBlock, needed_by="connectors[3]"
        )
    message = str(info.value)
    assert (
        "connectors[3] needs a block of type AsyncioChannelBlock "
        "(plugboard-asyncio-channel), but 'unsaved RayChannelBlock' is of type RayChannelBlock "
        "(plugboard-ray-channel)"
    ) in message

    with pytest.raises(ValidationError, match=r"needs a block of type RayChannelBlock"):
        resolve_channel_block(AsyncioChannelBlock(maxsize=2), RayChannelBlock)


def test_something_that_is_not_a_block_is_refused_saying_so() -> None:
    with pytest.raises(ValidationError, match="is not a channel block but a dict"):
        resolve_channel_block({"maxsize": 2}, AsyncioChannelBlock)  # type: ignore[arg-type]


def test_a_saved_block_is_named_by_its_reference() -> None:
    block = AsyncioChannelBlock(maxsize=1)
    assert block.reference == "unsaved AsyncioChannelBlock"
    block._block_document_name = "small"
    block._is_anonymous = False
    assert block.reference == "plugboard-asyncio-channel/small"


@pytest.mark.parametrize("path", sorted(BLOCKS_FOLDER.glob("*.yaml")), ids=lambda p: p.name)
def test_every_ready_block_document_is_valid(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert set(document) == {"block_type_slug", "name", "data"}
    assert path.stem == document["name"]
    block_class = channel_block_types()[document["block_type_slug"]]
    assert set(document["data"]) <= set(block_class.model_fields)
    block_class.model_validate(document["data"])


def test_the_ready_block_documents_cover_every_block_type() -> None:
    slugs = {yaml.safe_load(p.read_text())["block_type_slug"] for p in BLOCKS_FOLDER.glob("*.yaml")}
    assert slugs == set(channel_block_types())


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_package_does_not_import_the_blocks() -> None:
    code = (
        "import sys, prefect_plugboard; "
        "print(sorted(m for m in sys.modules if m.startswith('prefect_plugboard.blocks')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_a_block_is_a_prefect_block_found_by_its_slug() -> None:
    assert Block.get_block_class_from_key("plugboard-asyncio-channel") is AsyncioChannelBlock
    assert Block.get_block_class_from_key("plugboard-ray-channel") is RayChannelBlock
