"""What the sender could not do, written where a person sees it (never only logged)."""

from __future__ import annotations

import logging

from bot.clock import Clock
from bot.delivery.limits import Lane
from db.models import Customer, FailedSend

log = logging.getLogger(__name__)


class Failures:
    """The sender's hooks: a failed send becomes a row; a 403 marks the owner unreachable."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def record(self, lane: Lane, chat_id: int | None, method: str, why: str) -> None:
        try:
            await FailedSend.create(lane=lane.name.lower(), chat_id=chat_id, method=method,
                                    error=why[:2000], created_at=self.clock.now())
        except Exception:  # the database is down too: the log is all that is left
            log.exception("could not record a failed %s to %s", method, chat_id)

    async def mark_unreachable(self, chat_id: int) -> None:
        await Customer.filter(telegram_chat_id=chat_id, unreachable_at__isnull=True).update(
            unreachable_at=self.clock.now())


async def open_failures() -> int:
    """Failed sends nobody has looked at yet (Today page, /metrics)."""
    return await FailedSend.filter(seen_at__isnull=True).count()
