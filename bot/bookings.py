"""Booking a workshop visit from a reminder (002 §3.1): days, slots, the booking itself.

Domain code: plain values and ``now`` in, rows out; the Telegram side is
``bot/handlers/booking.py``. A booking writes its reminder for the day before; a first-service
booking cancels the pending first-service reminder (and cancelling the booking gives it
back, if its window is still open); a service booking does the same for the service-due
reminder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from bot.config import QuietHours, Settings
from bot.journeys.plans import (
    BOOKING_REMINDER,
    FIRST_SERVICE,
    SERVICE_DUE,
    TouchpointPlan,
    write_touchpoints,
)
from bot.journeys.timing import at_local, end_of_local_day, local_date, parse_hhmm, parse_weekdays
from bot.schedule import shift_out_of_quiet_hours
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    Staff,
    Touchpoint,
    TouchpointStatus,
    Visit,
    VisitKind,
)

log = logging.getLogger(__name__)

SLOTS = ("morning", "afternoon")
FIRST_SERVICE_BOOKED = "first service already booked"
FIRST_SERVICE_DONE = "first service already done"
SERVICE_BOOKED = "a service visit is already booked"
BOOKING_CANCELLED = "booking cancelled"
# Reminders a booking makes unnecessary, by booking kind.
_SUPERSEDES = {
    BookingKind.FIRST_SERVICE: (FIRST_SERVICE, FIRST_SERVICE_BOOKED),
    BookingKind.MAINTENANCE: (SERVICE_DUE, SERVICE_BOOKED),
}


@dataclass(frozen=True)
class BookingRules:
    tz: ZoneInfo
    quiet: QuietHours | None
    weekdays: frozenset[int] = frozenset(range(1, 8))
    horizon_days: int = 14
    reminder_time: time = time(18, 0)


def booking_rules(settings: Settings) -> BookingRules:
    return BookingRules(
        tz=settings.tz,
        quiet=settings.quiet,
        weekdays=parse_weekdays(settings.booking_weekdays),
        horizon_days=settings.booking_horizon_days,
        reminder_time=parse_hhmm(settings.booking_reminder_time),
    )


def bookable_days(today: date, rules: BookingRules) -> list[date]:
    """The next ``horizon_days`` local days from tomorrow on which the workshop takes bookings."""
    days = (today + timedelta(days=n) for n in range(1, rules.horizon_days + 1))
    return [d for d in days if d.isoweekday() in rules.weekdays]


def kind_for(touchpoint_kind: str) -> BookingKind:
    """What a booking made from a reminder is for."""
    return BookingKind.FIRST_SERVICE if touchpoint_kind == FIRST_SERVICE else BookingKind.MAINTENANCE


def booking_key(booking_id: int) -> str:
    return f"booking:{booking_id}"


def plan_reminder(
    *, booking_id: int, customer_id: int, vehicle_id: int | None, day: date, slot: str,
    kind: BookingKind, now: datetime, rules: BookingRules,
) -> TouchpointPlan | None:
    """The reminder the day before at ``reminder_time`` (out of quiet hours), valid until the
    booked day begins; none when that moment has already passed (booked for tomorrow late in
    the day: the confirmation just said it all)."""
    due = shift_out_of_quiet_hours(
        at_local(day - timedelta(days=1), rules.reminder_time, rules.tz), rules.tz, rules.quiet
    )
    expires = end_of_local_day(day - timedelta(days=1), rules.tz)
    if due <= now or due >= expires:
        return None
    return TouchpointPlan(
        customer_id=customer_id, vehicle_id=vehicle_id, kind=BOOKING_REMINDER,
        occasion_key=booking_key(booking_id), due_at=due, expires_at=expires,
        payload={"booking_id": booking_id, "day": day.isoformat(), "slot": slot,
                 "kind": kind.value},
    )


@dataclass(frozen=True)
class BookOutcome:
    booking: Booking
    created: bool  # False: an open booking of that kind for that car existed already


async def book(
    *, customer_id: int, vehicle_id: int | None, day: date, slot: str, kind: BookingKind,
    source_touchpoint_id: int | None, now: datetime, rules: BookingRules,
) -> BookOutcome:
    """Store a booking (or return the open one already there) and its reminder."""
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}")
    today = local_date(now, rules.tz)
    async with in_transaction():
        existing = await Booking.filter(
            customer_id=customer_id, vehicle_id=vehicle_id, kind=kind,
            status=BookingStatus.BOOKED, day__gte=today,
        ).order_by("day").first()
        if existing is not None:
            return BookOutcome(existing, created=False)
        booking = await Booking.create(
            customer_id=customer_id, vehicle_id=vehicle_id, day=day, slot=slot, kind=kind,
            source_touchpoint_id=source_touchpoint_id, created_at=now,
        )
        plan = plan_reminder(booking_id=booking.id, customer_id=customer_id,
                             vehicle_id=vehicle_id, day=day, slot=slot, kind=kind, now=now,
                             rules=rules)
        if plan is not None:
            await write_touchpoints([plan], now=now)
        if vehicle_id is not None:
            reminder_kind, reason = _SUPERSEDES[kind]
            await Touchpoint.filter(
                kind=reminder_kind, vehicle_id=vehicle_id, status=TouchpointStatus.PENDING
            ).update(status=TouchpointStatus.SKIPPED, status_reason=reason)
    log.info("booking %s: customer %s, %s %s, %s", booking.id, customer_id, day, slot, kind)
    return BookOutcome(booking, created=True)


async def cancel(booking_id: int, *, customer_id: int, now: datetime,
                 tz: ZoneInfo) -> Booking | None:
    """Cancel the owner's booking and its reminder; None when it is not theirs. The reminder
    the booking had stood in for is pending again (the dispatcher expires it if too late),
    unless another booking for today or later (local date in ``tz``) still stands in for it."""
    async with in_transaction():
        booking = await Booking.get_or_none(id=booking_id, customer_id=customer_id)
        if booking is None or booking.status is BookingStatus.CANCELLED:
            return booking
        await Booking.filter(id=booking.id).update(status=BookingStatus.CANCELLED,
                                                    cancelled_at=now)
        booking.status, booking.cancelled_at = BookingStatus.CANCELLED, now
        await Touchpoint.filter(
            customer_id=customer_id, kind=BOOKING_REMINDER, occasion_key=booking_key(booking.id),
            status=TouchpointStatus.PENDING,
        ).update(status=TouchpointStatus.SKIPPED, status_reason=BOOKING_CANCELLED)
        if booking.vehicle_id is not None:
            still_booked = await Booking.filter(
                vehicle_id=booking.vehicle_id, kind=booking.kind, status=BookingStatus.BOOKED,
                day__gte=local_date(now, tz),
            ).exists()
            if not still_booked:
                reminder_kind, reason = _SUPERSEDES[booking.kind]
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
