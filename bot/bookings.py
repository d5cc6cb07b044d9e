"""Workshop bookings (002 §3.1, issue 17): open days, slots with room, book, move, cancel,
arrived and no-show, and the booking rate (预约率).

Domain code: plain values and ``now`` in, rows out; the owner's side is
``bot/handlers/booking.py``, the staff's the console page ``bookings`` and
``carebot booking``. Each booking takes one place of its job kind in its slot
(``CAREBOT_BOOKING_CAPACITY``); a full slot is not offered and cannot be booked. A booking
writes its reminder for the day before; a first-service booking cancels the pending
first-service reminder (and cancelling the booking gives it back, if its window is still
open); a service booking does the same for the service-due reminder. A no-show is offered
a new time: a touchpoint owed through the outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q, Subquery
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from bot.booking_calendar import (
    Capacity,
    ClosedDay,
    Slot,
    WorkshopCalendar,
    parse_capacity,
    parse_closed_days,
    parse_slots,
    slot_of,
)
from bot.business_time import parse_business_days
from bot.config import QuietHours, Settings
from bot.journeys.occasions import read_holidays_file
from bot.journeys.plans import (
    BOOKING_NO_SHOW,
    BOOKING_REMINDER,
    FIRST_SERVICE,
    SERVICE_DUE,
    TouchpointPlan,
    write_touchpoints,
)
from bot.journeys.repairs import REPAIR_REMINDER
from bot.journeys.timing import (
    Holiday,
    at_local,
    end_of_local_day,
    local_date,
    parse_hhmm,
    parse_holidays,
    parse_weekdays,
)
from bot.schedule import shift_out_of_quiet_hours
from db.models import (
    Booking,
    BookingChannel,
    BookingKind,
    BookingStatus,
    Staff,
    Touchpoint,
    TouchpointStatus,
    Visit,
    VisitKind,
)

log = logging.getLogger(__name__)

FIRST_SERVICE_BOOKED = "first service already booked"
FIRST_SERVICE_DONE = "first service already done"
SERVICE_BOOKED = "a service visit is already booked"
BOOKING_CANCELLED = "booking cancelled"
BOOKING_MOVED = "booking moved"
# A booking holds its place while booked, and once the owner came.
TAKING = (BookingStatus.BOOKED, BookingStatus.ARRIVED)
# Reminders a booking makes unnecessary, by booking kind.
_SUPERSEDES = {
    BookingKind.FIRST_SERVICE: (FIRST_SERVICE, FIRST_SERVICE_BOOKED),
    BookingKind.MAINTENANCE: (SERVICE_DUE, SERVICE_BOOKED),
}
DEFAULT_SLOTS = parse_slots("09:00-12:00,13:30-17:30")
DEFAULT_CAPACITY = parse_capacity("maintenance:4,first_service:2,repair:2,inspection:2,other:1")


@dataclass(frozen=True)
class BookingRules:
    tz: ZoneInfo
    quiet: QuietHours | None
    weekdays: frozenset[int] = frozenset(range(1, 8))
    horizon_days: int = 14
    reminder_time: time = time(18, 0)
    slots: tuple[Slot, ...] = DEFAULT_SLOTS
    capacity: Capacity = DEFAULT_CAPACITY
    holidays: tuple[Holiday, ...] = ()
    closed: tuple[ClosedDay, ...] = ()
    visit_days: int = 7

    @property
    def calendar(self) -> WorkshopCalendar:
        return WorkshopCalendar(self.weekdays, self.holidays, self.closed)


def booking_rules(settings: Settings) -> BookingRules:
    """The rules from the settings: open weekdays are the booking weekdays that are also
    business days; holidays (CAREBOT_HOLIDAYS and the holidays file) are shut unless
    ``booking_closed_on_holidays`` is off."""
    holidays: list[Holiday] = []
    if settings.booking_closed_on_holidays:
        holidays = parse_holidays(settings.holidays)
        if settings.holidays_file is not None:
            holidays += read_holidays_file(settings.holidays_file)
    return BookingRules(
        tz=settings.tz,
        quiet=settings.quiet,
        weekdays=parse_weekdays(settings.booking_weekdays)
        & parse_business_days(settings.ticket_business_days),
        horizon_days=settings.booking_horizon_days,
        reminder_time=parse_hhmm(settings.booking_reminder_time),
        slots=parse_slots(settings.booking_slots),
        capacity=parse_capacity(settings.booking_capacity),
        holidays=tuple(holidays),
        closed=parse_closed_days(settings.booking_closed_days),
        visit_days=settings.booking_visit_days,
    )


def bookable_days(today: date, rules: BookingRules) -> list[date]:
    """The open days from tomorrow, ``horizon_days`` ahead (whether or not a slot has room)."""
    return rules.calendar.open_days(today, rules.horizon_days)


def resolve_slot(rules: BookingRules, code: str) -> Slot | None:
    """The day's slot for a code ("09:00", "0900"), or for the half-day names bookings had
    before slots were the dealership's ("morning", "afternoon")."""
    if code == "morning":
        return next((s for s in rules.slots if s.start < time(12, 0)), None)
    if code == "afternoon":
        return next((s for s in rules.slots if s.start >= time(12, 0)), None)
    return slot_of(rules.slots, code) if code[:1].isdigit() else None


