"""The 211 rules as pure functions, on tables: business calendar, levels, ratings, report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.business_time import (
    BusinessCalendar,
    add_business_time,
    business_days,
    parse_business_days,
    parse_business_hours,
)
from bot.config import ConfigError, Settings
from bot.ticket_rules import (
    can_act,
    next_level,
    overdue_reason,
    parse_number,
    rating_outcome,
    running_deadline,
    sla_rules,
)
from bot.ticket_stats import TicketFacts, complaint_stats
from db.models import StaffRole, TicketLevel

SH = ZoneInfo("Asia/Shanghai")
EVERY_DAY = BusinessCalendar(SH, time(8, 30), time(18, 0))
WEEKDAYS = BusinessCalendar(SH, time(8, 30), time(18, 0), frozenset(range(1, 6)))


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# 2026-11-03 is a Tuesday; 2026-11-06 a Friday.
@pytest.mark.parametrize(("start", "hours", "calendar", "due"), [
    (sh(2026, 11, 3, 17, 30), 2, EVERY_DAY, sh(2026, 11, 4, 10, 0)),  # the example
    (sh(2026, 11, 3, 10, 0), 2, EVERY_DAY, sh(2026, 11, 3, 12, 0)),
    (sh(2026, 11, 3, 7, 0), 2, EVERY_DAY, sh(2026, 11, 3, 10, 30)),  # before opening
    (sh(2026, 11, 3, 18, 30), 2, EVERY_DAY, sh(2026, 11, 4, 10, 30)),  # after closing
    (sh(2026, 11, 3, 23, 59), 2, EVERY_DAY, sh(2026, 11, 4, 10, 30)),
    (sh(2026, 11, 3, 16, 0), 2, EVERY_DAY, sh(2026, 11, 3, 18, 0)),  # exactly to closing
    (sh(2026, 11, 6, 17, 0), 2, WEEKDAYS, sh(2026, 11, 9, 9, 30)),  # Friday -> Monday
    (sh(2026, 11, 7, 12, 0), 2, WEEKDAYS, sh(2026, 11, 9, 10, 30)),  # Saturday
    (sh(2026, 11, 3, 17, 30), 2, None, sh(2026, 11, 3, 19, 30)),  # plain hours
    (sh(2026, 11, 3, 10, 0), 0, EVERY_DAY, sh(2026, 11, 3, 10, 0)),
])
def test_add_business_time(start: datetime, hours: float, calendar: BusinessCalendar | None,
                           due: datetime) -> None:
    got = add_business_time(start, timedelta(hours=hours), calendar)
    assert got == due
    assert got.tzinfo == UTC


@pytest.mark.parametrize(("start", "calendar", "due"), [
    (sh(2026, 11, 3, 10, 0), EVERY_DAY, sh(2026, 11, 4, 10, 0)),
    (sh(2026, 11, 3, 17, 30), EVERY_DAY, sh(2026, 11, 4, 17, 30)),
    (sh(2026, 11, 3, 20, 0), EVERY_DAY, sh(2026, 11, 4, 18, 0)),  # a whole next business day
    (sh(2026, 11, 6, 15, 0), WEEKDAYS, sh(2026, 11, 9, 15, 0)),
    (sh(2026, 11, 3, 10, 0), None, sh(2026, 11, 4, 10, 0)),
])
def test_one_business_day(start: datetime, calendar: BusinessCalendar | None,
                          due: datetime) -> None:
    assert add_business_time(start, business_days(1, calendar), calendar) == due


@pytest.mark.parametrize(("value", "expected"), [
    ("08:30-18:00", (time(8, 30), time(18, 0))),
    (" 9:00-17:30 ", (time(9, 0), time(17, 30))),
    ("off", None),
    ("", None),
])
def test_parse_business_hours(value: str, expected: tuple[time, time] | None) -> None:
    assert parse_business_hours(value) == expected


@pytest.mark.parametrize("value", ["18:00-08:30", "8-18", "08:30", "25:00-26:00", "10:00-10:00"])
def test_bad_business_hours(value: str) -> None:
    with pytest.raises(ValueError):
        parse_business_hours(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("1-7", set(range(1, 8))), ("1-5", {1, 2, 3, 4, 5}), ("1,3,5", {1, 3, 5}),
    ("1-5,7", {1, 2, 3, 4, 5, 7}),
])
def test_parse_business_days(value: str, expected: set[int]) -> None:
    assert parse_business_days(value) == expected


@pytest.mark.parametrize("value", ["", "0-5", "5-1", "mon-fri", "8"])
def test_bad_business_days(value: str) -> None:
    with pytest.raises(ValueError):
        parse_business_days(value)


def test_wrong_calendar_setting_names_the_variable() -> None:
    settings = Settings(_env_file=None, ticket_business_hours="18:00-08:00")
    with pytest.raises(ConfigError, match="CAREBOT_TICKET_BUSINESS_HOURS"):
        sla_rules(settings)
    rules = sla_rules(Settings(_env_file=None))
    assert rules.first_answer == timedelta(hours=2)
    assert rules.handler_answer == timedelta(hours=9, minutes=30)  # one 08:30-18:00 day
    assert rules.threshold == 6
    plain = sla_rules(Settings(_env_file=None, ticket_business_hours="off"))
    assert plain.calendar is None and plain.handler_answer == timedelta(hours=24)


@pytest.mark.parametrize(("level", "up"), [
    (TicketLevel.AGENT, TicketLevel.ADVISOR),
    (TicketLevel.ADVISOR, TicketLevel.SUPERVISOR),
    (TicketLevel.SUPERVISOR, TicketLevel.MANAGER),
    (TicketLevel.MANAGER, None),
])
def test_next_level(level: TicketLevel, up: TicketLevel | None) -> None:
    assert next_level(level) == up


@pytest.mark.parametrize(("score", "level", "reopen", "after"), [
    (3, TicketLevel.AGENT, True, TicketLevel.ADVISOR),
    (6, TicketLevel.AGENT, True, TicketLevel.ADVISOR),  # at the threshold: reopens
    (7, TicketLevel.AGENT, False, TicketLevel.AGENT),
    (9, TicketLevel.SUPERVISOR, False, TicketLevel.SUPERVISOR),
    (1, TicketLevel.SUPERVISOR, True, TicketLevel.MANAGER),
    (1, TicketLevel.MANAGER, True, TicketLevel.MANAGER),  # nobody above the manager
])
def test_rating_outcome(score: int, level: TicketLevel, reopen: bool,
                        after: TicketLevel) -> None:
    assert rating_outcome(score, 6, level) == (reopen, after)


@pytest.mark.parametrize(("role", "level", "allowed"), [
    (StaffRole.AGENT, TicketLevel.AGENT, True),
    (StaffRole.AGENT, TicketLevel.ADVISOR, False),
    (StaffRole.ADVISOR, TicketLevel.AGENT, True),
    (StaffRole.SUPERVISOR, TicketLevel.MANAGER, False),
    (StaffRole.MANAGER, TicketLevel.MANAGER, True),
    (StaffRole.ADMIN, TicketLevel.MANAGER, True),
    (StaffRole.MARKETING, TicketLevel.AGENT, False),
])
def test_can_act(role: StaffRole, level: TicketLevel, allowed: bool) -> None:
    assert can_act(role, level) is allowed


def test_running_deadline() -> None:
    now = sh(2026, 11, 3, 11, 0)
    first = sh(2026, 11, 3, 12, 0)
    handler = sh(2026, 11, 4, 11, 0)
    # claimed before the first answer: the sooner deadline runs
    assert running_deadline(has_handler=True, first_answered_at=None, first_answer_due=first,
                            handler_answer_due=handler, now=now) == (first, "first_answer")
    # answered: only the handler's deadline
    assert running_deadline(has_handler=True, first_answered_at=now, first_answer_due=first,
                            handler_answer_due=handler, now=now) == (handler, "handler_answer")
    # the first-answer deadline already missed (and escalated for): not again
    late = sh(2026, 11, 3, 13, 0)
    assert running_deadline(has_handler=True, first_answered_at=None, first_answer_due=first,
                            handler_answer_due=handler, now=late) == (handler, "handler_answer")
    assert running_deadline(has_handler=False, first_answered_at=None, first_answer_due=first,
                            handler_answer_due=None, now=now) == (None, "")


def test_overdue_reason_and_numbers() -> None:
    due = sh(2026, 11, 3, 12, 0)
    assert "12:00" in overdue_reason("first_answer", due, "agent", SH)
    assert "advisor" in overdue_reason("level", due, "advisor", SH)
    assert parse_number("💬 T-0042 · 张伟：") == 42
    assert parse_number("t-7 please") == 7
    assert parse_number("no ticket here") is None


def test_complaint_stats() -> None:
    t0 = sh(2026, 11, 3, 10, 0)
    facts = [
        TicketFacts("repair_quality", "agent", t0, t0 + timedelta(hours=1),
                    t0 + timedelta(hours=5), 0, 0, "closed"),
        TicketFacts("repair_quality", "advisor", t0, t0 + timedelta(hours=3),
                    t0 + timedelta(hours=9), 1, 1, "closed"),
        TicketFacts("charges", "manager", t0, None, None, 2, 0, "open"),
    ]
    stats = complaint_stats(facts)
    assert stats.total == 3
    assert stats.by_category is not None and stats.by_category["repair_quality"] == 2
    assert stats.by_category["charges"] == 1 and stats.by_category["other"] == 0
    assert stats.by_level == {"agent": 1, "advisor": 1, "supervisor": 0, "manager": 1}
    assert stats.median_first_answer == timedelta(hours=2)
    assert stats.median_resolution == timedelta(hours=7)
    assert (stats.breaches, stats.tickets_breached) == (3, 2)
    assert stats.reopened == 1 and stats.reopen_rate == pytest.approx(1 / 3)
    assert stats.closed == 2
    empty = complaint_stats([])
    assert empty.total == 0 and empty.reopen_rate is None and empty.median_resolution is None


def test_shorten_plain_text() -> None:
    from bot.tickets import shorten

    assert shorten("short", 10) == "short"
    assert shorten("x" * 10, 10) == "x" * 10
    cut = shorten("a & b < c " * 500, 1500)
    assert len(cut) <= 1500 and cut.endswith("…")
