"""Report periods: a range of *local* dates (the dealership's time zone), turned into UTC
bounds ``[start, end)`` once; months, ISO weeks and date ranges as people type them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` (inclusive) to ``end`` (exclusive), with a label for people."""

    start: date
    end: date
    label: str

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """Local midnight of the first day and of the day after the last, in UTC."""
        return (datetime.combine(self.start, time(0), tzinfo=tz).astimezone(UTC),
                datetime.combine(self.end, time(0), tzinfo=tz).astimezone(UTC))


class PeriodError(ValueError):
    """A period argument people typed is not understood; the message says what to type."""


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)


def month_period(value: str) -> Period:
    """``2026-11`` -> 1 November to 1 December."""
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise PeriodError(f"{value!r} is not a month; use YYYY-MM, for example 2026-11")
    year, month = int(m.group(1)), int(m.group(2))
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(start, end, f"{year:04d}-{month:02d}")


def week_period(value: str) -> Period:
    """``2026-W45`` -> that ISO week, Monday to the next Monday."""
    m = _WEEK.match(value.strip())
    if not m:
        raise PeriodError(f"{value!r} is not an ISO week; use YYYY-Www, for example 2026-W45")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        start = date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise PeriodError(f"{value!r}: {year} has no week {week}") from exc
    return Period(start, start + timedelta(days=7), f"{year:04d}-W{week:02d}")


def range_period(first: str, last: str) -> Period:
    """``--from 2026-11-01 --to 2026-11-15``: both days included."""
    try:
        start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
    except ValueError as exc:
        raise PeriodError(f"dates are YYYY-MM-DD ({exc})") from None
    if end < start:
        raise PeriodError(f"--to {end} is before --from {start}")
    return Period(start, end + timedelta(days=1), f"{start}..{end}")
