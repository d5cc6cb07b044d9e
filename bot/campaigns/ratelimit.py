"""Telegram's limits, kept on our side so that Telegram never has to say 429.

Unlike PTB's AIORateLimiter (global rate only, and a 429 anywhere stops *all* sending), this
paces sends evenly at the global rate, keeps a "next allowed" time per chat, and lets a 429
hold back only the chat it concerns — unless several arrive at once, which means the global
rate itself is too high (another instance sending too), and then everyone waits.

It works in real (monotonic) time: it paces network calls, not business events.
"""

from __future__ import annotations

import asyncio
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
        if len(self._next_chat) > 50_000:
            self._forget_old()

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
