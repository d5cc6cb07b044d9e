"""The schedule rules of every touchpoint as pure functions, on tables of local datetimes:
day boundaries, quiet hours, DST-free and DST zones, leap years, lunar calendars, late
imports, catch-up after downtime."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.bookings import BookingRules, bookable_days, plan_reminder
from bot.config import QuietHours, Settings
from bot.journeys.plans import (
    CHECKIN,
    FIRST_SERVICE,
    FOLLOWUP_3D,
    SERVICE_DUE,
    SERVICE_FOLLOWUP,
    VISIT_7D,
    JourneyRules,
    journey_rules,
    next_service,
    plan_delivery,
    plan_visit,
)
from bot.journeys.timing import (
    Holiday,
    add_months,
    at_local,
    birthday_key,
    birthday_keys_on,
    end_of_local_day,
    expiry_reminders_due,
    parse_day_list,
    parse_hhmm,
    parse_holidays,
    parse_weekdays,
    scan_days,
)
from db.models import BookingKind

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
QUIET = QuietHours(time(21, 0), time(9, 0))


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
       second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
       second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NY)


def plans_by_kind(delivered: datetime, rules: JourneyRules) -> dict[str, tuple[datetime, datetime]]:
    plans = plan_delivery(customer_id=1, vehicle_id=1, vin="LSVAU218XN2183294",
                          delivered_at=delivered, rules=rules)
    out = {}
    for p in plans:
        assert p.expires_at is not None
        out[p.kind] = (p.due_at, p.expires_at)
    return out


@pytest.mark.parametrize(
    ("delivered", "kind", "due", "expires"),
    [
        # an ordinary morning delivery
        (sh(2026, 11, 3, 10, 0), FOLLOWUP_3D, sh(2026, 11, 6, 10, 0), sh(2026, 11, 8, 0, 0)),
        (sh(2026, 11, 3, 10, 0), VISIT_7D, sh(2026, 11, 10, 10, 0), sh(2026, 11, 12, 0, 0)),
        (sh(2026, 11, 3, 10, 0), FIRST_SERVICE, sh(2026, 11, 21, 10, 0), sh(2026, 11, 25, 0, 0)),
        # day boundaries: days count local calendar days, not 24-hour periods
        (sh(2026, 11, 3, 23, 59), FOLLOWUP_3D, sh(2026, 11, 6, 10, 0), sh(2026, 11, 8, 0, 0)),
        (sh(2026, 11, 4, 0, 1), FOLLOWUP_3D, sh(2026, 11, 7, 10, 0), sh(2026, 11, 9, 0, 0)),
        # 2 a.m. local on the 4th is still the 3rd in UTC: the local date counts
        (sh(2026, 11, 4, 2, 0), FOLLOWUP_3D, sh(2026, 11, 7, 10, 0), sh(2026, 11, 9, 0, 0)),
        # a leap year: day 18 after 2028-02-20 is 2028-03-09 (29 Feb in between)
        (sh(2028, 2, 20, 10, 0), FIRST_SERVICE, sh(2028, 3, 9, 10, 0), sh(2028, 3, 13, 0, 0)),
        (sh(2027, 2, 20, 10, 0), FIRST_SERVICE, sh(2027, 3, 10, 10, 0), sh(2027, 3, 14, 0, 0)),
        # year end
        (sh(2026, 12, 30, 15, 0), FOLLOWUP_3D, sh(2027, 1, 2, 10, 0), sh(2027, 1, 4, 0, 0)),
    ],
)
def test_delivery_journey_days_in_a_dst_free_zone(delivered: datetime, kind: str,
                                                  due: datetime, expires: datetime) -> None:
    got = plans_by_kind(delivered, JourneyRules(tz=SH, quiet=QUIET))[kind]
    assert got == (due, expires)


@pytest.mark.parametrize(
    ("delivered", "kind", "due", "expires"),
    [
        # spring forward (2027-03-14): 10:00 local is still 10:00 local, 23 hours later
        (ny(2027, 3, 11, 12, 0), FOLLOWUP_3D, ny(2027, 3, 14, 10, 0), ny(2027, 3, 16, 0, 0)),
        # fall back (2026-11-01)
        (ny(2026, 10, 29, 12, 0), FOLLOWUP_3D, ny(2026, 11, 1, 10, 0), ny(2026, 11, 3, 0, 0)),
        (ny(2026, 10, 25, 12, 0), VISIT_7D, ny(2026, 11, 1, 10, 0), ny(2026, 11, 3, 0, 0)),
    ],
)
def test_delivery_journey_days_across_dst(delivered: datetime, kind: str, due: datetime,
                                          expires: datetime) -> None:
    due_got, expires_got = plans_by_kind(delivered, JourneyRules(tz=NY, quiet=QUIET))[kind]
    assert due_got == due and due_got.astimezone(NY).hour == 10
    assert expires_got == expires


def test_a_send_time_skipped_by_dst_lands_after_the_jump() -> None:
    # 02:30 does not exist in New York on 2027-03-14
    when = at_local(date(2027, 3, 14), time(2, 30), NY)
    assert when.astimezone(NY) == ny(2027, 3, 14, 3, 30)
    assert end_of_local_day(date(2027, 3, 13), NY) == ny(2027, 3, 14, 0, 0)


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (time(10, 0), sh(2026, 11, 6, 10, 0)),   # outside quiet hours: as configured
        (time(7, 30), sh(2026, 11, 6, 9, 0)),    # in quiet hours: when they end
        (time(21, 0), sh(2026, 11, 7, 9, 0)),    # quiet hours start at 21:00 sharp
        (time(20, 59), sh(2026, 11, 6, 20, 59)),
    ],
)
def test_send_times_in_quiet_hours_move_to_their_end(at: time, due: datetime) -> None:
    rules = JourneyRules(tz=SH, quiet=QUIET, followup_time=at)
    assert plans_by_kind(sh(2026, 11, 3, 10, 0), rules)[FOLLOWUP_3D][0] == due


def test_checkin_keeps_its_two_hour_rule() -> None:
    due, expires = plans_by_kind(sh(2026, 11, 3, 20, 0), JourneyRules(tz=SH, quiet=QUIET))[CHECKIN]
    assert due == sh(2026, 11, 4, 9, 0) and expires == sh(2026, 11, 4, 21, 0)


@pytest.mark.parametrize(
    ("delivered", "now", "sendable"),
    [
        # a late import: what is past its window is stale already when planned
        (sh(2026, 11, 3, 10, 0), sh(2026, 11, 6, 9, 0),
         {CHECKIN: False, FOLLOWUP_3D: True, VISIT_7D: True, FIRST_SERVICE: True}),
        (sh(2026, 11, 3, 10, 0), sh(2026, 11, 8, 9, 0),
         {CHECKIN: False, FOLLOWUP_3D: False, VISIT_7D: True, FIRST_SERVICE: True}),
        (sh(2026, 11, 3, 10, 0), sh(2026, 11, 24, 23, 0),
         {CHECKIN: False, FOLLOWUP_3D: False, VISIT_7D: False, FIRST_SERVICE: True}),
        (sh(2026, 11, 3, 10, 0), sh(2026, 11, 25, 0, 1),
         {CHECKIN: False, FOLLOWUP_3D: False, VISIT_7D: False, FIRST_SERVICE: False}),
    ],
)
def test_late_imports_only_send_what_is_in_its_window(delivered: datetime, now: datetime,
                                                      sendable: dict[str, bool]) -> None:
    plans = plans_by_kind(delivered, JourneyRules(tz=SH, quiet=QUIET))
    assert {k: expires > now for k, (_, expires) in plans.items()} == sendable


def test_journey_rules_follow_settings() -> None:
    settings = Settings(_env_file=None, followup_day=2, followup_time="11:15",
                        first_service_day=15, first_service_deadline_day=20)
    rules = journey_rules(settings)
    plans = plans_by_kind(sh(2026, 11, 3, 10, 0), rules)
    assert plans[FOLLOWUP_3D][0] == sh(2026, 11, 5, 11, 15)
    assert plans[FIRST_SERVICE] == (sh(2026, 11, 18, 10, 0), sh(2026, 11, 24, 0, 0))


# --- visits ----------------------------------------------------------------------------------


def visit_plans(**overrides: object) -> dict[str, object]:
    args: dict[str, object] = {
        "visit_id": 7, "customer_id": 1, "vehicle_id": 2, "kind": "maintenance",
        "left_at": sh(2026, 11, 3, 16, 0), "major_repair": False, "mileage": 5000,
        "next_on": None, "next_km": None, "advisor": "李娜",
        "rules": JourneyRules(tz=SH, quiet=QUIET),
    }
    args.update(overrides)
    return {p.kind: p for p in plan_visit(**args)}  # type: ignore[arg-type]


def test_visit_follow_up_windows() -> None:
    plans = visit_plans()
    follow = plans[SERVICE_FOLLOWUP]
    assert (follow.due_at, follow.expires_at) == (sh(2026, 11, 5, 10, 0), sh(2026, 11, 7, 0, 0))  # type: ignore[attr-defined]
    assert follow.payload["visit_id"] == 7 and follow.payload["visit_kind"] == "maintenance"  # type: ignore[attr-defined]
    assert follow.payload["next_service_on"] == "2027-05-03"  # type: ignore[attr-defined]
    assert follow.payload["next_service_km"] == 15000  # type: ignore[attr-defined]
    major = visit_plans(kind="repair", major_repair=True)[SERVICE_FOLLOWUP]
    assert major.expires_at == sh(2026, 11, 11, 0, 0)  # type: ignore[attr-defined]
    assert major.payload["next_service_on"] is None  # type: ignore[attr-defined]


def test_a_visit_plans_no_service_due_reminder_the_forecast_does() -> None:
    # the service-due reminder follows the car's forecast (date or mileage, whichever first,
    # tests/test_mileage.py), written by the daily scan
    assert SERVICE_DUE not in visit_plans(kind="repair", next_on=date(2027, 1, 20))
    assert SERVICE_DUE not in visit_plans()


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 11, 3), 6, date(2027, 5, 3)),
        (date(2026, 7, 15), 6, date(2027, 1, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_last(day: date, months: int,
                                                    expected: date) -> None:
    assert add_months(day, months) == expected


def test_next_service_prefers_the_workshops_values() -> None:
    rules = JourneyRules(tz=SH, quiet=QUIET)
    assert next_service(kind="maintenance", left_on=date(2026, 11, 3), mileage=5000,
                        next_on=date(2027, 3, 1), next_km=None, rules=rules) == (
        date(2027, 3, 1), None)
    assert next_service(kind="first_service", left_on=date(2026, 11, 3), mileage=None,
                        next_on=None, next_km=None, rules=rules) == (date(2027, 5, 3), None)
    assert next_service(kind="accident", left_on=date(2026, 11, 3), mileage=5000,
                        next_on=None, next_km=None, rules=rules) == (None, None)


# --- birthdays --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "lunar", "key"),
    [
        (date(1985, 6, 1), False, "G0601"),
        (date(1988, 2, 29), False, "G0229"),
        (date(1990, 10, 3), True, "L0815"),    # 1990-10-03 was lunar 8/15 (中秋)
        (date(2023, 3, 22), True, "R0201"),    # lunar leap 2nd month, 1st day (闰二月初一)
        (date(1990, 3, 26), True, "L0230"),    # a lunar 30th
        (date(1899, 5, 1), True, "G0501"),     # outside the lunar tables: Gregorian
        (None, True, None),
    ],
)
def test_birthday_keys_stored_on_the_file(born: date | None, lunar: bool, key: str | None) -> None:
    assert birthday_key(born, lunar) == key


@pytest.mark.parametrize(
    ("day", "greets", "does_not_greet"),
    [
        (date(2026, 6, 1), ["G0601"], ["G0531"]),
        # 29 February: 28 February in other years, the day itself in leap years
        (date(2027, 2, 28), ["G0228", "G0229"], ["G0301"]),
        (date(2028, 2, 28), ["G0228"], ["G0229"]),
        (date(2028, 2, 29), ["G0229"], ["G0228"]),
        (date(2100, 2, 28), ["G0229"], []),                  # 2100 is not a leap year
        # lunar 8/15 in 2026 is 25 September
        (date(2026, 9, 25), ["L0815"], ["L0814"]),
        # leap-month births: in the leap month when the year has it ...
        (date(2023, 3, 22), ["R0201"], ["L0201"]),
        (date(2023, 2, 20), ["L0201"], ["R0201"]),
        # ... else in the ordinary month of that number
        (date(2024, 3, 10), ["L0201", "R0201"], []),
        (date(2025, 2, 28), ["L0201", "R0201"], []),
        # a lunar 30th in a year whose month has 29 days: on the 29th
        (date(2026, 4, 16), ["L0229", "L0230"], []),
        (date(2026, 3, 18), ["L0130"], ["L0129"]),            # the 1st month has 30 days
    ],
)
def test_birthday_keys_greeted_on_a_day(day: date, greets: list[str],
                                        does_not_greet: list[str]) -> None:
    keys = birthday_keys_on(day)
    assert all(k in keys for k in greets), keys
    assert not any(k in keys for k in does_not_greet), keys


# --- expiry reminders and catch-up ---------------------------------------------------------


D = date(2026, 11, 3)


@pytest.mark.parametrize(
    ("days", "leads", "expected"),
    [
        ([D], (30, 7), [(D + timedelta(days=7), 7), (D + timedelta(days=30), 30)]),
        ([D], (30,), [(D + timedelta(days=30), 30)]),
        # two days missed: their reminders still go out (the policies are still valid)
        ([D - timedelta(days=2), D - timedelta(days=1), D], (30, 7),
         sorted([(D + timedelta(days=n + lead), lead) for lead in (30, 7) for n in (-2, -1, 0)])),
        # three weeks missed: the 30-day reminders whose 7-day reminder is due are dropped
        ([D - timedelta(days=n) for n in range(21, -1, -1)], (30, 7),
         sorted({(D + timedelta(days=7 - n), 7) for n in range(8)}
                | {(D + timedelta(days=30 - n), 30) for n in range(22) if 30 - n > 7})),
    ],
)
def test_expiry_reminders_due(days: list[date], leads: tuple[int, ...],
                              expected: list[tuple[date, int]]) -> None:
    assert expiry_reminders_due(days, D, leads) == expected


@pytest.mark.parametrize(
    ("last", "catchup", "expected"),
    [
        (None, 31, [D]),
        (D, 31, [D]),
        (D - timedelta(days=1), 31, [D]),
        (D - timedelta(days=3), 31, [D - timedelta(days=2), D - timedelta(days=1), D]),
        (D - timedelta(days=100), 2, [D - timedelta(days=2), D - timedelta(days=1), D]),
    ],
)
def test_scan_days_cover_what_was_missed(last: date | None, catchup: int,
                                         expected: list[date]) -> None:
    assert scan_days(last, D, catchup) == expected


# --- settings strings and holidays ----------------------------------------------------------


def test_settings_strings() -> None:
    assert parse_hhmm("9:30") == time(9, 30)
    assert parse_day_list("7, 30 ,30") == (30, 7)
    assert parse_weekdays("1-5") == frozenset({1, 2, 3, 4, 5})
    assert parse_weekdays("1-3,6") == frozenset({1, 2, 3, 6})
    for bad, parse in (("25:00", parse_hhmm), ("x", parse_day_list), ("0", parse_day_list),
                       ("8", parse_weekdays), ("5-1", parse_weekdays)):
        with pytest.raises(ValueError):
            parse(bad)  # type: ignore[operator]
    with pytest.raises(ValueError):
        Settings(_env_file=None, insurance_lead_days="thirty")
    with pytest.raises(ValueError):
        Settings(_env_file=None, holidays="13-01:nope")


def test_holidays_gregorian_and_lunar() -> None:
    holidays = parse_holidays("01-01:元旦, L01-01:春节\nL12-30:除夕;10-01:国庆节")
    assert holidays[1] == Holiday(1, 1, "春节", lunar=True)
    on = {h.name for h in holidays if h.falls_on(date(2027, 2, 6))}
    assert on == {"春节"}  # lunar new year 2027 is 6 February
    assert {h.name for h in holidays if h.falls_on(date(2026, 10, 1))} == {"国庆节"}
    # 除夕 is the last day of the 12th month: 2027-02-05 (that month has 29 days)
    assert {h.name for h in holidays if h.falls_on(date(2027, 2, 5))} == {"除夕"}
    assert not any(h.falls_on(date(2027, 2, 4)) for h in holidays)
    with pytest.raises(ValueError):
        parse_holidays("L13-01:bad")


# --- booking ------------------------------------------------------------------------------


def test_bookable_days_follow_opening_days_and_horizon() -> None:
    rules = BookingRules(tz=SH, quiet=QUIET, weekdays=frozenset({1, 2, 3, 4, 5, 6}),
                         horizon_days=14)
    days = bookable_days(D, rules)  # D is a Tuesday
    assert days[0] == date(2026, 11, 4) and days[-1] == date(2026, 11, 17)
    assert all(d.isoweekday() != 7 for d in days) and len(days) == 12


@pytest.mark.parametrize(
    ("day", "now", "due"),
    [
        (date(2026, 11, 10), sh(2026, 11, 3, 10, 0), sh(2026, 11, 9, 18, 0)),
        (date(2026, 11, 4), sh(2026, 11, 3, 17, 0), sh(2026, 11, 3, 18, 0)),
        (date(2026, 11, 4), sh(2026, 11, 3, 19, 0), None),  # too late: the confirmation did it
    ],
)
def test_booking_reminder_the_day_before(day: date, now: datetime, due: datetime | None) -> None:
    rules = BookingRules(tz=SH, quiet=QUIET, reminder_time=time(18, 0))
    plan = plan_reminder(booking_id=3, customer_id=1, vehicle_id=2, day=day, slot="morning",
                         kind=BookingKind.FIRST_SERVICE, now=now, rules=rules)
    assert (plan.due_at if plan else None) == due
    if plan is not None:
        assert plan.expires_at == datetime.combine(day, time(0), SH).astimezone(UTC)
        assert plan.payload == {"booking_id": 3, "day": day.isoformat(), "slot": "morning",
                                "time": "09:00-12:00", "kind": "first_service"}
