"""The limiter books slots; checked on a fake monotonic clock, without waiting."""

from __future__ import annotations

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
    gaps = [b - a for a, b in zip(slots, slots[1:])]
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
    assert lim._take_window() == 1.0  # the sixth waits for the window to move on
    mono.t += 0.5
    assert lim._take_window() == 0.5
    mono.t += 0.5
    assert lim._take_window() == 0.0
    assert len(lim._sent) == 1
