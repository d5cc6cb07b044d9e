"""Telegram's limits on our side (bot/delivery/limits.py), on virtual pacing time: no waiting.

A fake server records the (virtual) moment each send reaches it, somewhere between the send's
release by the limiter and its answer, as Telegram does; the limits must hold whatever the
delays, and lanes must go in order.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.clock import VirtualPace
from bot.delivery.limits import Lane, Limits, Window
from bot.locks import Locks
from tests.conftest import _postgres_test_url


class Server:
    """Counts what it receives, per chat and overall, at the pace's time."""

    def __init__(self, pace: VirtualPace, seed: int = 0) -> None:
        self.pace = pace
        self.rng = random.Random(seed)
        self.seen: list[tuple[float, int, Lane]] = []

    async def send(self, limits: Limits, chat: int, lane: Lane = Lane.SERVICE) -> None:
        async with limits.sending(chat, lane):
            await self.pace.sleep(self.rng.uniform(0, 0.2))  # on its way
            self.seen.append((self.pace.monotonic(), chat, lane))
            await self.pace.sleep(self.rng.uniform(0, 0.2))  # the answer on its way back

    def busiest(self, seconds: float, chat: int | None = None) -> int:
        times = sorted(t for t, c, _ in self.seen if chat is None or c == chat)
        return max((sum(1 for s in times if t - seconds < s <= t) for t in times), default=0)


async def test_the_global_window_holds_whatever_the_delays() -> None:
    for seed in range(3):
        pace = VirtualPace()
        limits = Limits(10, pace=pace)
        server = Server(pace, seed)
        await asyncio.gather(*(server.send(limits, chat) for chat in range(1, 101)))
        assert len(server.seen) == 100
        assert server.busiest(1.0) <= 10


async def test_one_chat_gets_a_short_burst_then_about_one_a_second() -> None:
    pace = VirtualPace()
    limits = Limits(30, per_chat_interval=1.0, per_chat_burst=3, pace=pace)
    server = Server(pace)
    start = pace.monotonic()
    await asyncio.gather(*(server.send(limits, 7) for _ in range(12)))
    times = [t for t, _, _ in server.seen]
    assert times == sorted(times)  # one chat's messages go one at a time, in order
    assert server.busiest(3.0, chat=7) <= 3
    assert times[2] - start < 1.0  # the burst went at once
    assert times[-1] - start >= 9.0  # and then about one a second


async def test_a_group_gets_20_a_minute() -> None:
    pace = VirtualPace()
    limits = Limits(30, pace=pace)
    server = Server(pace)
    await asyncio.gather(*(server.send(limits, -100500, Lane.STAFF) for _ in range(45)))
    assert server.busiest(60.0, chat=-100500) <= 20
    assert len(server.seen) == 45


async def test_a_busy_chat_does_not_hold_up_the_others() -> None:
    pace = VirtualPace()
    limits = Limits(30, pace=pace)
    server = Server(pace)
    busy = [asyncio.create_task(server.send(limits, 1)) for _ in range(10)]
    await asyncio.sleep(0)
    await asyncio.gather(*(server.send(limits, chat) for chat in range(2, 12)))
    await asyncio.gather(*busy)
    order = [chat for _, chat, _ in server.seen]
    sixth_of_chat_1 = [i for i, chat in enumerate(order) if chat == 1][5]
    assert all(order.index(chat) < sixth_of_chat_1 for chat in range(2, 12))


async def test_replies_go_before_the_marketing_already_waiting() -> None:
    pace = VirtualPace()
    limits = Limits(5, pace=pace)
    server = Server(pace)
    marketing = [asyncio.create_task(server.send(limits, 1000 + n, Lane.MARKETING))
                 for n in range(40)]
    pace.advance(0.5)
    for _ in range(5):
        await asyncio.sleep(0)
    replies = [asyncio.create_task(server.send(limits, 10 + n, Lane.REPLY)) for n in range(5)]
    await asyncio.gather(*marketing, *replies)
    order = [lane for _, _, lane in server.seen]
    last_reply = max(i for i, lane in enumerate(order) if lane is Lane.REPLY)
    # the replies overtook the marketing still waiting: at most the few already let go
    # (the window's worth) went before the last reply
    assert sum(1 for lane in order[:last_reply] if lane is Lane.MARKETING) <= 5 + 5
    assert order[-1] is Lane.MARKETING


async def test_a_reply_lifts_the_marketing_message_ahead_of_it_in_its_chat() -> None:
    pace = VirtualPace()
    limits = Limits(2, pace=pace)
    server = Server(pace)
    crowd = [asyncio.create_task(server.send(limits, 1000 + n, Lane.MARKETING))
             for n in range(30)]
    for _ in range(3):
        await asyncio.sleep(0)
    mine = asyncio.create_task(server.send(limits, 42, Lane.MARKETING))
    await asyncio.sleep(0)
    reply = asyncio.create_task(server.send(limits, 42, Lane.REPLY))
    await asyncio.gather(reply)
    assert [lane for _, chat, lane in server.seen if chat == 42] == \
        [Lane.MARKETING, Lane.REPLY]  # in order, and both before most of the crowd
    assert sum(1 for _, chat, _ in server.seen if chat >= 1000) < 10
    await asyncio.gather(*crowd, mine)


async def test_one_429_holds_its_chat_a_cluster_holds_everyone() -> None:
    pace = VirtualPace()
    limits = Limits(100, pace=pace)
    limits.retry_after(1, 5)
    assert limits.would_wait(1) == 5
    assert limits.would_wait(2) == 0
    assert limits.global_window.wait(pace.monotonic()) == 0
    limits.retry_after(2, 5)
    limits.retry_after(3, 5)  # three within a second: the global rate itself is too high
    assert limits.global_window.wait(pace.monotonic()) == 5


def test_a_send_counts_until_a_window_after_its_answer() -> None:
    window = Window(cap=2, seconds=1.0)
    assert window.wait(10.0) == 0
    window.take()
    window.take()
    assert window.wait(11.5) == float("inf")  # both still in flight: only an answer frees
    window.release(11.5)
    assert window.wait(11.75) == 0.75  # a second after that answer
    window.release(11.9)
    assert window.wait(12.5) == 0  # the first answer's second is over


async def test_instances_share_the_global_rate() -> None:
    pace = VirtualPace()
    limits = Limits(30, pace=pace)
    limits.share(2)  # two instances: 15 a second each, 30 together
    server = Server(pace)
    await asyncio.gather(*(server.send(limits, chat) for chat in range(1, 61)))
    assert server.busiest(1.0) <= 15
    limits.share(1)  # the other stopped: the whole rate again
    assert limits.global_window.cap == 30


@pytest.fixture
def pg_url() -> str:
    url, why = _postgres_test_url()
    if url is None:
        pytest.skip(why)
    return url


async def test_each_running_instance_holds_one_slot(pg_url: str) -> None:
    """On PostgreSQL every instance holds a slot lock while it lives: their count shares the
    rate; a stopped instance's slot goes with its session."""
    first, second = Locks(pg_url), Locks(pg_url)
    try:
        assert await first.instances() == 1
        assert await second.instances() == 2
        assert await first.instances() == 2  # the same slot, counted again
        assert first.slot != second.slot and await first.live_slots() == \
            {first.slot, second.slot}
        await second.close()
        assert await first.instances() == 1
        assert await first.live_slots() == {first.slot}  # the inbox takes back its updates
    finally:
        await first.close()
        await second.close()
    assert await Locks("sqlite://x.sqlite3").instances() == 1
    assert await Locks("sqlite://x.sqlite3").live_slots() is None
