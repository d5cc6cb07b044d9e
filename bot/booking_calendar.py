"""The workshop's booking calendar: its slots, what each slot takes, and the days it is shut.

Pure rules, no I/O and no clock: the settings strings (``CAREBOT_BOOKING_SLOTS``,
``CAREBOT_BOOKING_CAPACITY``, ``CAREBOT_BOOKING_CLOSED_DAYS``) are parsed here, so the
configuration check and the booking code agree on what they mean. A day is open for
bookings when it is one of the workshop's weekdays, not a holiday and not a closed day;
a slot has room for a job kind while fewer bookings of that kind hold it than its capacity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from bot.journeys.timing import Holiday, parse_hhmm

JOB_KINDS = ("maintenance", "repair", "inspection", "first_service", "other")
_SLOT = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
_CAPACITY = re.compile(r"^(?:(\d{1,2}:\d{2})/)?([a-z_]+|\*)\s*[:=]\s*(\d{1,4})$")
_DAY = re.compile(r"^(?:(\d{4})-)?(L?)(\d{1,2})-(\d{1,2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Slot:
    """A part of the workshop day that takes bookings; ``code`` is its start, "09:00"."""

    start: time
    end: time

    @property
    def code(self) -> str:
        return f"{self.start:%H:%M}"

    @property
    def short(self) -> str:
        """The code without the colon, for the 64 bytes of a button's data: "0900"."""
        return f"{self.start:%H%M}"


def parse_slots(value: str) -> tuple[Slot, ...]:
    """``"09:00-12:00,13:30-17:30"``: the day's slots, in order, not overlapping."""
    slots: list[Slot] = []
    for part in (p for p in re.split(r"[,;\s]+(?=\d)", value.strip()) if p.strip()):
        m = _SLOT.match(part)
        if not m:
            raise ValueError(f"{part!r}: write a slot as HH:MM-HH:MM, e.g. 09:00-12:00")
        start, end = parse_hhmm(m.group(1)), parse_hhmm(m.group(2))
        if not start < end:
            raise ValueError(f"{part!r}: a slot must end after it starts, on the same day")
        if slots and start < slots[-1].end:
            raise ValueError(f"{part!r}: slots must be in order and must not overlap")
        slots.append(Slot(start, end))
    if not slots:
        raise ValueError("name at least one slot, e.g. 09:00-12:00,13:30-17:30")
    return tuple(slots)


@dataclass(frozen=True)
class Capacity:
    """Bookings a slot takes per job kind: ``per_kind``, or ``per_slot`` for one slot."""

    per_kind: dict[str, int]
    per_slot: dict[tuple[str, str], int] = field(default_factory=dict)

    def of(self, slot_code: str, kind: str) -> int:
        found = self.per_slot.get((slot_code, kind))
        if found is None:
            found = self.per_slot.get((slot_code, "*"))
        if found is None:
            found = self.per_kind.get(kind, self.per_kind.get("*", 0))
        return found


def parse_capacity(value: str) -> Capacity:
    """``"maintenance:4,repair:2,*:1"``, a slot's own with ``"13:30/repair:3"``. ``*`` is any
    kind not named; a kind not named and no ``*`` takes no bookings (0)."""
    per_kind: dict[str, int] = {}
    per_slot: dict[tuple[str, str], int] = {}
    for part in (p.strip().lower() for p in re.split(r"[,;\n]+", value)):
        if not part:
            continue
        m = _CAPACITY.match(part.replace(" ", ""))
        if not m or (m.group(2) != "*" and m.group(2) not in JOB_KINDS):
            raise ValueError(f"{part!r}: write kind:count (kinds: {', '.join(JOB_KINDS)}, or *),"
                             " e.g. maintenance:4, or 13:30/repair:3 for one slot")
        slot, kind, n = m.group(1), m.group(2), int(m.group(3))
        if slot is not None:
            per_slot[(f"{parse_hhmm(slot):%H:%M}", kind)] = n
        else:
            per_kind[kind] = n
    return Capacity(per_kind, per_slot)


@dataclass(frozen=True)
class ClosedDay:
    """A day the workshop is shut: every year (month-day, or lunar), or one date; a range
    ``until`` a later date when ``until`` is set."""

    month: int
    day: int
    year: int | None = None
    lunar: bool = False
    until: date | None = None

    def covers(self, day: date) -> bool:
        if self.year is not None:
            first = date(self.year, self.month, self.day)
            return first <= day <= (self.until or first)
        return Holiday(self.month, self.day, "", self.lunar).falls_on(day)


def _closed_day(text: str) -> ClosedDay:
    m = _DAY.match(text.strip())
    if not m:
        raise ValueError(f"{text!r}: write MM-DD (every year), LMM-DD (lunar), YYYY-MM-DD, "
                         "or YYYY-MM-DD..YYYY-MM-DD")
    year, lunar, month, day = m.group(1), bool(m.group(2)), int(m.group(3)), int(m.group(4))
    if year is not None and lunar:
        raise ValueError(f"{text!r}: a dated day is Gregorian; write LMM-DD for a lunar one")
    try:
        date(int(year) if year else 2000, month, min(day, 29) if lunar else day)
    except ValueError:
        raise ValueError(f"{text!r}: no such date") from None
    if lunar and day > 30:
        raise ValueError(f"{text!r}: no such lunar date")
    return ClosedDay(month, day, int(year) if year else None, lunar)


def parse_closed_days(value: str) -> tuple[ClosedDay, ...]:
    """``"05-01,L01-02,2026-10-01..2026-10-07"``: days the workshop takes no bookings."""
    out: list[ClosedDay] = []
    for part in (p.strip() for p in re.split(r"[,;\n]+", value)):
        if not part or part.startswith("#"):
            continue
        first, dots, last = part.partition("..")
        closed = _closed_day(first)
        if dots:
            end = _closed_day(last)
            if closed.year is None or end.year is None:
                raise ValueError(
                    f"{part!r}: a range runs between two dates, YYYY-MM-DD..YYYY-MM-DD"
                )
            start = date(closed.year, closed.month, closed.day)
            until = date(end.year, end.month, end.day)
            if until < start:
                raise ValueError(f"{part!r}: the range ends before it starts")
            closed = ClosedDay(closed.month, closed.day, closed.year, until=until)
        out.append(closed)
    return tuple(out)


@dataclass(frozen=True)
class WorkshopCalendar:
    """When the workshop takes bookings."""

    weekdays: frozenset[int] = frozenset(range(1, 8))
    holidays: tuple[Holiday, ...] = ()
    closed: tuple[ClosedDay, ...] = ()

    def is_open(self, day: date) -> bool:
        return (day.isoweekday() in self.weekdays
                and not any(h.falls_on(day) for h in self.holidays)
                and not any(c.covers(day) for c in self.closed))

    def open_days(self, today: date, horizon_days: int) -> list[date]:
        """The open days from tomorrow, ``horizon_days`` calendar days ahead."""
        days = (today + timedelta(days=n) for n in range(1, horizon_days + 1))
        return [d for d in days if self.is_open(d)]


def slot_of(slots: Iterable[Slot], code: str) -> Slot | None:
    """The slot with this code ("09:00", "9:00", or "0900" from a button), if the day has it."""
    try:
        wanted = f"{parse_hhmm(code if ':' in code else f'{code[:-2]}:{code[-2:]}'):%H:%M}"
    except ValueError:
        return None
    return next((s for s in slots if s.code == wanted), None)
