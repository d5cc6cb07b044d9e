"""Telegram's limits, kept on our side so that Telegram never has to say 429.

Unlike PTB's AIORateLimiter (global rate only, and a 429 anywhere stops *all* sending), this
paces sends evenly at the global rate, keeps a "next allowed" time per chat, and lets a 429
hold back only the chat it concerns — unless several arrive at once, which means the global
rate itself is too high (another instance sending too), and then everyone waits.

It works in real (monotonic) time: it paces network calls, not business events.

Telegram (and the emulator, ``bot.sandbox.emulator``) counts a message when *it* handles the
request, somewhere between the moment we start the call and the moment its answer reaches
us; network and scheduling delays move that moment by an amount we cannot know. So the
limiter never assumes: a send occupies the one-second window from when it is let go
(:meth:`SendLimiter.acquire`) until one second after its answer arrived
(:meth:`SendLimiter.release`), and the next message to the same chat waits for
``per_chat_interval`` after that answer. Whatever the delays, the server then never sees more
than ``floor(rate)`` messages in any one-second window, nor two messages to one chat closer
than ``per_chat_interval`` (see docs/campaigns.md, "Sending at Telegram's rate").
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


class SendLimiter:
    """Paces sends: ``rate`` per second overall, ``per_chat_interval`` seconds per chat.

    Use ``async with limiter.sending(chat_id): await bot.send_message(...)``, or
    :meth:`acquire` before the call and :meth:`release` once it has answered (or failed).
    """

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
        self._in_flight = 0  # let go, not answered yet: they count in every window until then
        self._sent: deque[float] = deque()  # when each answered send was answered, in order
        # One message at a time per chat: the next one's turn is known only once the
        # previous one has been answered.
        self._chat_locks: dict[int, tuple[asyncio.Lock, int]] = {}

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
        """Wait until a message to ``chat_id`` may be sent; call :meth:`release` after it."""
        await self._lock_chat(chat_id)
        try:
            for reserve in (self._reserve_chat, self._reserve_global):
                delay = reserve(chat_id) - self._time()
                if delay > 0:
                    await asyncio.sleep(delay)
            # Slots are evenly spaced, but a busy event loop (database writes between sends)
            # wakes several senders at once after a stall, and answers come back late.
            # Telegram counts real sends in any one-second window, so the last word is a
            # log of what is in flight and when each answer came.
            while (wait := self._take_window()) > 0:
                await asyncio.sleep(wait)
        except BaseException:
            self._unlock_chat(chat_id)
            raise
        if len(self._next_chat) > 50_000:
            self._forget_old()

    def release(self, chat_id: int) -> None:
        """The message to ``chat_id`` has been answered (sent, refused or failed): it leaves
        the window one second from now, and the chat's next turn is an interval from now."""
        now = self._time()
        self._in_flight = max(0, self._in_flight - 1)
        self._sent.append(now)
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0),
                                       now + self.per_chat_interval)
        self._unlock_chat(chat_id)

    @asynccontextmanager
    async def sending(self, chat_id: int) -> AsyncIterator[None]:
        """``acquire`` on entry, ``release`` on exit (whatever the call did)."""
        await self.acquire(chat_id)
        try:
            yield
        finally:
            self.release(chat_id)

    async def _lock_chat(self, chat_id: int) -> None:
        lock, users = self._chat_locks.get(chat_id) or (asyncio.Lock(), 0)
        self._chat_locks[chat_id] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._drop_user(chat_id)
            raise

    def _unlock_chat(self, chat_id: int) -> None:
        entry = self._chat_locks.get(chat_id)
        if entry is not None and entry[0].locked():
            entry[0].release()
        self._drop_user(chat_id)

    def _drop_user(self, chat_id: int) -> None:
        entry = self._chat_locks.get(chat_id)
        if entry is None:
            return
        lock, users = entry
        if users <= 1:
            del self._chat_locks[chat_id]
        else:
            self._chat_locks[chat_id] = (lock, users - 1)

    def _take_window(self) -> float:
        """Let a send go now if the last second has room; else the seconds to wait.

        The window holds every send in flight and every send answered less than a second
        ago (Telegram may have counted it as late as its answer)."""
        now = self._time()
        while self._sent and self._sent[0] <= now - 1.0:
            self._sent.popleft()
        if self._in_flight + len(self._sent) < self.window_cap:
            self._in_flight += 1
            return 0.0
        if self._sent:
            return self._sent[0] + 1.0 - now
        return self.interval  # all in flight: look again when one may have been answered

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
        self._next_chat = {c: t for c, t in self._next_chat.items()
                           if t > now or c in self._chat_locks}
