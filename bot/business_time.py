"""Business time: deadline clocks that run only inside opening hours.

Pure functions over a :class:`BusinessCalendar` (local opening hours on some ISO weekdays):
a complaint at 17:30 with 2 hours to answer (08:30-18:00) is due at 10:00 next morning.
Tickets and conversations count their deadlines on the same calendar
(``CAREBOT_TICKET_BUSINESS_HOURS``, ``CAREBOT_TICKET_BUSINESS_DAYS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessCalendar:
    """Local opening hours on some ISO weekdays; deadline clocks run only inside them."""

    tz: ZoneInfo
    opens: time
    closes: time
    weekdays: frozenset[int] = frozenset(range(1, 8))

    @property
    def day_length(self) -> timedelta:
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_business_hours(value: str) -> tuple[time, time] | None:
    """``"08:30-18:00"`` -> (08:30, 18:00); ``"off"`` (plain hours) -> None."""
    value = value.strip()
    if value.lower() in ("", "off", "none", "24h"):
        return None
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError("use HH:MM-HH:MM, for example 08:30-18:00, or 'off' for plain hours")
    bounds: list[time] = []
    for part in parts:
        m = _HHMM.match(part.strip())
        if not m:
            raise ValueError(f"{part.strip()!r} is not a time of day; use HH:MM-HH:MM")
        bounds.append(time(int(m.group(1)), int(m.group(2))))
    if not bounds[0] < bounds[1]:
        raise ValueError("business hours must open before they close on the same day")
    return bounds[0], bounds[1]


def parse_business_days(value: str) -> frozenset[int]:
    """ISO weekdays: ``"1-7"`` (every day), ``"1-5"``, ``"1,2,3,4,5,6"``."""
    days: set[int] = set()
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"{part!r}: use weekday numbers 1 (Monday) to 7, e.g. 1-5 or 1,3,5")
        a, b = int(lo), int(hi or lo)
        if not (1 <= a <= 7 and 1 <= b <= 7 and a <= b):
            raise ValueError(f"{part!r}: weekdays run from 1 (Monday) to 7 (Sunday)")
        days.update(range(a, b + 1))
    if not days:
        raise ValueError("at least one business day is needed")
    return frozenset(days)


def _at_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)


def add_business_time(start: datetime, duration: timedelta,
                      calendar: BusinessCalendar | None) -> datetime:
    """The instant ``duration`` of business time after ``start`` (UTC, aware).

    Plain hours when ``calendar`` is None. Time outside business hours does not count: a
    complaint at 17:30 with 2 hours to answer (08:30-18:00) is due at 10:00 next morning.
    """
    start = start.astimezone(UTC)
    if calendar is None or duration <= timedelta(0):
        return start + max(duration, timedelta(0))
    remaining = duration
    cursor = start
    for _ in range(4000):  # a few years of days: far beyond any deadline
        day = cursor.astimezone(calendar.tz).date()
        if day.isoweekday() in calendar.weekdays:
            open_at = _at_local(day, calendar.opens, calendar.tz)
            close_at = _at_local(day, calendar.closes, calendar.tz)
            cursor = max(cursor, open_at)
            if cursor < close_at:
                available = close_at - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        cursor = _at_local(day + timedelta(days=1), time(0), calendar.tz)
    raise ValueError("business calendar has no open hours in reach")


def business_days(days: float, calendar: BusinessCalendar | None) -> timedelta:
    """``days`` business days as business time: whole business days, or 24 h in plain hours."""
    return (calendar.day_length if calendar else timedelta(hours=24)) * days
