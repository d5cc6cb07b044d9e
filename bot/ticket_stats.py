"""The complaints report's figures, pure over plain facts (testable on tables): counts by
category and level, median times, deadline breaches, the reopen rate. Counts and times
only, never what anyone wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from bot.ticket_rules import CATEGORIES, LEVELS
from db.models import Ticket, TicketState


@dataclass(frozen=True)
class TicketFacts:
    """What the complaints report needs of one ticket (plain values, testable on tables)."""

    category: str
    level: str
    created_at: datetime
    first_answered_at: datetime | None
    resolved_at: datetime | None
    breaches: int
    reopen_count: int
    state: str


@dataclass
class ComplaintStats:
    total: int = 0
    by_category: dict[str, int] | None = None
    by_level: dict[str, int] | None = None
    median_first_answer: timedelta | None = None
    median_resolution: timedelta | None = None
    breaches: int = 0
    tickets_breached: int = 0
    reopened: int = 0
    closed: int = 0

    @property
    def reopen_rate(self) -> float | None:
        """Share of the month's tickets the owner reopened at least once."""
        return self.reopened / self.total if self.total else None


def _median(values: Iterable[timedelta]) -> timedelta | None:
    seconds = [v.total_seconds() for v in values]
    return timedelta(seconds=median(seconds)) if seconds else None


def complaint_stats(facts: list[TicketFacts]) -> ComplaintStats:
    """Counts by category and level, median times, deadline breaches, reopen rate."""
    by_category = {c: 0 for c in CATEGORIES}
    by_level = {str(level): 0 for level in LEVELS}
    for f in facts:
        by_category[f.category] = by_category.get(f.category, 0) + 1
        by_level[str(f.level)] = by_level.get(str(f.level), 0) + 1
    return ComplaintStats(
        total=len(facts),
        by_category=by_category,
        by_level=by_level,
        median_first_answer=_median(f.first_answered_at - f.created_at for f in facts
                                    if f.first_answered_at is not None),
        median_resolution=_median(f.resolved_at - f.created_at for f in facts
                                  if f.resolved_at is not None),
        breaches=sum(f.breaches for f in facts),
        tickets_breached=sum(1 for f in facts if f.breaches),
        reopened=sum(1 for f in facts if f.reopen_count),
        closed=sum(1 for f in facts if f.state == TicketState.CLOSED),
    )


async def facts_between(start: datetime, end: datetime) -> list[TicketFacts]:
    """Tickets opened in [start, end), as report facts (one query)."""
    rows: list[dict[str, Any]] = await Ticket.filter(
        created_at__gte=start, created_at__lt=end
    ).values("category", "level", "created_at", "first_answered_at", "resolved_at",
             "breaches", "reopen_count", "state")
    return [TicketFacts(**row) for row in rows]
