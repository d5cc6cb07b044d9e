"""Telegram's flood limits, kept on our side so that Telegram never has to say 429.

Three limits, each a sliding window: about ``rate`` messages per second overall, a short
burst then about one a second per private chat, 20 a minute per group. Telegram counts a
message when *it* handles the request, somewhere between the moment we start the call and
the moment its answer reaches us, so a send occupies its windows from when it is let go until
a window's length after its answer: whatever the delays, the server never sees more than a
window allows.

Sends wait in lanes: the reply to an owner's own action first, then staff-group traffic,
scheduled service messages, marketing. The global gate lets the best waiting lane go first,
so marketing takes only what the others leave. A chat waiting for its own window holds no
global slot, so one busy chat never holds up the others; messages to one chat go one at a
time, in order, and a reply queued behind a marketing message lifts that message's lane.

Unlike PTB's AIORateLimiter (global rate only, and a 429 anywhere stops *all* sending), a
429 holds back only its chat, unless several arrive within a second: then the global rate is
too high (another instance sending too?) and everyone waits.

Time is a :class:`bot.clock.Pace`: real in production, virtual in tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import IntEnum

from bot.clock import Pace, RealPace

log = logging.getLogger(__name__)

GROUP_PER_MINUTE = 20


class Lane(IntEnum):
    """Who waits for a message, best first."""

    REPLY = 0  # an owner waits for the answer to their own action
    STAFF = 1  # the staff group: ticket topics, cards, relays, notices
    SERVICE = 2  # scheduled follow-ups and reminders
    MARKETING = 3  # campaigns: only what the others leave


@dataclass
class Window:
    """At most ``cap`` sends in any ``seconds``; a send counts from when it is let go until
    ``seconds`` after its answer."""

    cap: int
    seconds: float
    in_flight: int = 0
    answered: deque[float] = field(default_factory=deque)
    hold_until: float = 0.0  # Telegram said 429: nothing before this

    def wait(self, now: float) -> float:
        """Seconds until a send may go (0: now); ``math.inf`` while only answers can free it."""
        if now < self.hold_until:
            return self.hold_until - now
        while self.answered and self.answered[0] <= now - self.seconds:
            self.answered.popleft()
        if self.in_flight + len(self.answered) < self.cap:
            return 0.0
        if self.answered:
            return self.answered[0] + self.seconds - now
        return math.inf

    def take(self) -> None:
        self.in_flight += 1

    def release(self, now: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.answered.append(now)

    def idle(self, now: float) -> bool:
        return self.in_flight == 0 and self.wait(now) == 0.0 and not self.answered


@dataclass(eq=False)
class _Waiter:
    lane: int
    seq: int
    chat_id: int | None
    future: asyncio.Future[None]
    live: bool = True

    def __lt__(self, other: _Waiter) -> bool:
        return (self.lane, self.seq) < (other.lane, other.seq)


class Limits:
    """Paces sends: ``rate`` a second overall, per-chat and per-group windows, in lanes.

    ``async with limits.sending(chat_id, lane):`` around the one sender's Bot API call; or
    :meth:`acquire` before the call and :meth:`release` once it has answered or failed.
    """

    def __init__(self, rate: float, *, per_chat_interval: float = 1.0, per_chat_burst: int = 3,
                 group_per_minute: int = GROUP_PER_MINUTE, pace: Pace | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.pace = pace or RealPace()
        self.full_rate = rate
        self.interval = 1.0 / rate
        self.global_window = Window(max(1, math.floor(rate)), 1.0)
        self.per_chat_interval = per_chat_interval
        self.per_chat_burst = max(1, per_chat_burst)
        self.group_per_minute = group_per_minute
        self._chats: dict[int, Window] = {}
        self._next_global = 0.0
        self._recent_429: deque[float] = deque(maxlen=3)
        self._heap: list[_Waiter] = []
        self._by_chat: dict[int, _Waiter] = {}  # a chat's waiter in the gate, if any
        self._seq = itertools.count()
        self._gate: asyncio.Task[None] | None = None
        # One message at a time per chat, in order; the lane of the best one waiting.
        self._chat_locks: dict[int, tuple[asyncio.Lock, int, int]] = {}

    def share(self, instances: int) -> None:
        """``instances`` processes send to Telegram: this one takes its part of the global
        rate (per-chat and group windows stay: one chat's or the group's messages come from
        one instance, the one handling its updates or doing the staff side)."""
        rate = self.full_rate / max(1, instances)
        if abs(rate - 1.0 / self.interval) > 1e-9:
            log.info("sending at %.1f messages/s: %d instance(s) share %.0f/s", rate,
                     instances, self.full_rate)
        self.interval = 1.0 / rate
        self.global_window.cap = max(1, math.floor(rate))

    # ------------------------------------------------------------------ windows

    def chat_window(self, chat_id: int) -> Window:
        window = self._chats.get(chat_id)
        if window is None:
            if chat_id < 0:  # groups and supergroups
                window = Window(self.group_per_minute, 60.0)
            else:
                window = Window(self.per_chat_burst,
                                self.per_chat_burst * self.per_chat_interval)
            self._chats[chat_id] = window
        return window

    def would_wait(self, chat_id: int) -> float:
        """Seconds a message to this chat would wait for its own window."""
        return self.chat_window(chat_id).wait(self.pace.monotonic())

    def retry_after(self, chat_id: int | None, seconds: float) -> None:
        """Telegram said 429: hold this chat back; if 429s cluster, hold everyone back."""
        now = self.pace.monotonic()
        if chat_id is not None:
            window = self.chat_window(chat_id)
            window.hold_until = max(window.hold_until, now + seconds)
        self._recent_429.append(now)
        if chat_id is None or (len(self._recent_429) == self._recent_429.maxlen
                               and now - self._recent_429[0] < 1.0):
            log.warning("429s cluster: pausing all sends for %.1fs", seconds)
            self.global_window.hold_until = max(self.global_window.hold_until, now + seconds)

    # ------------------------------------------------------------------ sending

    async def acquire(self, chat_id: int, lane: Lane = Lane.SERVICE, *,
                      deadline: float | None = None) -> None:
        """Wait until a message to ``chat_id`` may go; call :meth:`release` after it.

        ``deadline`` (pace time): raise :class:`TimeoutError` rather than wait past it for the
        chat's window or a hold Telegram asked for."""
        await self._lock_chat(chat_id, lane)
        try:
            window = self.chat_window(chat_id)
            while (wait := window.wait(self.pace.monotonic())) > 0:
                if deadline is not None and self.pace.monotonic() + wait > deadline:
                    raise TimeoutError(f"chat {chat_id} is held for {wait:.0f}s more")
                await self.pace.sleep(min(wait, 1.0))
            if deadline is not None and self.global_window.hold_until > deadline:
                raise TimeoutError("Telegram holds every send past the deadline")
            await self._admit(self._chat_lane(chat_id, lane), chat_id)
            window.take()
        except BaseException:
            self._unlock_chat(chat_id)
            raise
        if len(self._chats) > 50_000:
            self._forget_idle()

    def release(self, chat_id: int) -> None:
        """The message has been answered (sent, refused or failed)."""
        now = self.pace.monotonic()
        self.global_window.release(now)
        self.chat_window(chat_id).release(now)
        self._unlock_chat(chat_id)

    @asynccontextmanager
    async def sending(self, chat_id: int, lane: Lane = Lane.SERVICE, *,
                      deadline: float | None = None) -> AsyncIterator[None]:
        await self.acquire(chat_id, lane, deadline=deadline)
        try:
            yield
        finally:
            self.release(chat_id)

    # ------------------------------------------------------------------ the global gate

    async def _admit(self, lane: int, chat_id: int | None) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(lane, next(self._seq), chat_id, future)
        heapq.heappush(self._heap, waiter)
        if chat_id is not None:
            self._by_chat[chat_id] = waiter
        if self._gate is None or self._gate.done():
            self._gate = asyncio.create_task(self._run_gate())
        try:
            await future
        except BaseException:
            waiter.live = False
            if future.done() and not future.cancelled():
                # let go just as we were cancelled: give the slot back
                self.global_window.in_flight = max(0, self.global_window.in_flight - 1)
            raise
        finally:
            mine = self._by_chat.get(chat_id) if chat_id is not None else None
            if chat_id is not None and mine is not None and mine.future is future:
                del self._by_chat[chat_id]  # (a lifted copy shares the future)

    def _best(self) -> _Waiter | None:
        while self._heap and not (self._heap[0].live and not self._heap[0].future.done()):
            heapq.heappop(self._heap)
        return self._heap[0] if self._heap else None

    async def _run_gate(self) -> None:
        """Let waiters go, best lane first, evenly spaced and within the global window."""
        while self._best() is not None:
            now = self.pace.monotonic()
            wait = max(self._next_global - now, self.global_window.wait(now))
            if wait > 0:
                if math.isinf(wait):  # all in flight: an answer frees a place
                    wait = self.interval
                await self.pace.sleep(min(wait, 1.0))
                continue
            waiter = heapq.heappop(self._heap)
            waiter.live = False
            self.global_window.take()
            # Slots follow each other at the rate; a gate woken late keeps the lost time
            # (the window still caps any second), but idle time earns no more than a slot.
            self._next_global = max(self._next_global + self.interval, now - self.interval)
            waiter.future.set_result(None)
        self._gate = None

    def _chat_lane(self, chat_id: int, lane: int) -> int:
        entry = self._chat_locks.get(chat_id)
        return min(lane, entry[2]) if entry else lane

    def _lift(self, chat_id: int, lane: int) -> None:
        """A better lane queued behind this chat's waiter: the waiter takes its lane."""
        waiter = self._by_chat.get(chat_id)
        if waiter is not None and waiter.live and lane < waiter.lane:
            waiter.live = False
            lifted = _Waiter(lane, next(self._seq), chat_id, waiter.future)
            heapq.heappush(self._heap, lifted)
            self._by_chat[chat_id] = lifted

    # ------------------------------------------------------------------ per-chat order

    async def _lock_chat(self, chat_id: int, lane: int) -> None:
        lock, users, best = self._chat_locks.get(chat_id) or (asyncio.Lock(), 0, lane)
        self._chat_locks[chat_id] = (lock, users + 1, min(best, lane))
        self._lift(chat_id, lane)
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
        lock, users, best = entry
        if users <= 1:
            del self._chat_locks[chat_id]
        else:
            self._chat_locks[chat_id] = (lock, users - 1, best)

    def _forget_idle(self) -> None:
        now = self.pace.monotonic()
        self._chats = {c: w for c, w in self._chats.items()
                       if not w.idle(now) or c in self._chat_locks}
