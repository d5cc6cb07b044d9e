"""The front desk on the day: a booking marked arrived or no-show, the day's list.

A no-show owes the owner a gentle offer of a new time (``booking_no_show``, a touchpoint:
through the outbox, after quiet hours, with a "Book a visit" button); marking the booking
arrived after all takes the offer back if it has not gone yet.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from tortoise.transactions import in_transaction

from bot.bookings import BookingRules, bookable_days, booking_key, forget_reminders, slot_range
from bot.intake import normalize_plate
from bot.journeys.plans import BOOKING_NO_SHOW, TouchpointPlan, write_touchpoints
from bot.journeys.timing import local_date
from bot.owners import phone_to_e164
from bot.schedule import shift_out_of_quiet_hours
from bot.vin import normalize_vin
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    Customer,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    VehicleStatus,
)

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


def staff_days(today: date, rules: BookingRules) -> list[date]:
    """The days staff may book: today too when the workshop is open (a walk-in), then the
    days owners may book."""
    first = [today] if rules.calendar.is_open(today) else []
    return first + bookable_days(today, rules)


class OwnerNotFound(LookupError):
    """Staff typed a phone, plate or VIN that names no owner file, or an owner with several
    cars by their phone; ``key`` says which, for the console's and the CLI's message."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def find_owner(text: str) -> tuple[Customer, Vehicle | None]:
    """The owner (and car) a caller or walk-in names: a phone, a plate or a VIN. By phone,
    the owner's one active car, or none on file; several cars need the plate or VIN."""
    text = text.strip()
    vin = normalize_vin(text) if len(text) == 17 else None
    plate = normalize_plate(text)
    vehicle = await Vehicle.get_or_none(vin=vin) if vin else None
    if vehicle is None and plate:
        vehicle = await Vehicle.filter(plate=plate).order_by("-id").first()
    if vehicle is not None:
        return await Customer.get(id=vehicle.customer_id), vehicle
    phone = phone_to_e164(text)
    customer = await Customer.get_or_none(phone=phone) if phone else None
    if customer is None:
        raise OwnerNotFound("not_found")
    cars = await Vehicle.filter(customer_id=customer.id, status=VehicleStatus.ACTIVE)
    if len(cars) > 1:
        raise OwnerNotFound("several_cars")
    return customer, cars[0] if cars else None