def slot_range(rules: BookingRules, code: str) -> str:
    """"09:00-12:00" for a slot code, the code itself when the day no longer has it."""
    slot = resolve_slot(rules, code)
    return f"{slot.start:%H:%M}-{slot.end:%H:%M}" if slot else code


def kind_for(touchpoint_kind: str, payload: dict[str, object] | None = None) -> BookingKind:
    """What a booking made from a touchpoint is for: a no-show's new time is for the job it
    missed; a first-service reminder's is the first service; a recommended repair's reminder
    a repair; else a service."""
    if touchpoint_kind == BOOKING_NO_SHOW and payload is not None:
        try:
            return BookingKind(str(payload.get("kind", "")))
        except ValueError:
            return BookingKind.MAINTENANCE
    if touchpoint_kind == REPAIR_REMINDER:
        return BookingKind.REPAIR
    return (
        BookingKind.FIRST_SERVICE if touchpoint_kind == FIRST_SERVICE else BookingKind.MAINTENANCE
    )


# --------------------------------------------------------------------------- room


async def _taken(days: list[date], kind: BookingKind, rules: BookingRules,
                 ignore: int | None = None) -> dict[tuple[date, str], int]:
    """Places of ``kind`` taken, by (day, slot code); ``ignore``: a booking being moved."""
    rows = Booking.filter(day__in=days, kind=kind, status__in=TAKING)
    if ignore is not None:
        rows = rows.exclude(id=ignore)
    counted = await rows.annotate(n=Count("id")).group_by("day", "slot") \
        .values_list("day", "slot", "n")
    taken: dict[tuple[date, str], int] = {}
    for day, code, n in counted:
        slot = resolve_slot(rules, str(code))
        key = (day, slot.code if slot else str(code))
        taken[key] = taken.get(key, 0) + int(n)
    return taken


async def free_slots(day: date, kind: BookingKind, rules: BookingRules, *,
                     ignore: int | None = None) -> list[Slot]:
    """The slots of ``day`` with a place left for ``kind``."""
    taken = await _taken([day], kind, rules, ignore)
    return [s for s in rules.slots
            if taken.get((day, s.code), 0) < rules.capacity.of(s.code, kind.value)]


async def days_with_room(today: date, kind: BookingKind, rules: BookingRules, *,
                         ignore: int | None = None) -> list[date]:
    """The open days ahead with at least one slot that has a place for ``kind``."""
    days = bookable_days(today, rules)
    taken = await _taken(days, kind, rules, ignore)
    return [d for d in days if any(taken.get((d, s.code), 0) < rules.capacity.of(s.code, kind.value)
                                   for s in rules.slots)]


async def _lock_day(conn: BaseDBAsyncClient, day: date) -> None:
    """On PostgreSQL two bookings of one day wait for each other (a transaction lock), so
    two owners cannot both take a slot's last place; SQLite has one writer already."""
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query("SELECT pg_advisory_xact_lock(hashtext($1))",
                                 [f"carebot.booking:{day.isoformat()}"])


