"""The rules of complaint tickets (投诉, 003 §2.3), pure: levels and who may act, the "211"
deadlines, ratings, ticket numbers and how long texts are cut.

The 211 rule: the owner gets a first answer within 2 hours of opening; the handler resolves
within 1 day of claiming; 1 day after Resolve the owner is asked to rate the handling. A
missed deadline escalates one level by itself, and the new level has 2 hours to act. All
clocks count on a business-hours calendar (:mod:`bot.business_time`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.business_time import (
    BusinessCalendar,
    business_days,
    parse_business_days,
    parse_business_hours,
)
from bot.config import ConfigError, QuietHours, Settings
from db.models import StaffRole, TicketLevel, TicketState

CATEGORIES = ("service_process", "repair_quality", "charges", "timeliness", "environment",
              "other")
CHANNELS = ("bot", "survey", "staff")
LEVELS: tuple[TicketLevel, ...] = (TicketLevel.AGENT, TicketLevel.ADVISOR,
                                   TicketLevel.SUPERVISOR, TicketLevel.MANAGER)
ACTIVE_STATES = (TicketState.OPEN, TicketState.CLAIMED, TicketState.ANSWERED,
                 TicketState.REOPENED)
FOLLOWUP_KIND = "ticket_followup"
EFFECTS_KEY = "tickets"

# How far up the chain each staff role may act (claim, resolve). Marketing may not act.
ROLE_RANK: dict[str, int] = {
    StaffRole.AGENT: 0, StaffRole.ADVISOR: 1, StaffRole.SUPERVISOR: 2, StaffRole.MANAGER: 3,
    StaffRole.ADMIN: 3,
}
NUMBER_RE = re.compile(r"\bT-(\d{1,9})\b")


class EventKind(StrEnum):
    OPENED = "opened"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    ESCALATED = "escalated"
    BREACH = "breach"  # a deadline missed at the top of the chain: nobody left to escalate to
    RESOLVED = "resolved"
    RATED = "rated"
    REOPENED = "reopened"
    CLOSED = "closed"
    NOTE = "note"
    UNDELIVERED = "undelivered"  # a staff-chat or owner notice Telegram refused (429, error)


class DueKind(StrEnum):
    FIRST_ANSWER = "first_answer"
    HANDLER_ANSWER = "handler_answer"
    LEVEL = "level"


@dataclass(frozen=True)
class SlaRules:
    """The deadlines and thresholds, taken from Settings once."""

    calendar: BusinessCalendar | None
    tz: ZoneInfo
    quiet: QuietHours | None
    first_answer: timedelta = timedelta(hours=2)
    handler_answer: timedelta = timedelta(hours=9, minutes=30)  # 1 business day
    level_answer: timedelta = timedelta(hours=2)
    followup_after: timedelta = timedelta(days=1)
    threshold: int = 6


def sla_rules(settings: Settings) -> SlaRules:
    """The rules from Settings; a wrong calendar names its variable (start-up stops)."""
    try:
        hours = parse_business_hours(settings.ticket_business_hours)
    except ValueError as exc:
        raise ConfigError(f"CAREBOT_TICKET_BUSINESS_HOURS: {exc}") from None
    try:
        weekdays = parse_business_days(settings.ticket_business_days)
    except ValueError as exc:
        raise ConfigError(f"CAREBOT_TICKET_BUSINESS_DAYS: {exc}") from None
    calendar = BusinessCalendar(settings.tz, hours[0], hours[1], weekdays) if hours else None
    return SlaRules(
        calendar=calendar,
        tz=settings.tz,
        quiet=settings.quiet,
        first_answer=timedelta(hours=settings.ticket_first_answer_hours),
        handler_answer=business_days(settings.ticket_handler_answer_days, calendar),
        level_answer=timedelta(hours=settings.ticket_level_answer_hours),
        followup_after=timedelta(days=settings.ticket_followup_days),
        threshold=settings.handling_score_threshold,
    )


def next_level(level: TicketLevel | str) -> TicketLevel | None:
    """One step up the chain; None above the service manager."""
    index = LEVELS.index(TicketLevel(level))
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def level_rank(level: TicketLevel | str) -> int:
    return LEVELS.index(TicketLevel(level))


def can_act(role: StaffRole | str, level: TicketLevel | str) -> bool:
    """Claim and resolve need a role at or above the ticket's level (admins count as managers)."""
    rank = ROLE_RANK.get(StaffRole(role))
    return rank is not None and rank >= level_rank(level)


def is_ticket_staff(role: StaffRole | str) -> bool:
    return StaffRole(role) in ROLE_RANK


def rating_outcome(score: int, threshold: int,
                   level: TicketLevel | str) -> tuple[bool, TicketLevel]:
    """The owner's 1-10 rating of the handling: (reopen?, level afterwards).

    At or below the threshold the ticket reopens one level higher (the manager stays the
    manager); above it the ticket closes at its level.
    """
    if score <= threshold:
        return True, next_level(level) or TicketLevel.MANAGER
    return False, TicketLevel(level)


def running_deadline(*, has_handler: bool, first_answered_at: datetime | None,
                     first_answer_due: datetime, handler_answer_due: datetime | None,
                     now: datetime) -> tuple[datetime | None, str]:
    """The deadline that runs for a claimed ticket: the handler's (resolve within a business
    day of claiming), or the first answer if it is still owed and not yet missed."""
    if not has_handler:
        return None, ""
    candidates: list[tuple[datetime, str]] = []
    if handler_answer_due is not None:
        candidates.append((handler_answer_due, DueKind.HANDLER_ANSWER))
    if first_answered_at is None and first_answer_due > now:
        candidates.append((first_answer_due, DueKind.FIRST_ANSWER))
    if not candidates:
        return None, ""
    return min(candidates)


def overdue_reason(due_kind: str, due_at: datetime, level: str, tz: ZoneInfo) -> str:
    """Why a ticket escalated by itself, for the record."""
    when = due_at.astimezone(tz).strftime("%m-%d %H:%M")
    if due_kind == DueKind.FIRST_ANSWER:
        return f"no first answer to the owner by {when}"
    if due_kind == DueKind.HANDLER_ANSWER:
        return f"handler did not resolve by {when}"
    return f"{level} level did not act by {when}"


SHOWN_TEXT_LIMIT = 1500  # description, resolution, improvement on cards and owner notices
MESSAGE_LIMIT = 4096  # Telegram's limit for one message
SHORTER_LIMITS = (SHOWN_TEXT_LIMIT, 800, 400, 150)  # tried in turn until a message fits


def shorten(text: str, limit: int = SHOWN_TEXT_LIMIT) -> str:
    """Plain text cut to ``limit`` characters with "…" (before escaping: never an entity)."""
    if len(text) <= limit:
        return text
    return text[:max(limit - 1, 0)].rstrip() + "…"


def format_number(ticket_id: int) -> str:
    return f"T-{ticket_id:04d}"


def parse_number(text: str) -> int | None:
    """The ticket id in "T-0042" (or "t-42"), None if there is none."""
    m = NUMBER_RE.search(text.upper())
    return int(m.group(1)) if m else None
