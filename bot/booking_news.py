"""What a booking says to people, from the scripts: its day, slot and job in the reader's
language, and the confirmation an owner is owed when staff booked for them (a caller, a
walk-in: 002 §3.1, "the owner gets a confirmation").

Plain values in (the scripts, the rules), text or a notice row out: the Telegram dialogue
(``bot/handlers/booking_picker.py``), the console and ``carebot booking add`` share it. The
confirmation is a notice row to the owner's chat (kept in their message log once sent): the
console sends it at once, the CLI leaves it to the running carebot's notice job.
"""

from __future__ import annotations

from datetime import date, datetime

from bot import bookings
from bot.bookings import BookingRules
from bot.delivery import notices
from bot.delivery.limits import Lane
from bot.texts import Scripts
from db.models import Booking, BookingKind, Customer, Notice, Vehicle


def day_text(scripts: Scripts, lang: str, day: date) -> str:
    weekdays = scripts.label("bk_weekdays", lang).split(",")
    months = scripts.label("bk_months", lang).split(",")
    return scripts.label("bk_day_format", lang, month=day.month, day=day.day,
                         weekday=weekdays[day.isoweekday() - 1], mon=months[day.month - 1],
                         iso=day.isoformat())


def slot_text(scripts: Scripts, lang: str, code: str, rules: BookingRules) -> str:
    """"上午 9:00-12:00": the part of the day and the slot's times; a slot the day no longer
    has by its code."""
    slot = bookings.resolve_slot(rules, code)
    if slot is None:
        return code
    part = "morning" if slot.start.hour < 12 else "afternoon" if slot.start.hour < 18 \
        else "evening"
    return scripts.label("bk_slot_format", lang, part=scripts.label(f"bk_part_{part}", lang),
                         start=f"{slot.start.hour}:{slot.start:%M}",
                         end=f"{slot.end.hour}:{slot.end:%M}")


def kind_text(scripts: Scripts, lang: str, kind: BookingKind) -> str:
    return scripts.label(f"bk_kind_{BookingKind(kind).value}", lang)


def car_name(vehicle: Vehicle) -> str:
    return " ".join(p for p in (vehicle.model, vehicle.plate) if p) or vehicle.vin


async def owe_confirmation(scripts: Scripts, rules: BookingRules, *, booking: Booking,
                           customer: Customer, vehicle: Vehicle | None, phone: str,
                           now: datetime) -> Notice | None:
    """The owner's confirmation of a booking staff made, owed as a row (once per booking);
    None when the owner is not on Telegram or blocked the bot (the reminder waits for them
    the same way), or it is owed already."""
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        return None
    lang = customer.language
    text = scripts.label(
        "bk_booked_for_you",
        lang,
        name=customer.name,
        phone=phone,
        day=day_text(scripts, lang, booking.day),
        slot=slot_text(scripts, lang, booking.slot, rules),
        kind=kind_text(scripts, lang, BookingKind(booking.kind)),
        vehicle=scripts.label("bk_vehicle", lang, vehicle=car_name(vehicle)) if vehicle else "",
        note=scripts.label("bk_note_line", lang, note=booking.note) if booking.note else "",
    )
    return await notices.owe(f"booking:{booking.id}:confirm", [customer.telegram_chat_id],
                             text, now=now, lane=Lane.REPLY, customer_id=customer.id,
                             log_kind="booking")