async def _has_room(day: date, slot: Slot, kind: BookingKind, rules: BookingRules,
                    ignore: int | None = None) -> bool:
    taken = await _taken([day], kind, rules, ignore)
    return taken.get((day, slot.code), 0) < rules.capacity.of(slot.code, kind.value)


# --------------------------------------------------------------------------- reminders


def booking_key(booking_id: int) -> str:
    return f"booking:{booking_id}"


def _reminders_of(booking_id: int) -> Q:
    key = booking_key(booking_id)
    return Q(occasion_key=key) | Q(occasion_key__startswith=f"{key}:")


def plan_reminder(
    *, booking_id: int, customer_id: int, vehicle_id: int | None, day: date, slot: str,
    kind: BookingKind, now: datetime, rules: BookingRules,
) -> TouchpointPlan | None:
    """The reminder the day before at ``reminder_time`` (out of quiet hours), valid until the
    booked day begins; none when that moment has already passed (booked for tomorrow late in
    the day: the confirmation just said it all). Its key names the day, so a booking moved
    to another day gets a reminder of its own."""
    due = shift_out_of_quiet_hours(
        at_local(day - timedelta(days=1), rules.reminder_time, rules.tz), rules.tz, rules.quiet
    )
    expires = end_of_local_day(day - timedelta(days=1), rules.tz)
    if due <= now or due >= expires:
        return None
    return TouchpointPlan(
        customer_id=customer_id, vehicle_id=vehicle_id, kind=BOOKING_REMINDER,
        occasion_key=f"{booking_key(booking_id)}:{day:%Y%m%d}", due_at=due, expires_at=expires,
        payload={"booking_id": booking_id, "day": day.isoformat(), "slot": slot,
                 "time": slot_range(rules, slot), "kind": kind.value},
    )


async def _remind(booking: Booking, now: datetime, rules: BookingRules) -> None:
    """Owe the reminder of the booking's day: a new row, or the one it had for that day
    before it was moved away and back (pending again, with its new time)."""
    plan = plan_reminder(booking_id=booking.id, customer_id=booking.customer_id,
                         vehicle_id=booking.vehicle_id, day=booking.day, slot=booking.slot,
                         kind=BookingKind(booking.kind), now=now, rules=rules)
    if plan is None:
        return
    again = await Touchpoint.filter(
        customer_id=plan.customer_id, kind=BOOKING_REMINDER, occasion_key=plan.occasion_key,
    ).update(status=TouchpointStatus.PENDING, status_reason="", due_at=plan.due_at,
             expires_at=plan.expires_at, payload=plan.payload)
    if not again:
        await write_touchpoints([plan], now=now)


async def forget_reminders(booking: Booking, reason: str) -> None:
    await Touchpoint.filter(_reminders_of(booking.id), customer_id=booking.customer_id,
                            kind=BOOKING_REMINDER, status=TouchpointStatus.PENDING,
                            ).update(status=TouchpointStatus.SKIPPED, status_reason=reason)


# --------------------------------------------------------------------------- booking


@dataclass(frozen=True)
class BookOutcome:
    booking: Booking | None  # None when full
    status: Literal["created", "exists", "full"] = "created"

    @property
    def created(self) -> bool:
        return self.status == "created"


@dataclass(frozen=True)
class Job:
    """What is booked besides the day and slot: who, which car, what for, said how."""

    customer_id: int
    vehicle_id: int | None
    kind: BookingKind
    note: str = ""
    photo_file_id: str = ""
    channel: BookingChannel = BookingChannel.BOT
    created_by_id: int | None = None
    source_touchpoint_id: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


