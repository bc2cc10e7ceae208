"""The direct-stream transport of RayConnector, over real loopback TCP."""

import asyncio
import threading
import typing as _t

from hypothesis import given, settings, strategies as st
import pytest

from prefect_plugboard.connector import EndOfStream, Inbox
from prefect_plugboard.connector.ray_connector import DEFAULT_MAX_FRAME_BYTES
from prefect_plugboard.exceptions import ChannelError
from prefect_plugboard.process.ray.auth import StreamSecurity
from prefect_plugboard.process.ray.sender import StreamSender
from prefect_plugboard.process.ray.stream import StreamAddress, StreamReceiver
from tests.helpers import most_in_transit


RUN = StreamSecurity.for_run("run-1", tls=False, loopback=True)


async def open_field(
    maxsize: int, senders: int, security: StreamSecurity = RUN
) -> tuple[Inbox, StreamReceiver, StreamAddress]:
    inbox = Inbox(maxsize, senders, "sink.x")
    receiver = StreamReceiver({"x": inbox}, "127.0.0.1", security, senders=senders, name="sink")
    address = await receiver.start()
    return inbox, receiver, address


def sender_to(
    address: StreamAddress | None,
    name: str,
    batch_size: int,
    security: StreamSecurity = RUN,
    max_frame: int = DEFAULT_MAX_FRAME_BYTES,
) -> StreamSender:
    async def locate() -> StreamAddress | None:
        return address

    return StreamSender.to(locate, name, "x", batch_size, security, max_frame)


async def drain(inbox: Inbox) -> list[_t.Any]:
    received = []
    while True:
        try:
            received.append(await inbox.get())
        except EndOfStream:
            return received


async def produce(sender: StreamSender, items: list[_t.Any]) -> None:
    await sender.connected()
    for item in items:
        if not sender.send_nowait(item):
            await sender.send(item)
    await sender.close()


@settings(max_examples=40, deadline=None)
@given(
    streams=st.lists(st.lists(st.integers(), max_size=300), min_size=1, max_size=3),
    maxsize=st.integers(1, 8),
    batch_size=st.integers(1, 40),
)
def test_every_message_arrives_once_in_order_per_connector(
    streams: list[list[int]], maxsize: int, batch_size: int
) -> None:
    async def scenario() -> list[_t.Any]:
        inbox, receiver, address = await open_field(maxsize, len(streams))
        senders = [sender_to(address, f"c{i}", batch_size) for i in range(len(streams))]
        tagged = [[(i, v) for v in items] for i, items in enumerate(streams)]
        received = asyncio.ensure_future(drain(inbox))
        await asyncio.gather(*(produce(s, t) for s, t in zip(senders, tagged, strict=True)))
        items = await received
        await receiver.close()
        return items

    received = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert len(received) == sum(len(s) for s in streams)
    for i, items in enumerate(streams):
        assert [v for s, v in received if s == i] == items


async def test_a_lone_message_leaves_without_waiting_for_a_batch() -> None:
    inbox, receiver, address = await open_field(16, 1)
    sender = sender_to(address, "c", batch_size=512)
    await sender.connected()
    assert sender.send_nowait("hello")  # 511 short of a batch, and nothing else is sent
    assert await asyncio.wait_for(inbox.get(), 2) == "hello"
    await sender.close()
    await receiver.close()


async def test_a_receiver_that_is_behind_holds_the_sender_back() -> None:
    inbox, receiver, address = await open_field(4, 1)
    sender = sender_to(address, "c", batch_size=4)
    await sender.connected()
    payload = "x" * 1_000_000
    accepted = 0

    async def flood() -> None:
        nonlocal accepted
        for _ in range(200):  # 200 MB, far more than the socket buffers hold
            if not sender.send_nowait(payload):
                await sender.send(payload)
            accepted += 1

    sending = asyncio.ensure_future(flood())
    await asyncio.sleep(0.5)
    assert not sending.done()  # nobody takes from the inbox: the sender waits in send()...
    assert len(inbox) == 4  # ...with the inbox full, and no more than full,
    # ...and only what the inbox and the path to it can hold is accepted (not all 200).
    assert accepted <= 4 + most_in_transit(len(payload), batch_size=4) < 200
    sending.cancel()
    sender.abort()
    await receiver.close()


async def test_senders_drop_messages_once_the_receiver_is_gone() -> None:
    inbox, receiver, address = await open_field(2, 1)
    sender = sender_to(address, "c", batch_size=2)
    await sender.connected()
    inbox.receiver_gone()
    await receiver.close()
    for i in range(10_000):
        if not sender.send_nowait(i):
            await asyncio.wait_for(sender.send(i), 2)
    await asyncio.wait_for(sender.close(), 2)


async def test_a_receiver_that_is_gone_before_the_connection_is_not_waited_for() -> None:
    sender = sender_to(None, "c", batch_size=2)
    await asyncio.wait_for(sender.connected(), 2)
    for i in range(100):
        if not sender.send_nowait(i):
            await asyncio.wait_for(sender.send(i), 2)
    await sender.close()


@pytest.mark.parametrize("batch_size", [1, 64])
async def test_values_of_classes_defined_in_a_test_module_cross_the_stream(batch_size: int) -> None:
    class Point(_t.NamedTuple):
        x: int
        y: int

    inbox, receiver, address = await open_field(8, 1)
    sender = sender_to(address, "c", batch_size)
    await produce(sender, [Point(1, 2), {"nested": [Point(3, 4)]}])
    assert await drain(inbox) == [(1, 2), {"nested": [(3, 4)]}]
    await receiver.close()


class _Unimportable:
    """Pickles fine, but cannot be rebuilt: like a class whose module a worker lacks."""

    def __reduce__(self) -> tuple[_t.Any, tuple[()]]:
        return (_missing_module, ())


def _missing_module() -> _t.NoReturn:
    raise ModuleNotFoundError("No module named 'user_model'")


@pytest.mark.parametrize("batch_size", [1, 64])
async def test_a_message_that_cannot_be_pickled_fails_the_sender_naming_the_connector(
    batch_size: int,
) -> None:
    inbox, receiver, address = await open_field(8, 1)
    sender = sender_to(address, "source.y..sink.x", batch_size)
    # The batch holding the lock fails: at once when it is full, else at the latest at close.
    with pytest.raises(ChannelError, match=r"connector 'source.y..sink.x'.*cannot pickle"):
        await produce(sender, [1, threading.Lock(), 2])
    sender.abort()  # as a failed component's worker does
    received = []
    with pytest.raises(asyncio.TimeoutError):  # the broken stream is never taken as whole
        while True:
            received.append(await asyncio.wait_for(inbox.get(), 0.5))
    assert received == ([1] if batch_size == 1 else [])
    await receiver.close()


async def test_a_message_that_cannot_be_unpickled_fails_the_receiving_field() -> None:
    inbox, receiver, address = await open_field(8, 1)
    sender = sender_to(address, "source.y..sink.x", batch_size=1)
    await produce(sender, [1, _Unimportable(), 2])
    assert await asyncio.wait_for(inbox.get(), 2) == 1  # what came before is kept
    with pytest.raises(
        ChannelError, match=r"connector 'source.y..sink.x' into input 'x'.*user_model"
    ):
        await asyncio.wait_for(inbox.get(), 2)
    await receiver.close()
