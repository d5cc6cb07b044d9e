"""The front desk on the day: a booking marked arrived or no-show, the day's list.

A no-show owes the owner a gentle offer of a new time (``booking_no_show``, a touchpoint:
through the outbox, after quiet hours, with a "Book a visit" button); marking the booking
arrived after all takes the offer back if it has not gone yet.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from tortoise.transactions import in_transaction

from bot.bookings import BookingRules, booking_key, forget_reminders, slot_range
from bot.journeys.plans import BOOKING_NO_SHOW, TouchpointPlan, write_touchpoints
from bot.journeys.timing import local_date
from bot.schedule import shift_out_of_quiet_hours
from db.models import Booking, BookingKind, BookingStatus, Touchpoint, TouchpointStatus

log = logging.getLogger(__name__)

MARKED_ARRIVED = "marked arrived after all"
NO_SHOW_VALID = timedelta(days=3)  # the "new time?" message is stale after that


def plan_no_show(booking: Booking, now: datetime, rules: BookingRules) -> TouchpointPlan:
    """The gentle "we missed you, shall we find another time?" with a booking button: due
    now (after quiet hours), stale after three days."""
    due = shift_out_of_quiet_hours(now, rules.tz, rules.quiet)
    return TouchpointPlan(
        customer_id=booking.customer_id, vehicle_id=booking.vehicle_id, kind=BOOKING_NO_SHOW,
        occasion_key=booking_key(booking.id), due_at=due, expires_at=due + NO_SHOW_VALID,
        payload={"booking_id": booking.id, "day": booking.day.isoformat(),
                 "slot": booking.slot, "time": slot_range(rules, booking.slot),
                 "kind": BookingKind(booking.kind).value},
    )


async def mark(booking_id: int, status: BookingStatus, *, staff_id: int | None,
               now: datetime, rules: BookingRules) -> Booking | None:
    """Staff mark a booking of today or earlier arrived or no-show (and may correct one to
    the other); a no-show owes the owner a new-time offer, taken back if corrected before
    it went. None: no such booking, cancelled, or a day still ahead."""
    if status not in (BookingStatus.ARRIVED, BookingStatus.NO_SHOW):
        raise ValueError(f"mark arrived or no_show, not {status}")
    async with in_transaction():
        booking = await Booking.get_or_none(id=booking_id)
        if booking is None or booking.status is BookingStatus.CANCELLED \
                or booking.day > local_date(now, rules.tz):
            return None
        if booking.status is status:
            return booking
        await Booking.filter(id=booking.id).update(status=status, marked_at=now,
                                                    marked_by_id=staff_id)
        booking.status, booking.marked_at, booking.marked_by_id = status, now, staff_id
        await forget_reminders(booking, f"marked {status.value}")
        if status is BookingStatus.NO_SHOW:
            await write_touchpoints([plan_no_show(booking, now, rules)], now=now)
        else:
            await Touchpoint.filter(
                customer_id=booking.customer_id, kind=BOOKING_NO_SHOW,
                occasion_key=booking_key(booking.id), status=TouchpointStatus.PENDING,
            ).update(status=TouchpointStatus.SKIPPED, status_reason=MARKED_ARRIVED)
    log.info("booking %s marked %s by staff %s", booking.id, status.value, staff_id)
    return booking


async def day_list(day: date) -> list[Booking]:
    """The day's bookings, cancelled ones too (staff see what changed), in slot order."""
    return await Booking.filter(day=day).order_by("slot", "kind", "id") \
        .prefetch_related("customer", "vehicle")
