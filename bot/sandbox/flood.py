"""Telegram's flood limits as the emulator enforces them, and the pacing it reports.

A message past a limit gets 429 with ``retry_after``: ``global_rate`` messages per second
overall (a sliding 1-second window), ``per_chat_burst`` to one private chat in any
``per_chat_burst * per_chat_interval`` seconds, ``group_per_minute`` to one group. The knobs
and ``send_times`` stay on the emulator, where tests and benchmarks set and read them; the
sliding windows live here.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import TYPE_CHECKING

from .errors import ApiError

if TYPE_CHECKING:
    from .emulator import TelegramEmulator
    from .state import Chat


class FloodLimits:
    """The sliding windows of recent sends, checked before a message and recorded after it."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emu = emulator
        self.recent: deque[float] = deque()
        self.groups: dict[int, deque[float]] = {}
        self.private: dict[int, deque[float]] = {}

    def check(self, chat: Chat) -> None:
        """Refuse with 429 a message past Telegram's flood limits (checked, not yet recorded)."""
        emu = self.emu
        now = emu.pace.monotonic()
        waits: list[float] = []
        if emu.global_rate is not None:
            window = self.recent
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= emu.global_rate:
                # The send is allowed once enough of the oldest sends leave the window.
                index = min(len(window) - 1, math.floor(len(window) - emu.global_rate))
                waits.append(window[index] + 1.0 - now)
        if emu.per_chat_interval is not None and chat.type == "private":
            waits.append(window_wait(self.private.get(chat.id), now,
                                     emu.per_chat_burst,
                                     emu.per_chat_burst * emu.per_chat_interval))
        if emu.group_per_minute is not None and chat.type != "private":
            waits.append(window_wait(self.groups.get(chat.id), now,
                                     emu.group_per_minute, 60.0))
        if any(w > 0 for w in waits):
            retry_after = max(1, math.ceil(max(waits)))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def record(self, chat: Chat) -> None:
        """Count a message just posted in the windows and in the emulator's ``send_times``."""
        now = self.emu.pace.monotonic()
        self.recent.append(now)
        if len(self.recent) > 100_000:
            self.recent.popleft()
        sends = self.private if chat.type == "private" else self.groups
        sends.setdefault(chat.id, deque(maxlen=1000)).append(now)
        self.emu.send_times.setdefault(chat.id, []).append(now)


def window_wait(sends: deque[float] | None, now: float, cap: int, seconds: float) -> float:
    """Seconds until one more send fits ``cap`` sends in any ``seconds`` (0: it fits now)."""
    if not sends:
        return 0.0
    recent = [t for t in sends if t > now - seconds]
    if len(recent) < cap:
        return 0.0
    return recent[len(recent) - cap] + seconds - now


def min_send_gap(send_times: dict[int, list[float]], chat_id: int | None = None) -> float | None:
    """Shortest time between two messages to one chat (or to ``chat_id``); None if < 2."""
    gaps = [
        b - a
        for cid, times in send_times.items()
        if chat_id is None or cid == chat_id
        for a, b in itertools.pairwise(times)
    ]
    return min(gaps) if gaps else None


def max_sends_per_second(send_times: dict[int, list[float]]) -> int:
    """The most messages in any window (t - 1 s, t], the window the global limit uses."""
    times = sorted(t for chat in send_times.values() for t in chat)
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most
