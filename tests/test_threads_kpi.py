"""Conversation figures (bot/threads_kpi.py), on tables of facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.threads_kpi import ThreadFacts, conversation_stats

T0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)


def fact(kind: str = "inquiry", answered: timedelta | None = None, outcome: str = "",
         premium: str | None = None, due: timedelta = 2 * H) -> ThreadFacts:
    return ThreadFacts(kind=kind, created_at=T0, first_answer_due=T0 + due,
                       first_answered_at=T0 + answered if answered is not None else None,
                       outcome=outcome, premium=Decimal(premium) if premium else None)


def test_counts_by_kind_median_first_answer_and_late() -> None:
    stats = conversation_stats([
        fact(answered=H / 2), fact(answered=H), fact(answered=3 * H),  # the last one late
        fact("booking_request"),  # unanswered, past its due at now: late
    ], now=T0 + 5 * H)
    assert stats.total == 4 and stats.answered == 3
    assert stats.by_kind == {"inquiry": 3, "insurance_lead": 0, "booking_request": 1,
                             "campaign_lead": 0}
    assert stats.median_first_answer == H
    assert stats.late == 2


def test_an_unanswered_one_is_not_late_before_its_due() -> None:
    stats = conversation_stats([fact()], now=T0 + H)
    assert (stats.late, stats.median_first_answer) == (0, None)


def test_renewal_rate_counts_only_decided_insurance_leads() -> None:
    stats = conversation_stats([
        fact("insurance_lead", outcome="renewed_here", premium="4980.00"),
        fact("insurance_lead", outcome="renewed_here", premium="3200.50"),
        fact("insurance_lead", outcome="renewed_elsewhere"),
        fact("insurance_lead", outcome="not_renewing"),
        fact("insurance_lead"),  # still open: not decided
        fact("campaign_lead", outcome="won"),
    ], now=T0)
    assert (stats.renewed_here, stats.insurance_decided) == (2, 4)
    assert stats.renewal_rate == 0.5
    assert stats.premium == Decimal("8180.50")


def test_no_insurance_outcome_no_rate() -> None:
    assert conversation_stats([], now=T0).renewal_rate is None
