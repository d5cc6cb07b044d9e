"""What a running sandbox offers the console: the emulator, the movable clock, the demo owners.

``carebot sandbox`` hangs a :class:`Sandbox` on ``services.sandbox``; the
console's sandbox chat page (``bot.web.console.pages.sandbox_chat``) finds it there and
exists only while it does. Nothing here runs in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.sandbox.emulator import TelegramEmulator
    from bot.services import Services



class MovableClock(Protocol):
    """A clock the sandbox can move forward: ``OffsetClock`` when running, ``FakeClock`` in
    tests."""

    def now(self) -> datetime: ...

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime: ...


@dataclass(frozen=True)
class DemoOwner:
    """A demo owner: their Telegram account in the emulator and the phone of their file."""

    user_id: int
    phone: str  # E.164, as in the customer file
    first_name: str
    last_name: str | None = None
    language_code: str = "zh-hans"

    @property
    def display_name(self) -> str:
        if self.language_code.startswith("zh"):
            return f"{self.last_name or ''}{self.first_name}"
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass
class DueReport:
    """What one "run the due jobs now" did (counts of the dispatcher tick and the scan)."""

    sent: int = 0
    failed: int = 0
    unreachable: int = 0
    expired: int = 0
    skipped: int = 0
    quiet: bool = False  # the dealership's quiet hours hold sending

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "unreachable": self.unreachable,
                "expired": self.expired, "skipped": self.skipped, "quiet": self.quiet}


@dataclass
class Sandbox:
    """The running sandbox, as the console's sandbox chat sees it."""

    emulator: TelegramEmulator
    clock: MovableClock
    run_due: Callable[[], Awaitable[DueReport]]
    owners: tuple[DemoOwner, ...]
    # One time move at a time: two people pressing "+1 day" together move it twice, in turn.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def owner(self, user_id: int) -> DemoOwner | None:
        return next((o for o in self.owners if o.user_id == user_id), None)

    async def move_time(self, delta: timedelta) -> DueReport:
        """Advance the clock by ``delta`` and run at once what would have run meanwhile."""
        if delta <= timedelta(0):
            raise ValueError("time only moves forward")
        async with self.lock:
            self.clock.advance(delta)
            return await self.run_due()


def sandbox_of(services: Services) -> Sandbox | None:
    """The running sandbox, or None (production: the sandbox pages do not exist)."""
    return services.sandbox
