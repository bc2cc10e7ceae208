import asyncio

import pytest

from prefect_plugboard.connector import EMPTY, EndOfStream, Inbox, LocalSender
from prefect_plugboard.exceptions import ChannelClosedError


async def test_messages_arrive_in_order_then_the_stream_ends() -> None:
    inbox = Inbox(maxsize=10)
    sender = LocalSender(inbox)
    for i in range(5):
        await sender.send(i)
    await sender.close()
    assert [await inbox.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(EndOfStream):
        await inbox.get()
    assert inbox.ended


async def test_get_nowait_reports_empty_without_waiting() -> None:
    inbox = Inbox(maxsize=2)
    assert inbox.get_nowait() is EMPTY
    assert inbox.put_nowait("a")
    assert inbox.get_nowait() == "a"


async def test_a_full_inbox_makes_the_sender_wait_until_there_is_room() -> None:
    inbox = Inbox(maxsize=2)
    sender = LocalSender(inbox)
    assert sender.send_nowait(1) and sender.send_nowait(2)
    assert not sender.send_nowait(3)
    blocked = asyncio.ensure_future(sender.send(3))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert len(inbox) == 2
    assert inbox.get_nowait() == 1
    await blocked
    assert [inbox.get_nowait(), inbox.get_nowait()] == [2, 3]


async def test_the_stream_ends_only_when_every_sender_has_closed() -> None:
    inbox = Inbox(maxsize=4, senders=2)
    a, b = LocalSender(inbox, "a"), LocalSender(inbox, "b")
    await a.send("a1")
    await a.close()
    waiting = asyncio.ensure_future(inbox.get())
    assert await waiting == "a1"
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    await b.send("b1")
    assert await waiting == "b1"
    await b.close()
    with pytest.raises(EndOfStream):
        await inbox.get()


async def test_a_finished_receiver_releases_waiting_senders_and_drops_later_messages() -> None:
    inbox = Inbox(maxsize=1)
    sender = LocalSender(inbox)
    await sender.send(1)
    blocked = asyncio.ensure_future(sender.send(2))
    await asyncio.sleep(0)
    inbox.receiver_gone()
    await asyncio.wait_for(blocked, 1)
    assert sender.send_nowait(3)
    assert len(inbox) == 0


async def test_sending_after_close_is_an_error() -> None:
    sender = LocalSender(Inbox(), "a.x..b.x")
    await sender.close()
    with pytest.raises(ChannelClosedError, match="a.x..b.x"):
        sender.send_nowait(1)
    with pytest.raises(ChannelClosedError):
        await sender.send(1)


async def test_a_cancelled_waiting_sender_does_not_strand_the_next_one() -> None:
    inbox = Inbox(maxsize=1)
    await inbox.put(0)
    first = asyncio.ensure_future(inbox.put(1))
    second = asyncio.ensure_future(inbox.put(2))
    await asyncio.sleep(0)
    assert inbox.get_nowait() == 0  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs: `second` must get the room
    await asyncio.wait_for(second, 1)
    assert inbox.get_nowait() == 2


def test_maxsize_zero_means_unbounded() -> None:
    inbox = Inbox(maxsize=0)
    for i in range(100_000):
        assert inbox.put_nowait(i)
    assert len(inbox) == 100_000


async def test_a_cancelled_get_that_ends_late_leaves_the_next_get_waiting_for_messages() -> None:
    # A runner waiting on a field and on events cancels the get() that lost the race and at
    # once waits again; the cancelled get() finishes only afterwards.
    inbox = Inbox(maxsize=2)
    sender = LocalSender(inbox)
    lost = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)  # `lost` is now waiting
    lost.cancel()
    asyncio.get_running_loop().call_soon(sender.send_nowait, 42)  # after `lost` has ended
    async with asyncio.timeout(2):
        assert await inbox.get() == 42
    assert lost.cancelled()
