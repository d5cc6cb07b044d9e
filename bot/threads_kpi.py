"""Conversation figures for the reports: how many by kind, how fast a person first answered,
and the insurance renewal rate (续保率) from the leads' recorded outcomes.

Pure: the caller reads the facts of the conversations opened in the period; counts and
times only, never what anyone wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median

from db.models import ThreadKind

RENEWAL_OUTCOMES = ("renewed_here", "renewed_elsewhere", "not_renewing")


@dataclass(frozen=True)
class ThreadFacts:
    kind: str
    created_at: datetime
    first_answer_due: datetime | None
    first_answered_at: datetime | None
    outcome: str
    premium: Decimal | None


@dataclass
class ConversationStats:
    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    late: int = 0  # first answered after its due, or still unanswered past it
    median_first_answer: timedelta | None = None
    insurance_decided: int = 0  # insurance leads closed with a renewal outcome
    renewed_here: int = 0
    renewal_rate: float | None = None  # 续保率: renewed with us / decided
    premium: Decimal = Decimal(0)  # premiums recorded for renewals with us


def conversation_stats(facts: list[ThreadFacts], now: datetime) -> ConversationStats:
    """The figures of these conversations as of ``now`` (an open one past its due is late)."""
    stats = ConversationStats(total=len(facts),
                              by_kind={k.value: 0 for k in ThreadKind})
    waits: list[timedelta] = []
    for f in facts:
        stats.by_kind[f.kind] = stats.by_kind.get(f.kind, 0) + 1
        answered = f.first_answered_at
        if answered is not None:
            stats.answered += 1
            waits.append(answered - f.created_at)
        if f.first_answer_due is not None and (answered or now) > f.first_answer_due:
            stats.late += 1
        if f.kind == ThreadKind.INSURANCE_LEAD and f.outcome in RENEWAL_OUTCOMES:
            stats.insurance_decided += 1
            if f.outcome == "renewed_here":
                stats.renewed_here += 1
                stats.premium += f.premium or Decimal(0)
    if waits:
        stats.median_first_answer = timedelta(seconds=median(w.total_seconds() for w in waits))
    if stats.insurance_decided:
        stats.renewal_rate = stats.renewed_here / stats.insurance_decided
    return stats
