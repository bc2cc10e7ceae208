"""YAML models that name saved channel blocks."""

from pathlib import Path
import shutil
import uuid

import pytest

from prefect_plugboard import (
    AsyncioChannelBlock,
    RayChannelBlock,
    ValidationError,
    build_process,
    load_model,
)


MODELS = Path(__file__).parents[1] / "unit" / "models"
BASE = (MODELS / "model.yaml").read_text()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(MODELS / "shapes.py", tmp_path / "shapes.py")
    return tmp_path


async def saved(block: AsyncioChannelBlock | RayChannelBlock) -> str:
    name = f"yaml-{uuid.uuid4().hex[:8]}"
    await block.save(name)
    return f"{block.get_block_type_slug()}/{name}"


async def test_connectors_take_their_settings_from_the_named_blocks(folder: Path) -> None:
    tight = await saved(AsyncioChannelBlock(maxsize=1))
    roomy = await saved(AsyncioChannelBlock(maxsize=77))
    text = BASE.replace(
        "  process:\n", f"  process:\n    connector_builder:\n      block: {tight}\n"
    )
    text = text.replace(
        "        target: save.scaled\n", f"        target: save.scaled\n        channel: {roomy}\n"
    )
    (folder / "model.yaml").write_text(text)
    process = build_process(load_model(folder / "model.yaml"))
    sizes = {str(c.spec): c.maxsize for c in process.connectors.values()}
    assert sizes == {"count.n -> scale.n": 1, "scale.scaled -> save.scaled": 77}


async def test_an_unknown_block_is_named_with_its_place_and_a_guess(folder: Path) -> None:
    known = await saved(AsyncioChannelBlock(maxsize=3))
    misspelt = known[:-1]
    text = BASE.replace(
        "        target: save.scaled\n",
        f"        target: save.scaled\n        channel: {misspelt}\n",
    )
    (folder / "model.yaml").write_text(text)
    with pytest.raises(ValidationError) as info:
        build_process(load_model(folder / "model.yaml"))
    message = str(info.value)
    assert "connectors[1].channel" in message and "model.yaml:26" in message
    assert f"did you mean {known!r}" in message


async def test_an_asyncio_block_on_a_ray_process_is_refused(folder: Path) -> None:
    reference = await saved(AsyncioChannelBlock(maxsize=3))
    text = BASE.replace(
        "  process:\n",
        "  process:\n    type: plugboard.process.RayProcess\n"
        f"    connector_builder:\n      block: {reference}\n",
    )
    (folder / "model.yaml").write_text(text)
    with pytest.raises(
        ValidationError,
        match=r"connector_builder.block .*model.yaml:5.*only works within one event loop",
    ):
        build_process(load_model(folder / "model.yaml"))


async def test_a_ray_block_builds_ray_connectors(folder: Path) -> None:
    reference = await saved(RayChannelBlock(maxsize=5, batch_size=7))
    text = BASE.replace(
        "  process:\n",
        "  process:\n    type: plugboard.process.RayProcess\n"
        f"    connector_builder:\n      block: {reference}\n",
    )
    (folder / "model.yaml").write_text(text)
    process = build_process(load_model(folder / "model.yaml"))
    assert {(type(c).__name__, c.maxsize, c.batch_size) for c in process.connectors.values()} == {  # type: ignore[attr-defined]
        ("RayConnector", 5, 7)
    }
