"""Pure calendar rules for scheduled touchpoints: local days, windows, birthdays, holidays.

No I/O and no clock reads: callers pass dates, datetimes and the dealership's zone. Settings
strings ("10:00", "30,7", "1-5", "01-01:元旦,L08-15:中秋节") are parsed here, so the
configuration check and the code agree on what they mean.

Lunar (农历) dates come from ``lunardate`` (tables for lunar years 1900-2099).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lunardate import LunarDate

LUNAR_FIRST_DAY = date(1900, 1, 31)  # lunar 1900-01-01, where lunardate's tables begin
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_HOLIDAY = re.compile(r"^(L?)(\d{1,2})-(\d{1,2})$", re.IGNORECASE)


def parse_hhmm(value: str) -> time:
    """``"09:30"`` -> time(9, 30); anything else is a ValueError naming the expected form."""
    m = _HHMM.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a time of day; use HH:MM, e.g. 09:30")
    return time(int(m.group(1)), int(m.group(2)))


def parse_day_list(value: str) -> tuple[int, ...]:
    """``"30,7"`` -> (30, 7): distinct positive day counts, largest first."""
    days: set[int] = set()
    for part in re.split(r"[,\s;]+", value.strip()):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) <= 366:
            raise ValueError(f"{part!r} is not a number of days (1-366); use e.g. 30,7")
        days.add(int(part))
    return tuple(sorted(days, reverse=True))


def parse_weekdays(value: str) -> frozenset[int]:
    """ISO weekdays (1 = Monday): ``"1-5"``, ``"1,2,3,4,5,6"`` or ``"1-3,6"``."""
    days: set[int] = set()
    for part in re.split(r"[,\s]+", value.strip()):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(
                f"{part!r} is not a weekday or a range; use e.g. 1-5 or 1,3,5"
            ) from None
        if not (1 <= a <= 7 and 1 <= b <= 7 and a <= b):
            raise ValueError(f"{part!r}: weekdays are 1 (Monday) to 7 (Sunday)")
        days.update(range(a, b + 1))
    if not days:
        raise ValueError("name at least one weekday, e.g. 1-6")
    return frozenset(days)


@dataclass(frozen=True)
class Holiday:
    """A greeting date: Gregorian month/day, or a lunar month/day when ``lunar``."""

    month: int
    day: int
    name: str
    lunar: bool = False

    def falls_on(self, day: date) -> bool:
        if not self.lunar:
            return (day.month, day.day) == (self.month, self.day)
        ld = to_lunar(day)
        if ld is None or ld.is_leap_month or ld.month != self.month:
            return False
        if ld.day == self.day:
            return True
        # 除夕-style dates: lunar day 30 in a month of 29 days is kept on its last day.
        return self.day == 30 and ld.day == 29 and _last_day_of_lunar_month(day)


def parse_holidays(value: str) -> list[Holiday]:
    """``"01-01:元旦,L01-01:春节"`` (also one a line): ``L`` marks a lunar (农历) date."""
    out: list[Holiday] = []
    for item in re.split(r"[,\n;]+", value):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        when, sep, name = item.partition(":")
        m = _HOLIDAY.match(when.strip())
        if not sep or not m or not name.strip():
            raise ValueError(
                f"{item!r}: write a holiday as MM-DD:name, or LMM-DD:name for a lunar date"
            )
        lunar, month, day = bool(m.group(1)), int(m.group(2)), int(m.group(3))
        limit = 30 if lunar else (29 if month == 2 else 31)
        if not 1 <= month <= 12 or not 1 <= day <= limit:
            raise ValueError(f"{item!r}: no such {'lunar ' if lunar else ''}date")
        out.append(Holiday(month, day, name.strip()[:40], lunar))
    return out


# --- local days -------------------------------------------------------------------------


def local_date(when: datetime, tz: ZoneInfo) -> date:
    return when.astimezone(tz).date()


def at_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the local wall clock on ``day`` shows ``at``.

    A wall time skipped by a DST jump lands just after the jump (zoneinfo's fold=0 reading).
    """
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of the local day after ``day`` (a window "until the end of day")."""
    return datetime.combine(day + timedelta(days=1), time(0)).replace(tzinfo=tz).astimezone(
        UTC
    )


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months; a day the target month lacks becomes its last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


# --- birthdays --------------------------------------------------------------------------


def to_lunar(day: date) -> LunarDate | None:
    """The lunar date of a Gregorian day, or None outside the library's tables (lunar years
    1900-2099, which begin on 1900-01-31)."""
    if day < LUNAR_FIRST_DAY or day.year > 2099:
        return None
    try:
        found = LunarDate.from_solar_date(day.year, day.month, day.day)
    except ValueError:
        return None
    return found if found.day >= 1 else None


def _last_day_of_lunar_month(day: date) -> bool:
    nxt = to_lunar(day + timedelta(days=1))
    return nxt is not None and nxt.day == 1


def birthday_key(birthday: date | None, lunar: bool) -> str | None:
    """The scan key stored on the owner's file (``Customer.birthday_md``).

    ``G0315``: greeted every 15 March. ``L0815``: greeted on lunar 8/15. ``R0415``: born on the
    15th of a leap 4th month (闰四月), greeted then in years that have a leap 4th month and on
    the ordinary 4/15 in other years. ``birthday`` is always the Gregorian date of birth (as on
    the ID card); ``lunar`` says the owner celebrates its lunar anniversary.
    """
    if birthday is None:
        return None
    if lunar:
        ld = to_lunar(birthday)
        if ld is not None:
            return f"{'R' if ld.is_leap_month else 'L'}{ld.month:02d}{ld.day:02d}"
    return f"G{birthday.month:02d}{birthday.day:02d}"


def _is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday_keys_on(day: date) -> list[str]:
    """Every birthday key greeted on local ``day``.

    Gregorian: 29 Feb is greeted on 28 Feb in other years. Lunar: a lunar 30th is greeted on
    the 29th when this year's month has only 29 days; a leap-month birthday is greeted in the
    leap month when the year has it, and otherwise in the ordinary month of that number.
    """
    keys = [f"G{day.month:02d}{day.day:02d}"]
    if (day.month, day.day) == (2, 28) and not _is_leap_year(day.year):
        keys.append("G0229")
    ld = to_lunar(day)
    if ld is None:
        return keys
    days = [ld.day]
    if ld.day == 29 and _last_day_of_lunar_month(day):
        days.append(30)
    for d in days:
        if ld.is_leap_month:
            keys.append(f"R{ld.month:02d}{d:02d}")
            continue
        keys.append(f"L{ld.month:02d}{d:02d}")
        if LunarDate.leap_month_for_year(ld.year) != ld.month:
            keys.append(f"R{ld.month:02d}{d:02d}")
    return keys


# --- expiry reminders --------------------------------------------------------------------


def expiry_reminders_due(
    days: list[date], today: date, leads: tuple[int, ...]
) -> list[tuple[date, int]]:
    """(expiry date, lead) pairs whose reminder falls on one of ``days`` and is still useful.

    ``days`` are the local days a scan covers (the missed ones and today). A reminder whose
    day was missed still goes out while the expiry is ahead, unless a shorter lead's reminder
    is also due by today (then that one says it better): after a three-week outage an owner
    gets the 7-day reminder, not both.
    """
    shorter = sorted(leads)
    out: list[tuple[date, int]] = []
    for lead in leads:
        next_shorter = max((s for s in shorter if s < lead), default=None)
        for day in days:
            expiry = day + timedelta(days=lead)
            if expiry < today:
                continue
            if next_shorter is not None and expiry - timedelta(days=next_shorter) <= today:
                continue
            out.append((expiry, lead))
    return sorted(set(out))


def scan_days(last_day: date | None, today: date, catchup_days: int) -> list[date]:
    """The local days a scan covers: every day after the last scanned one up to today,
    looking back at most ``catchup_days``; today alone on the very first scan."""
    if last_day is None or last_day >= today:
        return [today]
    first = max(last_day + timedelta(days=1), today - timedelta(days=catchup_days))
    return [first + timedelta(days=i) for i in range((today - first).days + 1)]
