"""Quiet hours and the check-in plan, as pure functions over tables of local datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import parse_quiet_hours
from bot.journeys.plans import CHECKIN, JourneyRules, plan_delivery
from bot.schedule import in_quiet_hours, shift_out_of_quiet_hours

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")  # has DST
QUIET = parse_quiet_hours("21:00-09:00")


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0,
          second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (local(SH, 2026, 11, 3, 10, 0), local(SH, 2026, 11, 3, 10, 0)),  # daytime: unchanged
        (local(SH, 2026, 11, 3, 20, 59), local(SH, 2026, 11, 3, 20, 59)),  # just before
        (local(SH, 2026, 11, 3, 21, 0), local(SH, 2026, 11, 4, 9, 0)),  # start is quiet
        (local(SH, 2026, 11, 3, 22, 0), local(SH, 2026, 11, 4, 9, 0)),  # evening -> next day
        (local(SH, 2026, 11, 4, 0, 30), local(SH, 2026, 11, 4, 9, 0)),  # after midnight
        (local(SH, 2026, 11, 4, 8, 59), local(SH, 2026, 11, 4, 9, 0)),
        (local(SH, 2026, 11, 4, 9, 0), local(SH, 2026, 11, 4, 9, 0)),  # end is not quiet
        (local(SH, 2026, 12, 31, 23, 0), local(SH, 2027, 1, 1, 9, 0)),  # year boundary
        (local(SH, 2028, 2, 28, 22, 0), local(SH, 2028, 2, 29, 9, 0)),  # leap day
        # New York: the night DST starts (2026-03-08 02:00 -> 03:00) and ends (11-01)
        (local(NY, 2026, 3, 7, 23, 0), local(NY, 2026, 3, 8, 9, 0)),
        (local(NY, 2026, 10, 31, 23, 0), local(NY, 2026, 11, 1, 9, 0)),
    ],
)
def test_shift_out_of_quiet_hours(when: datetime, expected: datetime) -> None:
    tz = when.tzinfo
    assert isinstance(tz, ZoneInfo)
    shifted = shift_out_of_quiet_hours(when.astimezone(UTC), tz, QUIET)
    assert shifted == expected.astimezone(UTC)
    assert shifted.tzinfo == UTC


def test_dst_night_is_still_9_local() -> None:
    shifted = shift_out_of_quiet_hours(local(NY, 2026, 3, 7, 23, 0).astimezone(UTC),
                                       NY, QUIET)
    assert shifted.astimezone(NY).hour == 9
    # the night is one hour shorter than usual: 23:00 EST -> 09:00 EDT is 9 real hours
    assert shifted - local(NY, 2026, 3, 7, 23, 0) == timedelta(hours=9)


@pytest.mark.parametrize(
    ("spec", "when", "quiet"),
    [
        ("12:00-14:00", local(SH, 2026, 1, 1, 13, 0), True),  # same-day window
        ("12:00-14:00", local(SH, 2026, 1, 1, 14, 0), False),
        ("12:00-14:00", local(SH, 2026, 1, 1, 23, 0), False),
        ("off", local(SH, 2026, 1, 1, 23, 0), False),
    ],
)
def test_in_quiet_hours_windows(spec: str, when: datetime, quiet: bool) -> None:
    assert in_quiet_hours(when, SH, parse_quiet_hours(spec)) is quiet


@pytest.mark.parametrize("bad", ["9-5", "21:00", "25:00-09:00", "21:00-21:00", "a-b"])
def test_quiet_hours_rejects_bad_values(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(bad)


@pytest.mark.parametrize(
    ("delivered", "due", "expires"),
    [
        # delivered 14:30 -> check-in 16:30 the same day, expires 12 h later
        (local(SH, 2026, 11, 3, 14, 30), local(SH, 2026, 11, 3, 16, 30),
         local(SH, 2026, 11, 4, 4, 30)),
        # delivered 20:00 -> due 22:00 is quiet -> 09:00 next day
        (local(SH, 2026, 11, 3, 20, 0), local(SH, 2026, 11, 4, 9, 0),
         local(SH, 2026, 11, 4, 21, 0)),
        # delivered 18:59 -> 20:59, just before quiet hours
        (local(SH, 2026, 11, 3, 18, 59), local(SH, 2026, 11, 3, 20, 59),
         local(SH, 2026, 11, 4, 8, 59)),
    ],
)
def test_checkin_plan(delivered: datetime, due: datetime, expires: datetime) -> None:
    rules = JourneyRules(tz=SH, quiet=QUIET)
    plans = plan_delivery(customer_id=1, vehicle_id=2, vin="LSVAU2180N2183294",
                          delivered_at=delivered, rules=rules)
    [plan] = [p for p in plans if p.kind == CHECKIN]  # the rest: tests/test_touchpoint_rules.py
    assert plan.due_at == due.astimezone(UTC)
    assert plan.expires_at == expires.astimezone(UTC)
    # the same delivery always gets the same occasion key (re-import idempotency)
    again = plan_delivery(customer_id=1, vehicle_id=2, vin="LSVAU2180N2183294",
                          delivered_at=delivered, rules=rules)[0]
    assert again.occasion_key == plan.occasion_key
