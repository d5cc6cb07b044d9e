"""Telegram's limits, kept on our side so that Telegram never has to say 429.

Unlike PTB's AIORateLimiter (global rate only, and a 429 anywhere stops *all* sending), this
paces sends evenly at the global rate, keeps a "next allowed" time per chat, and lets a 429
hold back only the chat it concerns — unless several arrive at once, which means the global
rate itself is too high (another instance sending too), and then everyone waits.

It works in real (monotonic) time: it paces network calls, not business events.
"""

from __future__ import annotations

import asyncio
import math
import logging
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class SendLimiter:
    """Paces sends: ``rate`` per second overall, ``per_chat_interval`` seconds per chat."""

    def __init__(
        self,
        rate: float,
        per_chat_interval: float = 1.0,
        *,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.per_chat_interval = per_chat_interval
        self._time = monotonic or (lambda: asyncio.get_running_loop().time())
        self._next_global = 0.0
        self._next_chat: dict[int, float] = {}
        self._recent_429: deque[float] = deque(maxlen=3)
        self.window_cap = max(1, math.floor(rate))  # sends allowed in any one-second window
        self._sent: deque[float] = deque()

    def _reserve_chat(self, chat_id: int) -> float:
        """Book this chat's next turn; a chat waiting for its turn holds no global slot."""
        slot = max(self._time(), self._next_chat.get(chat_id, 0.0))
        self._next_chat[chat_id] = slot + self.per_chat_interval
        return slot

    def _reserve_global(self, chat_id: int) -> float:
        """Book the next global slot, evenly spaced at the overall rate."""
        slot = max(self._time(), self._next_global)
        self._next_global = slot + self.interval
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0),
                                       slot + self.per_chat_interval)
        return slot

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to ``chat_id`` may be sent."""
        for reserve in (self._reserve_chat, self._reserve_global):
            delay = reserve(chat_id) - self._time()
            if delay > 0:
                await asyncio.sleep(delay)
        # Slots are evenly spaced, but a busy event loop (database writes between sends)
        # wakes several senders at once after a stall. Telegram counts real sends in any
        # one-second window, so the last word is a log of actual send times.
        while (wait := self._take_window()) > 0:
            await asyncio.sleep(wait)
        if len(self._next_chat) > 50_000:
            self._forget_old()

    def _take_window(self) -> float:
        """Record a send now if the last second has room; else the seconds until it has."""
        now = self._time()
        while self._sent and self._sent[0] <= now - 1.0:
            self._sent.popleft()
        if len(self._sent) < self.window_cap:
            self._sent.append(now)
            return 0.0
        return self._sent[0] + 1.0 - now

    def would_wait(self, chat_id: int) -> float:
        """Seconds a message to this chat would wait for its own per-chat slot."""
        return max(0.0, self._next_chat.get(chat_id, 0.0) - self._time())

    def retry_after(self, chat_id: int, seconds: float) -> None:
        """Telegram said 429: hold this chat back; if 429s cluster, hold everyone back."""
        now = self._time()
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), now + seconds)
        self._recent_429.append(now)
        if len(self._recent_429) == self._recent_429.maxlen and now - self._recent_429[0] < 1.0:
            log.warning("several 429s within a second: pausing all sends for %.1fs", seconds)
            self._next_global = max(self._next_global, now + seconds)

    def _forget_old(self) -> None:
        now = self._time()
        self._next_chat = {c: t for c, t in self._next_chat.items() if t > now}