async def book_job(job: Job, *, day: date, slot: str, now: datetime,
                   rules: BookingRules) -> BookOutcome:
    """Store a booking with its reminder, if its slot has a place for the job's kind; an
    open booking of that kind for that car (or owner) is returned instead of a second."""
    found = resolve_slot(rules, slot)
    if found is None:
        raise ValueError(f"unknown slot {slot!r}")
    today = local_date(now, rules.tz)
    async with in_transaction() as conn:
        await _lock_day(conn, day)
        existing = await Booking.filter(
            customer_id=job.customer_id, vehicle_id=job.vehicle_id, kind=job.kind,
            status=BookingStatus.BOOKED, day__gte=today,
        ).order_by("day").first()
        if existing is not None:
            return BookOutcome(existing, "exists")
        if not await _has_room(day, found, job.kind, rules):
            return BookOutcome(None, "full")
        booking = await Booking.create(
            customer_id=job.customer_id, vehicle_id=job.vehicle_id, day=day, slot=found.code,
            kind=job.kind, source_touchpoint_id=job.source_touchpoint_id, created_at=now,
            note=job.note[:2000], photo_file_id=job.photo_file_id[:200], channel=job.channel,
            created_by_id=job.created_by_id,
        )
        await _remind(booking, now, rules)
        if job.vehicle_id is not None and job.kind in _SUPERSEDES:
            reminder_kind, reason = _SUPERSEDES[job.kind]
            await Touchpoint.filter(
                kind=reminder_kind, vehicle_id=job.vehicle_id, status=TouchpointStatus.PENDING
            ).update(status=TouchpointStatus.SKIPPED, status_reason=reason)
    log.info("booking %s: customer %s, %s %s, %s (%s)", booking.id, job.customer_id, day,
             found.code, job.kind, job.channel)
    return BookOutcome(booking, "created")


async def book(
    *, customer_id: int, vehicle_id: int | None, day: date, slot: str, kind: BookingKind,
    source_touchpoint_id: int | None, now: datetime, rules: BookingRules,
) -> BookOutcome:
    """An owner's booking from a touchpoint (the shape callers had before ``Job``)."""
    return await book_job(Job(customer_id, vehicle_id, kind,
                              source_touchpoint_id=source_touchpoint_id),
                          day=day, slot=slot, now=now, rules=rules)


@dataclass(frozen=True)
class MoveOutcome:
    booking: Booking | None  # None: not theirs, or no longer open
    status: Literal["moved", "same", "full", "gone"]
    was: tuple[date, str] | None = None


async def reschedule(booking_id: int, *, customer_id: int | None, day: date, slot: str,
                     now: datetime, rules: BookingRules) -> MoveOutcome:
    """Move an open booking (the owner's own when ``customer_id`` is given) to another day
    and slot with room; its reminder follows it."""
    found = resolve_slot(rules, slot)
    if found is None:
        raise ValueError(f"unknown slot {slot!r}")
    mine = Q(id=booking_id) if customer_id is None else Q(id=booking_id, customer_id=customer_id)
    async with in_transaction() as conn:
        await _lock_day(conn, day)
        booking = await Booking.get_or_none(mine)
        if booking is None or booking.status is not BookingStatus.BOOKED \
                or booking.day < local_date(now, rules.tz):
            return MoveOutcome(None, "gone")
        was = (booking.day, booking.slot)
        if was == (day, found.code):
            return MoveOutcome(booking, "same", was)
        if not await _has_room(day, found, BookingKind(booking.kind), rules, ignore=booking.id):
            return MoveOutcome(booking, "full", was)
        await Booking.filter(id=booking.id).update(day=day, slot=found.code)
        booking.day, booking.slot = day, found.code
        await forget_reminders(booking, BOOKING_MOVED)
        await _remind(booking, now, rules)
    log.info("booking %s moved: %s %s -> %s %s", booking.id, was[0], was[1], day, found.code)
    return MoveOutcome(booking, "moved", was)


async def cancel(booking_id: int, *, customer_id: int, now: datetime,
                 tz: ZoneInfo) -> Booking | None:
    """Cancel the owner's booking and its reminder; None when it is not theirs. The reminder
    the booking had stood in for is pending again (the dispatcher expires it if too late),
    unless another booking for today or later (local date in ``tz``) still stands in for it."""
    async with in_transaction():
        booking = await Booking.get_or_none(id=booking_id, customer_id=customer_id)
        if booking is None or booking.status is not BookingStatus.BOOKED:
            return booking
        await Booking.filter(id=booking.id).update(status=BookingStatus.CANCELLED,
                                                    cancelled_at=now)
        booking.status, booking.cancelled_at = BookingStatus.CANCELLED, now
        await forget_reminders(booking, BOOKING_CANCELLED)
        if booking.vehicle_id is not None and booking.kind in _SUPERSEDES:
            still_booked = await Booking.filter(
                vehicle_id=booking.vehicle_id, kind=booking.kind, status=BookingStatus.BOOKED,
                day__gte=local_date(now, tz),
            ).exists()
            if not still_booked:
                reminder_kind, reason = _SUPERSEDES[BookingKind(booking.kind)]
                await Touchpoint.filter(
                    kind=reminder_kind, vehicle_id=booking.vehicle_id,
                    status=TouchpointStatus.SKIPPED, status_reason=reason,
                ).update(status=TouchpointStatus.PENDING, status_reason="")
    return booking


