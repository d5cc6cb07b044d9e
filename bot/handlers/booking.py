"""Owner side of booking: "Book a visit" -> day -> morning/afternoon -> confirm; cancel.

Callback data (prefix ``bk``, all well under 64 bytes):
``bk:s:<tp>`` start from reminder ``tp``; ``bk:d:<tp>:<yyyymmdd>`` day chosen;
``bk:t:<tp>:<yyyymmdd>:<m|a>`` slot chosen; ``bk:c:<tp>:<yyyymmdd>:<m|a>`` confirmed;
``bk:b:<tp>`` back to the days; ``bk:n`` not now; ``bk:x:<booking>`` cancel a booking.

Nothing is stored until the owner confirms, so an abandoned picker costs nothing; every
step re-checks the day against the opening days, so an old keyboard cannot book a past day.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import bookings, owners
from bot.bookings import booking_rules
from bot.campaigns.promotions import KIND as CAMPAIGN
from bot.delivery import notices
from bot.handlers import buttons
from bot.journeys.plans import FIRST_SERVICE, SERVICE_DUE
from bot.journeys.timing import local_date
from bot.keyboards import keyboard
from bot.recall import RECALL
from bot.services import Services, services_of
from bot.texts import DEFAULT_LANGUAGE
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    Customer,
    Direction,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)

log = logging.getLogger(__name__)

PREFIX = "bk"
_SLOT_CODES = {"m": "morning", "a": "afternoon"}
_CODE_OF = {v: k for k, v in _SLOT_CODES.items()}
# Touchpoints a booking may start from: the reminders with "Book a visit", and campaign
# messages offering a booking (``bk:s:<tp>``, the marketing feature), the lost-owner recall.
BOOKABLE_KINDS = (FIRST_SERVICE, SERVICE_DUE, CAMPAIGN, RECALL)


def book_button(svc: Services, lang: str, touchpoint_id: int) -> list[list[tuple[str, str]]]:
    """The "Book a visit" row a reminder carries, as (label, data)."""
    return [[(svc.scripts.label("bk_book_button", lang), f"{PREFIX}:s:{touchpoint_id}")]]


def cancel_button(svc: Services, lang: str, booking_id: int) -> list[list[tuple[str, str]]]:
    return [[(svc.scripts.label("bk_cancel_button", lang), f"{PREFIX}:x:{booking_id}")]]


def _markup(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return keyboard(rows)


def day_label(svc: Services, lang: str, day: date) -> str:
    weekdays = svc.scripts.label("bk_weekdays", lang).split(",")
    months = svc.scripts.label("bk_months", lang).split(",")
    return svc.scripts.label("bk_day_format", lang, month=day.month, day=day.day,
                             weekday=weekdays[day.isoweekday() - 1], mon=months[day.month - 1],
                             iso=day.isoformat())


def slot_label(svc: Services, lang: str, slot: str) -> str:
    return svc.scripts.label(f"bk_slot_{slot}", lang)


def kind_label(svc: Services, lang: str, kind: BookingKind) -> str:
    return svc.scripts.label(f"bk_kind_{kind.value}", lang)


def vehicle_text(svc: Services, lang: str, vehicle: Vehicle | None) -> str:
    if vehicle is None:
        return ""
    name = " ".join(p for p in (vehicle.model, vehicle.plate) if p) or vehicle.vin
    return svc.scripts.label("bk_vehicle", lang, vehicle=name)


def _day_keyboard(svc: Services, lang: str, tp_id: int, now: datetime) -> InlineKeyboardMarkup:
    rules = booking_rules(svc.settings)
    days = bookings.bookable_days(local_date(now, rules.tz), rules)
    buttons = [(day_label(svc, lang, d), f"{PREFIX}:d:{tp_id}:{d:%Y%m%d}") for d in days]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([(svc.scripts.label("bk_never_mind_button", lang), f"{PREFIX}:n")])
    return _markup(rows)


def _parse_day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


async def _reminder_of(customer: Customer, tp_id: str) -> Touchpoint | None:
    """The owner's own reminder a booking starts from (never someone else's): a first-service
    or service-due reminder, or a campaign message, that is pending or sent. Any other
    touchpoint (a birthday greeting, a cancelled or expired one) starts nothing."""
    if not tp_id.isdigit():
        return None
    return await Touchpoint.get_or_none(
        id=int(tp_id), customer_id=customer.id, kind__in=BOOKABLE_KINDS,
        status__in=[TouchpointStatus.PENDING, TouchpointStatus.SENT],
    )


async def _log_out(svc: Services, customer: Customer, chat_id: int, text: str,
                   message_id: int | None) -> None:
    await owners.log_message(direction=Direction.OUT, chat_id=chat_id, text=text,
                             now=svc.clock.now(), kind="booking", customer_id=customer.id,
                             telegram_message_id=message_id)


async def booking_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every ``bk:`` button lands here and is routed by its step letter."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    await buttons.answer(svc, query)
    customer = await owners.customer_for_user(query.from_user.id)
    chat = update.effective_chat
    if customer is None or chat is None:
        return
    await owners.log_message(direction=Direction.IN, chat_id=chat.id, text=query.data,
                             now=svc.clock.now(), kind="button", customer_id=customer.id)
    lang = customer.language
    phone = svc.settings.dealer_phone
    parts = query.data.split(":")
    step, args = (parts[1] if len(parts) > 1 else ""), parts[2:]
    now = svc.clock.now()
    rules = booking_rules(svc.settings)

    if step == "n":
        await buttons.edit_text(svc, query, svc.scripts.label("bk_never_mind", lang, phone=phone))
        return
    if step == "x" and args and args[0].isdigit():
        await _cancel(update, svc, customer, int(args[0]))
        return

    tp = await _reminder_of(customer, args[0]) if args else None
    if tp is None:
        await buttons.edit_text(svc, query, svc.scripts.label("bk_unavailable", lang, phone=phone))
        return
    if step == "s":
        text = svc.scripts.label("bk_pick_day", lang)
        sent = await svc.sender.text(chat.id, text,
                                             reply_markup=_day_keyboard(svc, lang, tp.id, now))
        if sent is not None:
            await _log_out(svc, customer, chat.id, text, sent.message_id)
        return
    if step == "b":
        await buttons.edit_text(svc, query, svc.scripts.label("bk_pick_day", lang),
                                reply_markup=_day_keyboard(svc, lang, tp.id, now))
        return

    day = _parse_day(args[1]) if len(args) > 1 else None
    today = local_date(now, rules.tz)
    if day is None or day not in bookings.bookable_days(today, rules):
        await buttons.edit_text(svc, query, svc.scripts.label("bk_day_gone", lang),
                                reply_markup=_day_keyboard(svc, lang, tp.id, now))
        return
    back = (svc.scripts.label("bk_back_button", lang), f"{PREFIX}:b:{tp.id}")
    if step == "d":
        rows = [[(slot_label(svc, lang, slot), f"{PREFIX}:t:{tp.id}:{day:%Y%m%d}:{code}")
                 for code, slot in _SLOT_CODES.items()], [back]]
        await buttons.edit_text(
            svc, query, svc.scripts.label("bk_pick_slot", lang, day=day_label(svc, lang, day)),
            reply_markup=_markup(rows))
        return
    slot = _SLOT_CODES.get(args[2]) if len(args) > 2 else None
    if slot is None:
        await buttons.edit_text(svc, query, svc.scripts.label("bk_day_gone", lang),
                                reply_markup=_day_keyboard(svc, lang, tp.id, now))
        return
    kind = bookings.kind_for(tp.kind)
    vehicle = await Vehicle.get_or_none(id=tp.vehicle_id) if tp.vehicle_id else None
    fmt = {"day": day_label(svc, lang, day), "slot": slot_label(svc, lang, slot),
           "kind": kind_label(svc, lang, kind), "vehicle": vehicle_text(svc, lang, vehicle)}
    if step == "t":
        rows = [[(svc.scripts.label("bk_confirm_button", lang),
                  f"{PREFIX}:c:{tp.id}:{day:%Y%m%d}:{_CODE_OF[slot]}")], [back]]
        await buttons.edit_text(svc, query, svc.scripts.label("bk_confirm_ask", lang, **fmt),
                                reply_markup=_markup(rows))
        return
    if step != "c":
        await buttons.edit_text(svc, query, svc.scripts.label("bk_unavailable", lang, phone=phone))
        return
    outcome = await bookings.book(
        customer_id=customer.id, vehicle_id=tp.vehicle_id, day=day, slot=slot, kind=kind,
        source_touchpoint_id=tp.id, now=now, rules=rules,
    )
    booking = outcome.booking
    if not outcome.created:
        text = svc.scripts.label(
            "bk_exists", lang, day=day_label(svc, lang, booking.day),
            slot=slot_label(svc, lang, booking.slot), kind=kind_label(svc, lang, booking.kind))
        await buttons.edit_text(svc, query, text, reply_markup=_markup(
            cancel_button(svc, lang, booking.id)))
        return
    text = svc.scripts.label("bk_confirmed", lang, name=customer.name, phone=phone, **fmt)
    await buttons.edit_text(svc, query, text,
                            reply_markup=_markup(cancel_button(svc, lang, booking.id)))
    await _log_out(svc, customer, chat.id, text,
                   query.message.message_id if query.message else None)
    await _tell_staff(svc, customer, booking, vehicle, "bk_staff_new")


async def _cancel(update: Update, svc: Services, customer: Customer, booking_id: int) -> None:
    query = update.callback_query
    assert query is not None
    lang, phone = customer.language, svc.settings.dealer_phone
    was = await Booking.get_or_none(id=booking_id, customer_id=customer.id)
    already = was is not None and was.status is BookingStatus.CANCELLED
    booking = await bookings.cancel(booking_id, customer_id=customer.id, now=svc.clock.now(),
                                    tz=svc.settings.tz)
    if booking is None:
        await buttons.edit_text(svc, query, svc.scripts.label("bk_unavailable", lang, phone=phone))
        return
    if already:
        await buttons.edit_text(svc, query,
                                svc.scripts.label("bk_already_cancelled", lang, phone=phone))
        return
    text = svc.scripts.label("bk_cancelled", lang, day=day_label(svc, lang, booking.day),
                             slot=slot_label(svc, lang, booking.slot), phone=phone)
    await buttons.edit_text(svc, query, text)
    chat = update.effective_chat
    if chat is not None:
        await _log_out(svc, customer, chat.id, text,
                       query.message.message_id if query.message else None)
    vehicle = await Vehicle.get_or_none(id=booking.vehicle_id) if booking.vehicle_id else None
    await _tell_staff(svc, customer, booking, vehicle, "bk_staff_cancelled")


async def _tell_staff(svc: Services, customer: Customer, booking: Booking,
                      vehicle: Vehicle | None, key: str) -> None:
    """A plain message to the owner's advisor (or the staff chat), owed as a row: sent once,
    tried again until it is; the booking stands either way."""
    chat_id = await bookings.staff_recipient(customer.advisor, svc.settings.staff_chat_id)
    if chat_id is None:
        log.warning("booking %s: no advisor on Telegram and no CAREBOT_STAFF_CHAT_ID; "
                    "staff were not told", booking.id)
        return
    lang = DEFAULT_LANGUAGE
    text = svc.scripts.label(
        key, lang, id=booking.id, name=customer.name, phone=customer.phone,
        vehicle=vehicle_text(svc, lang, vehicle), day=day_label(svc, lang, booking.day),
        slot=slot_label(svc, lang, booking.slot), kind=kind_label(svc, lang, booking.kind),
        advisor=customer.advisor or "-",
    )
    if not await notices.tell(svc, f"booking:{booking.id}:{key}", [chat_id], text):
        log.warning("booking %s: staff not told yet (%s); tried again", booking.id, key)


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    application.add_handler(CallbackQueryHandler(booking_pressed, pattern=rf"^{PREFIX}:"))
