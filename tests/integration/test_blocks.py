"""Channel blocks against the session's Prefect API: saved, loaded by name, used by processes."""

import asyncio
import os
from pathlib import Path
import subprocess
import sys
import typing as _t
import uuid

from prefect import flow
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import validate
import pytest
import yaml

from prefect_plugboard import (
    IO,
    Component,
    ComponentArgsDict,
    ConnectorSpec,
    LocalProcess,
    Process,
    RayConnector,
    RayProcess,
    ValidationError,
)
from prefect_plugboard.blocks import (
    AsyncioChannelBlock,
    ChannelBlock,
    RayChannelBlock,
    load_channel_block,
    resolve_channel_block,
)
from prefect_plugboard.testing import Collector, ListSource, PassThrough
from tests import helpers
from tests.helpers import most_in_transit


ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
SPEC = ConnectorSpec(source="a.x", target="b.x")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def saved(block: ChannelBlock[_t.Any], prefix: str) -> str:
    """Saves `block` under a fresh name; returns its reference."""
    name = unique(prefix)
    await block.asave(name)
    return f"{block.get_block_type_slug()}/{name}"


def run(
    *command: str, api: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PREFECT_API_URL"] = api
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


# ----- saving, loading, registering --------------------------------------------------------


async def test_a_saved_block_loads_by_name_and_by_reference() -> None:
    reference = await saved(RayChannelBlock(maxsize=9, batch_size=3), "load")
    name = reference.partition("/")[2]

    by_name = await RayChannelBlock.aload(name)
    by_reference = await Block.aload(reference)
    from_helper = load_channel_block(reference)
    for block in (by_name, by_reference, from_helper):
        assert type(block) is RayChannelBlock
        assert (block.maxsize, block.batch_size) == (9, 3)
        assert block.reference == reference

    async with get_client() as client:
        block_type = await client.read_block_type_by_slug("plugboard-ray-channel")
        schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
    assert block_type.name == "Plugboard Ray Channel"
    assert block_type.description and "RayProcess" in block_type.description
    assert (
        block_type.code_example and 'RayChannelBlock.load("BLOCK_NAME")' in block_type.code_example
    )
    assert str(block_type.documentation_url) == str(RayChannelBlock._documentation_url)
    assert schema is not None and schema.fields["required"] == ["maxsize"]


@pytest.mark.slow  # a process of its own
async def test_a_fresh_process_loads_a_block_by_reference_through_the_entry_point(
    prefect_api: str,
) -> None:
    reference = await saved(AsyncioChannelBlock(maxsize=7), "fresh")
    code = (
        "import sys\n"
        "from prefect.blocks.core import Block\n"
        "assert not [m for m in sys.modules if m.startswith('prefect_plugboard')]\n"
        f"b = Block.load({reference!r})\n"
        "print(type(b).__module__, b.maxsize)\n"
    )
    result = run(sys.executable, "-c", code, api=prefect_api)
    assert result.stdout.strip().splitlines()[-1] == "prefect_plugboard.blocks.asyncio_channel 7"


@pytest.mark.slow  # a process of its own
async def test_the_prefect_cli_registers_both_block_types(prefect_api: str) -> None:
    result = run(PREFECT, "block", "register", "-m", "prefect_plugboard.blocks", api=prefect_api)
    output = " ".join(result.stdout.split())  # the table may wrap
    assert "Successfully registered 2 blocks" in output
    assert "Plugboard Asyncio Channel" in output
    assert "Plugboard Ray Channel" in output
    async with get_client() as client:
        for slug in ("plugboard-asyncio-channel", "plugboard-ray-channel"):
            block_type = await client.read_block_type_by_slug(slug)
            schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
            assert schema is not None and "maxsize" in schema.fields["properties"], slug


async def test_blocks_save_saves_every_document_and_replaces_only_when_asked(
    prefect_api: str, tmp_path: Path
) -> None:
    def save(*args: str) -> helpers.CliResult:
        return helpers.cli("blocks", "save", *args, cwd=ROOT, api=prefect_api)

    ready = sorted((ROOT / "examples" / "blocks").glob("*.yaml"))
    own = tmp_path / "own.yaml"
    name = unique("script")
    own.write_text(
        f"block_type_slug: plugboard-asyncio-channel\nname: {name}\ndata:\n  maxsize: 5\n"
    )

    first = await asyncio.to_thread(save, *map(str, ready), str(own))
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Saved plugboard-asyncio-channel/{name} (maxsize=5)" in first.stdout
    assert "$ prefect block ls" in first.stdout
    for path in ready:
        document = yaml.safe_load(path.read_text())
        block: Block = await Block.aload(f"{document['block_type_slug']}/{document['name']}")
        assert block.model_dump(include=set(document["data"])) == document["data"]

    own.write_text(own.read_text().replace("maxsize: 5", "maxsize: 6"))
    second = await asyncio.to_thread(save, str(ready[0]), str(own))
    assert second.returncode == 1
    assert "Unchanged " in second.stdout
    assert f"Skipped plugboard-asyncio-channel/{name}: it is saved with maxsize=5" in second.stdout
    saved: AsyncioChannelBlock = await AsyncioChannelBlock.aload(name)
    assert saved.maxsize == 5

    third = await asyncio.to_thread(save, "--overwrite", str(own))
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"Overwrote plugboard-asyncio-channel/{name} (maxsize=6)" in third.stdout
    saved = await AsyncioChannelBlock.aload(name)
    assert saved.maxsize == 6


async def test_blocks_save_checks_every_document_before_saving_any(
    prefect_api: str, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good_name = unique("never")
    good.write_text(
        f"block_type_slug: plugboard-ray-channel\nname: {good_name}\ndata: {{maxsize: 1}}\n"
    )
    bad.write_text("block_type_slug: plugboard-ray-channel\nname: bad\ndata: {maxsize: -1}\n")
    result = await asyncio.to_thread(
        helpers.cli, "blocks", "save", str(good), str(bad), cwd=ROOT, api=prefect_api
    )
    assert result.returncode == 2
    assert f"{bad}: data.maxsize: Input should be greater than or equal to 0" in result.stderr
    assert "Nothing was saved." in result.stderr
    with pytest.raises(ValueError, match="Unable to find block document"):
        await RayChannelBlock.aload(good_name)


# ----- the settings reach the channels: back-pressure ------------------------------------


class Tally:
    """What a source has produced and a sink has consumed; the source's lead at each item.

    Used directly in a LocalProcess (one event loop) and as a Ray actor for a RayProcess.
    """

    def __init__(self) -> None:
        self.produced = 0
        self.consumed = 0
        self.leads: list[int] = []
        self._progress = asyncio.Condition()

    async def produce(self) -> None:
        """Counts one more item produced, and records how far ahead of the sink it is."""
        self.produced += 1
        self.leads.append(self.produced - self.consumed)
        async with self._progress:
            self._progress.notify_all()

    async def consume(self) -> None:
        self.consumed += 1

    async def wait_until_produced(self, count: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self.produced >= count)

    async def report(self) -> list[int]:
        return self.leads


class RayTally:
    """The `Tally` interface over a Tally actor, for components on Ray workers."""

    def __init__(self, actor: _t.Any) -> None:
        self._actor = actor

    async def produce(self) -> None:
        await self._actor.produce.remote()

    async def consume(self) -> None:
        await self._actor.consume.remote()

    async def wait_until_produced(self, count: int) -> None:
        await self._actor.wait_until_produced.remote(count)


class CountingSource(Component):
    """Emits `(index, payload)` for `count` items as fast as it may, telling the tally."""

    io = IO(outputs=["x"])

    def __init__(
        self,
        tally: _t.Any,
        count: int,
        payload_bytes: int = 0,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._tally = tally
        self._count = count
        self._payload = b"\0" * payload_bytes
        self._next = 0

    async def step(self) -> None:
        if self._next == self._count:
            await self.io.close()
            return
        await self._tally.produce()
        self.x = (self._next, self._payload)
        self._next += 1


class SlowSink(Component):
    """Takes its time over every item; can wait on its first item until the source is done."""

    io = IO(inputs=["x"])
    exports = ["received"]

    def __init__(
        self,
        tally: _t.Any,
        seconds_per_item: float,
        wait_for_items: int = 0,
        **kwargs: _t.Unpack[ComponentArgsDict],
    ) -> None:
        super().__init__(**kwargs)
        self._tally = tally
        self._seconds_per_item = seconds_per_item
        self._wait_for_items = wait_for_items
        self.received: list[int] = []

    async def step(self) -> None:
        await self._tally.consume()
        if self._wait_for_items and not self.received:
            await self._tally.wait_until_produced(self._wait_for_items)
        self.received.append(self.x[0])
        await asyncio.sleep(self._seconds_per_item)


def source_and_sink(
    tally: _t.Any,
    count: int,
    *,
    seconds_per_item: float,
    payload_bytes: int = 0,
    wait_for_items: int = 0,
) -> list[Component]:
    return [
        CountingSource(name="source", tally=tally, count=count, payload_bytes=payload_bytes),
        SlowSink(
            name="sink",
            tally=tally,
            seconds_per_item=seconds_per_item,
            wait_for_items=wait_for_items,
        ),
    ]


async def run_process(process: Process) -> list[int]:
    async with process:
        await process.run()
    received: list[int] = process.components["sink"].received
    return received


ITEMS = 60


async def test_a_local_process_with_a_saved_block_holds_the_source_to_its_maxsize() -> None:
    bounded = load_channel_block(await saved(AsyncioChannelBlock(maxsize=1), "bounded"))
    unbounded = load_channel_block(await saved(AsyncioChannelBlock(maxsize=0), "unbounded"))

    tally = Tally()
    process = LocalProcess(
        components=source_and_sink(tally, ITEMS, seconds_per_item=0.005),
        connectors=[ConnectorSpec(source="source.x", target="sink.x")],
        connector_builder=bounded,
    )
    assert [c.maxsize for c in process.connectors.values()] == [1]
    assert await run_process(process) == list(range(ITEMS))
    # Each item the source makes is at most the one in the channel (maxsize 1) and itself
    # ahead of what the sink has taken: the source waited for the sink.
    assert max(tally.leads) == 1 + 1

    # The same graph through the unbounded block, the sink holding its first item until the
    # source is done: nothing stops the source, which runs all the way ahead.
    tally = Tally()
    process = LocalProcess(
        components=source_and_sink(tally, ITEMS, seconds_per_item=0.005, wait_for_items=ITEMS),
        connectors=[ConnectorSpec(source="source.x", target="sink.x")],
        connector_builder=unbounded,
    )
    assert await run_process(process) == list(range(ITEMS))
    assert max(tally.leads) >= ITEMS - 1


RAY_ITEMS = 64  # more than the path holds (about 45 items of 1 MiB here)
PAYLOAD = 1 << 20


async def run_on_ray(
    block: ChannelBlock[_t.Any], wait_for_items: int = 0
) -> tuple[list[int], list[int]]:
    """Runs the source and the slow sink on Ray; returns what arrived and the source's leads."""
    import ray

    actor: _t.Any = ray.remote(Tally).options(num_cpus=0).remote()
    process = RayProcess(
        components=source_and_sink(
            RayTally(actor),
            RAY_ITEMS,
            seconds_per_item=0.005,
            payload_bytes=PAYLOAD,
            wait_for_items=wait_for_items,
        ),
        connectors=[ConnectorSpec(source="source.x", target="sink.x")],
        connector_builder=block,
    )
    assert [c.settings() for c in process.connectors.values()] == [block.connector_settings()]
    try:
        received = await run_process(process)
        leads: list[int] = await actor.report.remote()
    finally:
        ray.kill(actor)
    return received, leads


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_a_ray_process_runs_on_the_channels_of_a_saved_block() -> None:
    block = load_channel_block(
        await saved(RayChannelBlock(maxsize=2, batch_size=3, max_frame_bytes=1 << 16), "ray")
    )
    sink = Collector(name="sink")
    process = RayProcess(
        components=[ListSource(name="src", items=range(500)), PassThrough(name="relay"), sink],
        connectors=[
            ConnectorSpec(source="src.x", target="relay.x"),
            ConnectorSpec(source="relay.y", target="sink.x"),
        ],
        connector_builder=block,
    )
    assert [(type(c), c.settings()) for c in process.connectors.values()] == [
        (RayConnector, {"maxsize": 2, "batch_size": 3, "max_frame_bytes": 1 << 16}),
        (RayConnector, {"maxsize": 2, "batch_size": 3, "max_frame_bytes": 1 << 16}),
    ]
    async with process:
        await process.run()
    assert process.components["sink"].received == list(range(500))


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_a_ray_process_with_a_saved_block_holds_the_source_to_its_maxsize() -> None:
    bounded = load_channel_block(await saved(RayChannelBlock(maxsize=1, batch_size=1), "rb"))
    unbounded = load_channel_block(await saved(RayChannelBlock(maxsize=0, batch_size=1), "ru"))
    bound = 1 + most_in_transit(PAYLOAD, batch_size=1) + 1
    assert bound < RAY_ITEMS - 1, "the check needs more items than the path can hold"

    received, leads = await run_on_ray(bounded)
    assert received == list(range(RAY_ITEMS))
    # The inbox (maxsize 1), the item being made, and what the network path can hold.
    assert max(leads) <= bound, (max(leads), bound)

    # The unbounded block, the sink holding its first item until the source is done: nothing
    # stops the source, which runs all the way ahead, beyond the bound above.
    received, leads = await run_on_ray(unbounded, wait_for_items=RAY_ITEMS)
    assert received == list(range(RAY_ITEMS))
    assert max(leads) >= RAY_ITEMS - 1 > bound


# ----- a block as a flow parameter ---------------------------------------------------------


@flow(name="channel-parameter", persist_result=False)
async def describe_channel(channel: AsyncioChannelBlock) -> tuple[str, int]:
    connector = channel.build(SPEC)
    return type(connector).__name__, connector.maxsize


async def test_a_block_is_a_flow_parameter_given_as_a_block_or_a_reference() -> None:
    reference = await saved(AsyncioChannelBlock(maxsize=11), "param")
    block = await AsyncioChannelBlock.aload(reference.partition("/")[2])
    assert await describe_channel(block) == ("AsyncioConnector", 11)

    # What a deployment run does with `--params '{"channel": {"$ref": ...}}'`: the server
    # checks the parameters against the flow's schema, then the flow run resolves them.
    parameters = {"channel": {"$ref": {"block_document_slug": reference}}}
    schema = parameter_schema(describe_channel.fn).model_dump_for_openapi()
    definition = schema["definitions"]["AsyncioChannelBlock"]
    assert definition["block_type_slug"] == "plugboard-asyncio-channel"  # the UI's block picker
    validate(parameters, schema, raise_on_error=True)
    resolved = describe_channel.validate_parameters(parameters)
    assert type(resolved["channel"]) is AsyncioChannelBlock
    assert resolved["channel"].maxsize == 11

    ray_reference = await saved(RayChannelBlock(maxsize=2), "param-ray")
    with pytest.raises(ParameterTypeError):
        describe_channel.validate_parameters(
            {"channel": {"$ref": {"block_document_slug": ray_reference}}}
        )


# ----- errors ------------------------------------------------------------------------------


async def run_with_channel(reference: str) -> None:
    """What a user's script does: build the process from a saved channel, then run it."""
    process = LocalProcess(
        components=[ListSource(name="src", items=[1]), Collector(name="sink")],
        connectors=[ConnectorSpec(source="src.x", target="sink.x")],
        connector_builder=load_channel_block(reference),
    )
    async with process:
        await process.run()


async def test_a_missing_block_is_named_with_the_saved_one_it_probably_meant() -> None:
    reference = await saved(AsyncioChannelBlock(maxsize=3), "typo-target")
    misspelt = reference[:-1] + ("x" if reference[-1] != "x" else "y")
    with pytest.raises(ValidationError) as info:  # from loading it: no process exists yet
        await run_with_channel(misspelt)
    assert "load_channel_block" in {entry.name for entry in info.traceback}
    message = str(info.value)
    assert f"channel block {misspelt!r}" in message
    assert f"no AsyncioChannelBlock named {misspelt.partition('/')[2]!r} is saved" in message
    assert f"did you mean {reference!r}?" in message


async def test_a_block_of_the_wrong_type_is_refused_before_anything_starts() -> None:
    ray_reference = await saved(RayChannelBlock(maxsize=2), "wrong-kind")
    secret_name = unique("not-a-channel")
    await Secret(value="s3cr3t-value").asave(secret_name)

    with pytest.raises(ValidationError) as info:
        resolve_channel_block(ray_reference, AsyncioChannelBlock).build(SPEC)
    message = str(info.value)
    assert f"channel block {ray_reference!r}" in message
    assert "needs a block of type AsyncioChannelBlock" in message
    assert "is of type RayChannelBlock (plugboard-ray-channel)" in message

    with pytest.raises(ValidationError) as info:  # from loading it: no process exists yet
        await run_with_channel(f"secret/{secret_name}")
    assert "load_channel_block" in {entry.name for entry in info.traceback}
    message = str(info.value)
    assert f"channel block 'secret/{secret_name}'" in message
    assert "'secret' is not a channel block type" in message
    assert "s3cr3t" not in message

    assert type(resolve_channel_block(ray_reference, RayChannelBlock).build(SPEC)) is RayConnector


async def test_a_malformed_or_misspelt_reference_gets_a_suggestion() -> None:
    reference = await saved(RayChannelBlock(maxsize=2), "suggest")
    name = reference.partition("/")[2]

    with pytest.raises(ValidationError) as info:
        load_channel_block(name, location="connectors[0].channel")
    message = str(info.value)
    assert "connectors[0].channel" in message
    assert f"{name!r} is not a channel block reference" in message
    assert f"did you mean {reference!r}?" in message

    with pytest.raises(ValidationError) as info:
        load_channel_block(f"plugboard-ray-chanel/{name}")
    assert f"did you mean {reference!r}?" in str(info.value)

    with pytest.raises(ValidationError) as info:
        load_channel_block("plugboard-asyncio-chanel/nothing-like-it-at-all-saved")
    assert "did you mean 'plugboard-asyncio-channel/nothing-like-it-at-all-saved'?" in str(
        info.value
    )
