"""What a survey asks and the pure rules of its answers: the survey kinds, the CSI
categories, when a survey is open, what is low, what a repeated answer does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from db.models import Customer, ScoreRates, Vehicle, Visit

if TYPE_CHECKING:
    from bot.config import Settings


# The touchpoint kinds that ask for a score, and what their score rates. Issue 3 writes
# followup_3d and service_followup, issue 5 ticket_followup; this module composes them.
SURVEY_KINDS: dict[str, ScoreRates] = {
    "followup_3d": ScoreRates.DELIVERY,
    "service_followup": ScoreRates.VISIT,
    "ticket_followup": ScoreRates.COMPLAINT,
}

# The CSI categories of 003 附件2, in the order the owner sees them (keys shared with tickets).
CSI_CATEGORIES: tuple[str, ...] = (
    "service_process", "repair_quality", "charges", "timeliness", "environment", "other",
)

# Message-log kinds this feature writes, so re-asks and kept comments are counted from the log.
LOG_REASK = "survey_reask"
LOG_COMMENT = "survey_comment"

# Conversation states (bot.owners.set_conversation) while a low score is being explained.
STATE_CATEGORY = "survey_category"
STATE_COMMENT = "survey_comment"

DELIGHTED_FROM = 9  # 9-10 = "very satisfied" (003 §1.4.3)


@dataclass(frozen=True)
class SurveyRules:
    """The survey rules a caller takes from Settings once."""

    open_for: timedelta = timedelta(days=7)
    low_threshold: int = 6
    change_window: timedelta = timedelta(hours=24)
    max_reasks: int = 2
    handover_after: timedelta = timedelta(minutes=30)
    review_url: str = ""


def survey_rules(settings: Settings) -> SurveyRules:
    return SurveyRules(
        open_for=timedelta(days=settings.survey_open_days),
        low_threshold=settings.survey_low_threshold,
        change_window=timedelta(hours=settings.survey_change_hours),
        max_reasks=settings.survey_max_reasks,
        handover_after=timedelta(minutes=settings.survey_handover_minutes),
        review_url=settings.review_url,
    )


def is_open(sent_at: datetime | None, now: datetime, rules: SurveyRules) -> bool:
    """A survey takes answers from when it was sent until ``open_for`` later."""
    return sent_at is not None and sent_at <= now < sent_at + rules.open_for


def is_low(score: int, rules: SurveyRules) -> bool:
    return score <= rules.low_threshold


def is_delighted(score: int) -> bool:
    return score >= DELIGHTED_FROM


class Outcome(StrEnum):
    NEW = "new"  # the first answer
    SAME = "same"  # the same answer again (a double tap): nothing changes
    CHANGED = "changed"  # a different answer within the change window: replaces the score
    LOCKED = "locked"  # a different answer after the change window: the first one stands
    CLOSED = "closed"  # the survey is no longer open
    NOT_A_SURVEY = "not_a_survey"  # unknown touchpoint, another owner's, or not a survey kind


def decide(*, current: int | None, first_answered_at: datetime | None, new: int,
           now: datetime, rules: SurveyRules) -> Outcome:
    """What a (repeated) answer does to an open survey: the pure rule behind record_score."""
    if current is None:
        return Outcome.NEW
    if current == new:
        return Outcome.SAME
    if first_answered_at is not None and now - first_answered_at <= rules.change_window:
        return Outcome.CHANGED
    return Outcome.LOCKED


def rates_of(kind: str) -> ScoreRates | None:
    return SURVEY_KINDS.get(kind)


def advisor_name(visit: Visit | None, vehicle: Vehicle | None, customer: Customer) -> str:
    """Who the score is attributed to: the visit's advisor, else the car's sales advisor, else
    the owner's own advisor (003 §1.4.3: scores are counted per advisor)."""
    for name in (visit.advisor if visit else "", vehicle.sales_advisor if vehicle else "",
                 customer.advisor):
        if name and name.strip():
            return name.strip()
    return ""
