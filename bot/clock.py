"""The only source of "now". Tests and the sandbox move a FakeClock instead of sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = when.astimezone(UTC)
        return self._now


class OffsetClock:
    """Real time plus an offset the sandbox can move forward ("two hours later...")."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._offset += delta if delta is not None else timedelta(**kwargs)
        return self.now()


class Pace(Protocol):
    """Time for pacing calls to Telegram (seconds, monotonic), apart from business time:
    the limiter and the emulator's flood checks read it, the sender waits on it."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealPace:
    """The event loop's monotonic time and real waits (production, benchmarks)."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualPace:
    """Pacing time that passes only when someone waits: a wait moves it forward at once.

    Shared by the emulator and carebot in tests, so Telegram's limits are enforced and kept
    to the letter, and a 3-second ``retry_after`` costs no real time. Waiters compute how
    long to wait from the current time right before waiting, so a wait that another one has
    already covered is zero; time never goes back."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> float:
        """Move pacing time forward (a test saying "this much later"); the new time."""
        self._now += max(0.0, seconds)
        return self._now