async def staff_recipient(advisor: str, staff_chat_id: int | None) -> int | None:
    """Who hears of a booking: the owner's advisor when they are on Telegram, else the staff
    chat (None: nobody configured, the booking is still stored and shown by the outbox)."""
    if advisor:
        staff = await Staff.filter(
            name=advisor, active=True, telegram_id__isnull=False
        ).first()
        if staff is not None and staff.telegram_id is not None:
            return int(staff.telegram_id)
    return staff_chat_id


async def skip_superseded_reminders(now: datetime, tz: ZoneInfo) -> int:
    """Dispatcher skip rule: a first-service reminder is not sent once the car had its first
    service or has one booked; a service-due reminder not once a service is booked. Only
    bookings for today or later (local date in ``tz``) count: a past one blocks nothing."""
    today = local_date(now, tz)
    done = Subquery(Visit.filter(kind=VisitKind.FIRST_SERVICE).values("vehicle_id"))
    n = await Touchpoint.filter(
        kind=FIRST_SERVICE, status=TouchpointStatus.PENDING, due_at__lte=now,
        vehicle_id__in=done,
    ).update(status=TouchpointStatus.SKIPPED, status_reason=FIRST_SERVICE_DONE)
    for kind, (reminder_kind, reason) in _SUPERSEDES.items():
        booked = Subquery(
            Booking.filter(kind=kind, status=BookingStatus.BOOKED, day__gte=today)
            .values("vehicle_id")
        )
        n += await Touchpoint.filter(
            kind=reminder_kind, status=TouchpointStatus.PENDING, due_at__lte=now,
            vehicle_id__in=booked,
        ).update(status=TouchpointStatus.SKIPPED, status_reason=reason)
    return n


# --------------------------------------------------------------------------- 预约率


@dataclass(frozen=True)
class BookingRate:
    """预约率 of a period (for one advisor's visits, or all): visits that were booked /
    visits. ``rate`` is None when there were no visits."""

    booked: int
    visits: int

    @property
    def rate(self) -> float | None:
        return self.booked / self.visits if self.visits else None


async def booking_rate(start: date, end: date, tz: ZoneInfo, *, advisor: str | None = None,
                       visit_days: int = 7) -> BookingRate:
    """The booking rate of the visits whose car left the workshop on local days ``start``
    (inclusive) to ``end`` (exclusive), for ``advisor``'s visits when given.

    A visit was booked when its car had a booking, not cancelled and not missed, for the
    day it left or up to ``visit_days`` days before (a repair may keep the car for days).
    Each booking counts for one visit only, the first it can: a car booked once and back
    twice that week is one booked visit of two."""
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end, time(0), tzinfo=tz)
    visits = Visit.filter(left_at__gte=lo, left_at__lt=hi)
    if advisor is not None:
        visits = visits.filter(advisor=advisor)
    rows = await visits.order_by("left_at", "id").values_list("vehicle_id", "left_at")
    if not rows:
        return BookingRate(0, 0)
    booked_days = await Booking.filter(
        vehicle_id__in=list({v for v, _ in rows}), status__in=TAKING,
        day__gte=start - timedelta(days=visit_days), day__lt=end,
    ).order_by("day", "id").values_list("vehicle_id", "day")
    open_days: dict[int, list[date]] = {}
    for vehicle_id, day in booked_days:
        open_days.setdefault(int(vehicle_id), []).append(day)
    booked = 0
    for vehicle_id, left_at in rows:
        left = local_date(left_at, tz)
        days = open_days.get(int(vehicle_id), [])
        match = next((d for d in days if left - timedelta(days=visit_days) <= d <= left), None)
        if match is not None:
            days.remove(match)
            booked += 1
    return BookingRate(booked, len(rows))
