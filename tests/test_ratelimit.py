"""The limiter books slots; checked on a fake monotonic clock, without waiting."""

from __future__ import annotations

import itertools

from bot.campaigns.ratelimit import SendLimiter


class Mono:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_global_slots_are_evenly_spaced() -> None:
    mono = Mono()
    lim = SendLimiter(rate=10, per_chat_interval=1.0, monotonic=mono)
    slots = [lim._reserve_global(chat) for chat in range(1, 21)]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(abs(g - 0.1) < 1e-9 for g in gaps)
    # any one-second window holds at most `rate` sends
    assert sum(1 for s in slots if slots[0] <= s < slots[0] + 1.0 - 1e-6) == 10


def test_same_chat_waits_its_interval_without_holding_others() -> None:
    mono = Mono()
    lim = SendLimiter(rate=100, per_chat_interval=1.0, monotonic=mono)
    first = lim._reserve_chat(7)
    lim._reserve_global(7)
    second = lim._reserve_chat(7)
    assert second - first >= 1.0
    # chat 8 is not held up by chat 7's wait: its global slot comes right away
    assert lim._reserve_chat(8) == mono.t
    assert lim._reserve_global(8) < mono.t + 0.1


def test_global_congestion_pushes_the_chats_next_turn() -> None:
    mono = Mono()
    lim = SendLimiter(rate=1, per_chat_interval=1.0, monotonic=mono)
    for chat in range(5):
        lim._reserve_global(chat)  # the next global slot is 5 s away
    lim._reserve_chat(9)
    sent_at = lim._reserve_global(9)
    assert sent_at == mono.t + 5
    assert lim._reserve_chat(9) >= sent_at + 1.0  # a second after it really went out


def test_one_429_holds_only_its_chat_but_a_cluster_holds_all() -> None:
    mono = Mono()
    lim = SendLimiter(rate=100, per_chat_interval=0.0, monotonic=mono)
    lim.retry_after(1, 5)
    assert lim.would_wait(1) == 5
    assert lim._reserve_global(2) < mono.t + 1  # others go on
    lim.retry_after(2, 5)
    lim.retry_after(3, 5)
    assert lim._reserve_global(4) >= mono.t + 5  # three 429s in a second: everyone waits



def test_senders_woken_together_after_a_stall_still_keep_the_window() -> None:
    """A stalled loop wakes many senders at once; no one-second window may exceed the rate."""
    mono = Mono()
    lim = SendLimiter(rate=5, per_chat_interval=0.0, monotonic=mono)
    assert [lim._take_window() for _ in range(5)] == [0.0] * 5  # five sends in this second
    for chat in range(5):
        lim.release(chat)  # all answered at once
    assert lim._take_window() == 1.0  # the sixth waits for the window to move on
    mono.t += 0.5
    assert lim._take_window() == 0.5
    mono.t += 0.5
    assert lim._take_window() == 0.0
    assert len(lim._sent) == 0 and lim._in_flight == 1


def test_a_send_counts_until_one_second_after_its_answer() -> None:
    """Telegram may count a message as late as its answer: a slow answer keeps its place in
    the window longer, and a send still in flight always counts."""
    mono = Mono()
    lim = SendLimiter(rate=2, per_chat_interval=0.0, monotonic=mono)
    assert lim._take_window() == 0.0
    assert lim._take_window() == 0.0
    mono.t += 1.5  # neither has been answered: both still count
    assert lim._take_window() > 0
    lim.release(1)  # the first answer comes 1.5 s after it went
    mono.t += 0.25
    assert lim._take_window() == 0.75  # until a second after that answer
    lim.release(2)
    mono.t += 0.75  # the first answer's second is over, the second's is not
    assert lim._take_window() == 0.0
    assert lim._take_window() == 0.25


def _simulate(lim: SendLimiter, mono: Mono, *, chats: int, sends: int, seed: int
              ) -> tuple[list[float], dict[int, list[float]]]:
    """Senders to ``chats`` chats, each send reaching the server and answering after random
    delays (up to 0.3 s each way). Returns the server's times: all, and per chat."""
    import heapq
    import random

    rng = random.Random(seed)
    server: list[float] = []
    per_chat: dict[int, list[float]] = {}
    answers: list[tuple[float, int]] = []  # (answer time, chat)
    busy: set[int] = set()
    todo = [i % chats for i in range(sends)]
    while todo or answers:
        # answers due by now come back first
        while answers and answers[0][0] <= mono.t:
            _, chat = heapq.heappop(answers)
            lim.release(chat)
            busy.discard(chat)
        chat = next((c for c in todo if c not in busy and lim.would_wait(c) == 0), None)
        if chat is not None and lim._take_window() == 0.0:
            todo.remove(chat)
            busy.add(chat)
            lim._next_chat[chat] = mono.t + lim.per_chat_interval  # as acquire books it
            seen = mono.t + rng.uniform(0, 0.3)
            server.append(seen)
            per_chat.setdefault(chat, []).append(seen)
            heapq.heappush(answers, (seen + rng.uniform(0, 0.3), chat))
            continue
        mono.t += 0.001
    return sorted(server), per_chat


def test_whatever_the_delays_the_server_never_sees_too_many() -> None:
    """However late a send reaches the server and its answer comes back, the server never
    counts more than ``rate`` sends in a one-second window (t - 1, t], nor two to one chat
    closer than the per-chat interval, and the sending still keeps up a useful rate."""
    for seed in range(3):
        mono = Mono()
        start = mono.t
        lim = SendLimiter(rate=10, per_chat_interval=1.0, monotonic=mono)
        server, per_chat = _simulate(lim, mono, chats=15, sends=200, seed=seed)
        assert len(server) == 200
        busiest = max(sum(1 for s in server if t - 1.0 < s <= t) for t in server)
        assert busiest <= 10
        gaps = [b - a for times in per_chat.values() for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 1.0
        assert 200 / (mono.t - start) > 5  # delays of up to 0.6 s cost at most half
