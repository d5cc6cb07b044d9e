"""Owner side of booking (issue 17): ``/book``, or "Book a visit" under a reminder, a
campaign or a missed booking; the car (when several), the job (a repair with a short note
or photo), a day with room, a slot with room, confirm; change the time or cancel from the
confirmation (and from the reminder the day before).

Callback data (prefix ``bk``, well under 64 bytes). A pick carries what is chosen so far:
``bk:<step>:<src>:<car>:<job>:<yyyymmdd>:<hhmm>`` — ``src`` the touchpoint it started from
(0: ``/book``), ``car`` a vehicle id (0: none on file), ``job`` one letter
(``JOB_CODES``); steps ``v`` car, ``k`` job, ``N`` note skipped, ``d`` day, ``t`` slot,
``c`` confirmed, ``b`` back to the days. Also ``bk:s:<tp>`` start from a touchpoint,
``bk:n`` not now, ``bk:x:<booking>`` cancel, ``bk:r:<booking>`` change the time,
``bk:R:<booking>:<yyyymmdd>`` its new day, ``bk:T:<booking>:<yyyymmdd>:<hhmm>`` its new slot.

Nothing is booked until the owner confirms, so an abandoned picker costs nothing; what the
owner writes about a repair is stored (the dialogue's row) before it is acknowledged. Every
step checks the day and slot again, so an old keyboard cannot book a past day or a full slot.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, timedelta

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot import bookings, owners
from bot.booking_calendar import Slot
from bot.campaigns.policy import KIND as CAMPAIGN
from bot.handlers import booking_picker as bt
from bot.handlers import buttons
from bot.handlers.booking_picker import PREFIX, Flow, Pick, flow_of, parse_day, parse_pick
from bot.handlers.owner import lang_of, log_in, say
from bot.journeys.plans import BOOKING_NO_SHOW, FIRST_SERVICE, SERVICE_DUE
from bot.journeys.repairs import REPAIR_REMINDER
from bot.recall import RECALL
from bot.services import Services, services_of
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    Conversation,
    Customer,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    VehicleStatus,
)

log = logging.getLogger(__name__)

NOTE_STATE = "booking:note"  # the next message or photo is the repair's note
NOTED_STATE = "booking:noted"  # the note is in; what the owner writes next is not
NOTE_WAIT = timedelta(minutes=30)  # an ask left longer than this takes nothing more
NOTE_LIMIT = 1000
# Touchpoints a booking may start from: the reminders with "Book a visit", a missed
# booking's new-time offer, campaign messages offering a booking (the marketing feature)
# the lost-owner recall and a recommended repair's reminder. From a campaign or the recall
# the owner picks the job.
BOOKABLE_KINDS = (FIRST_SERVICE, SERVICE_DUE, BOOKING_NO_SHOW, CAMPAIGN, RECALL,
                  REPAIR_REMINDER)
ASK_THE_JOB = (CAMPAIGN, RECALL)

# the labels other features use (conversations, composers) live with the wording
book_button, cancel_button, manage_buttons = bt.book_button, bt.cancel_button, bt.manage_buttons
day_label, slot_label, kind_label, vehicle_text = (bt.day_label, bt.slot_label, bt.kind_label,
                                                   bt.vehicle_text)

__all__ = ["BOOKABLE_KINDS", "book_button", "cancel_button", "day_label", "kind_label",
           "manage_buttons", "register", "slot_label", "vehicle_text"]


# --------------------------------------------------------------------------- the steps


async def _vehicles(customer: Customer) -> list[Vehicle]:
    return await Vehicle.filter(customer_id=customer.id, status=VehicleStatus.ACTIVE) \
        .order_by("-delivered_at", "id")


async def begin(flow: Flow, source: Touchpoint | None) -> None:
    """The first step: the car unless the touchpoint (or the file) says which; the job
    unless the touchpoint says; then the days. Always a new message: the reminder stays."""
    pick = Pick(src=source.id if source else 0)
    if source is not None and source.kind not in ASK_THE_JOB:
        pick = replace(pick, job=bookings.kind_for(source.kind, source.payload))
    if source is not None and source.vehicle_id is not None:
        pick = replace(pick, car=source.vehicle_id)
    else:
        cars = await _vehicles(flow.customer)
        if len(cars) > 1:
            rows = [[(bt.car_name(v), replace(pick, car=v.id).data("v"))] for v in cars]
            rows.append([bt.not_now(flow)])
            await flow.say(flow.label("bk_pick_vehicle"), rows, new=True)
            return
        pick = replace(pick, car=cars[0].id if cars else 0)
    if pick.job is None:
        await flow.say(flow.label("bk_pick_kind"), bt.kind_rows(flow, pick), new=True)
        return
    await show_days(flow, pick, new=True)


async def show_days(flow: Flow, pick: Pick, *, new: bool = False, key: str = "bk_pick_day"
                    ) -> None:
    """The open days ahead with a place for the job; none: say so, with the phone."""
    assert pick.job is not None
    days = await bookings.days_with_room(flow.today, pick.job, flow.rules)
    if not days:
        await flow.say(flow.label("bk_no_days", kind=bt.kind_label(flow.svc, flow.lang, pick.job),
                                  days=flow.rules.horizon_days), new=new)
        return
    choices = [(bt.day_label(flow.svc, flow.lang, d), replace(pick, day=d).data("d"))
               for d in days]
    rows = [choices[i:i + 2] for i in range(0, len(choices), 2)]
    rows.append([bt.not_now(flow)])
    await flow.say(flow.label(key), rows, new=new)


async def show_slots(flow: Flow, pick: Pick, *, key: str = "bk_pick_slot",
                     move: Booking | None = None) -> None:
    """The chosen day's slots with a place; a day gone or full: the days again."""
    assert pick.job is not None and pick.day is not None
    slots: list[Slot] = []
    if pick.day in bookings.bookable_days(flow.today, flow.rules):
        slots = await bookings.free_slots(pick.day, pick.job, flow.rules,
                                          ignore=move.id if move else None)
    if not slots:
        if move is not None:
            await show_move_days(flow, move, key="bk_day_gone")
        else:
            await show_days(flow, pick, key="bk_day_gone")
        return
    if move is not None:
        row = [(bt.slot_label(flow.svc, flow.lang, s.code, flow.rules),
                f"{PREFIX}:T:{move.id}:{pick.day:%Y%m%d}:{s.short}") for s in slots]
        back = (flow.label("bk_back_button"), f"{PREFIX}:r:{move.id}")
    else:
        row = [(bt.slot_label(flow.svc, flow.lang, s.code, flow.rules),
                replace(pick, slot=s.code).data("t")) for s in slots]
        back = (flow.label("bk_back_button"), replace(pick, day=None).data("b"))
    rows = [row[i:i + 2] for i in range(0, len(row), 2)] + [[back]]
    await flow.say(flow.label(key, day=bt.day_label(flow.svc, flow.lang, pick.day)), rows)


async def ask_note(flow: Flow, pick: Pick) -> None:
    """A repair: a line or a photo about it (the dialogue's row says where it goes)."""
    asked = flow.query.message.message_id if flow.query and flow.query.message else None
    await owners.set_conversation(flow.customer.telegram_user_id or 0, NOTE_STATE,
                                  {"src": pick.src, "car": pick.car, "note": "", "photo": "",
                                   "at": flow.now.isoformat(), "keyboard": asked})
    await flow.say(flow.label("bk_note_ask"),
                   [[(flow.label("bk_note_skip_button"), pick.data("N"))], [bt.not_now(flow)]])


async def confirm_ask(flow: Flow, pick: Pick, vehicle: Vehicle | None) -> None:
    assert pick.job is not None and pick.day is not None
    note = await _note_for(flow, pick)
    text = flow.label("bk_confirm_ask", note=bt.note_text(flow, note[0]),
                      **bt.booking_fmt(flow, pick.day, pick.slot, pick.job, vehicle))
    rows = [[(flow.label("bk_confirm_button"), pick.data("c"))],
            [(flow.label("bk_back_button"), replace(pick, day=None, slot="").data("b"))]]
    await flow.say(text, rows)


async def _note_for(flow: Flow, pick: Pick) -> tuple[str, str]:
    """The repair's note and photo the owner gave in this dialogue, if it is this one's."""
    if pick.job is not BookingKind.REPAIR or flow.customer.telegram_user_id is None:
        return "", ""
    conv = await owners.get_conversation(flow.customer.telegram_user_id)
    if conv is None or conv.state not in (NOTE_STATE, NOTED_STATE) \
            or conv.data.get("car") != pick.car:
        return "", ""
    return str(conv.data.get("note", "")), str(conv.data.get("photo", ""))


async def _forget_note(flow: Flow) -> None:
    """The repair's note is used (or skipped): the dialogue's row goes."""
    if flow.customer.telegram_user_id is not None:
        await Conversation.filter(telegram_user_id=flow.customer.telegram_user_id,
                                  state__in=(NOTE_STATE, NOTED_STATE)).delete()


async def confirm(flow: Flow, pick: Pick, vehicle: Vehicle | None) -> None:
    """Book it; a slot taken meanwhile offers the day's slots again; an open booking of
    that job for that car is shown (with change and cancel) instead of a second one."""
    assert pick.job is not None and pick.day is not None
    note, photo = await _note_for(flow, pick)
    outcome = await bookings.book_job(
        bookings.Job(flow.customer.id, vehicle.id if vehicle else None, pick.job, note=note,
                     photo_file_id=photo, source_touchpoint_id=pick.src or None),
        day=pick.day, slot=pick.slot, now=flow.now, rules=flow.rules)
    booking = outcome.booking
    if booking is None:
        await show_slots(flow, replace(pick, slot=""), key="bk_slot_full")
        return
    if pick.job is BookingKind.REPAIR:
        await _forget_note(flow)
    fmt = bt.booking_fmt(flow, booking.day, booking.slot, BookingKind(booking.kind), vehicle)
    if not outcome.created:
        await flow.say(flow.label("bk_exists", **fmt), bt.manage_rows(flow, booking.id))
        return
    await flow.say(flow.label("bk_confirmed", name=flow.customer.name,
                              note=bt.note_text(flow, note), **fmt),
                   bt.manage_rows(flow, booking.id))
    await bt.tell_staff(flow, booking, vehicle, "bk_staff_new")


# --------------------------------------------------------------------------- change, cancel


async def _open_booking(flow: Flow, raw: str) -> Booking | None:
    """The owner's own booking, still open and not in the past; None otherwise."""
    if not raw.isdigit():
        return None
    booking = await Booking.get_or_none(id=int(raw), customer_id=flow.customer.id)
    if booking is None or booking.status is not BookingStatus.BOOKED \
            or booking.day < flow.today:
        return None
    return booking


async def show_move_days(flow: Flow, booking: Booking, *, key: str = "bk_pick_new_day") -> None:
    kind = BookingKind(booking.kind)
    days = await bookings.days_with_room(flow.today, kind, flow.rules, ignore=booking.id)
    choices = [(bt.day_label(flow.svc, flow.lang, d), f"{PREFIX}:R:{booking.id}:{d:%Y%m%d}")
               for d in days]
    rows = [choices[i:i + 2] for i in range(0, len(choices), 2)]
    rows.append([(flow.label("bk_keep_button"), f"{PREFIX}:K:{booking.id}")])
    await flow.say(flow.label(key if days else "bk_no_days", days=flow.rules.horizon_days,
                              kind=bt.kind_label(flow.svc, flow.lang, kind)), rows)


async def move(flow: Flow, booking: Booking, day: date, slot: str) -> None:
    """The owner's booking to the new day and slot, if it still has room."""
    outcome = await bookings.reschedule(booking.id, customer_id=flow.customer.id, day=day,
                                        slot=slot, now=flow.now, rules=flow.rules)
    moved = outcome.booking
    if moved is None:
        await flow.say(flow.label("bk_unavailable"))
        return
    if outcome.status == "full":
        await show_slots(flow, Pick(job=BookingKind(moved.kind), day=day), key="bk_slot_full",
                         move=moved)
        return
    vehicle = await Vehicle.get_or_none(id=moved.vehicle_id) if moved.vehicle_id else None
    fmt = bt.booking_fmt(flow, moved.day, moved.slot, BookingKind(moved.kind), vehicle)
    await flow.say(flow.label("bk_moved", **fmt), bt.manage_rows(flow, moved.id))
    if outcome.status == "moved" and outcome.was is not None:
        was = f"{bt.day_label(flow.svc, 'zh_CN', outcome.was[0])} " \
              f"{bt.slot_label(flow.svc, 'zh_CN', outcome.was[1], flow.rules)}"
        await bt.tell_staff(flow, moved, vehicle, "bk_staff_moved", was=was)


async def cancel(flow: Flow, raw: str) -> None:
    booking = await Booking.get_or_none(id=int(raw), customer_id=flow.customer.id) \
        if raw.isdigit() else None
    if booking is None or booking.status is not BookingStatus.BOOKED:
        key = "bk_already_cancelled" if booking is not None \
            and booking.status is BookingStatus.CANCELLED else "bk_unavailable"
        await flow.say(flow.label(key))
        return
    await bookings.cancel(booking.id, customer_id=flow.customer.id, now=flow.now,
                          tz=flow.rules.tz)
    await flow.say(flow.label("bk_cancelled", day=bt.day_label(flow.svc, flow.lang, booking.day),
                              slot=bt.slot_label(flow.svc, flow.lang, booking.slot, flow.rules)))
    vehicle = await Vehicle.get_or_none(id=booking.vehicle_id) if booking.vehicle_id else None
    await bt.tell_staff(flow, booking, vehicle, "bk_staff_cancelled")


# --------------------------------------------------------------------------- routing


async def _source(customer: Customer, src: int) -> Touchpoint | None:
    """The owner's own touchpoint a booking starts from (never someone else's): a reminder,
    a missed booking's offer or a campaign message that is pending or sent. Any other
    touchpoint (a birthday greeting, a cancelled or expired one) starts nothing."""
    return await Touchpoint.get_or_none(
        id=src, customer_id=customer.id, kind__in=BOOKABLE_KINDS,
        status__in=[TouchpointStatus.PENDING, TouchpointStatus.SENT])


async def _checked(flow: Flow, pick: Pick) -> tuple[bool, Vehicle | None]:
    """The pick's touchpoint and car are the owner's own (0: none); False otherwise."""
    if pick.src and await _source(flow.customer, pick.src) is None:
        return False, None
    if not pick.car:
        return True, None
    vehicle = await Vehicle.get_or_none(id=pick.car, customer_id=flow.customer.id)
    return vehicle is not None, vehicle


async def on_pick(flow: Flow, step: str, pick: Pick) -> None:
    """The steps of a new booking, after the pick was checked."""
    ok, vehicle = await _checked(flow, pick)
    if not ok:
        await flow.say(flow.label("bk_unavailable"))
    elif step == "v" or pick.job is None:
        await flow.say(flow.label("bk_pick_kind"), bt.kind_rows(flow, pick))
    elif step == "k" and pick.job is BookingKind.REPAIR:
        await ask_note(flow, pick)
    elif step in ("k", "N", "b") or pick.day is None:
        if step == "N":
            await _forget_note(flow)
        await show_days(flow, pick)
    elif step == "d" or not pick.slot:
        await show_slots(flow, pick)
    elif pick.day not in bookings.bookable_days(flow.today, flow.rules) \
            or bookings.resolve_slot(flow.rules, pick.slot) is None:
        await show_days(flow, replace(pick, day=None, slot=""), key="bk_day_gone")
    elif step == "t":
        await confirm_ask(flow, pick, vehicle)
    else:
        await confirm(flow, pick, vehicle)


async def on_manage(flow: Flow, step: str, args: list[str]) -> None:
    """Change the time of a booking (its days, its slots, the move) or keep it."""
    booking = await _open_booking(flow, args[0] if args else "")
    day = parse_day(args[1]) if len(args) > 1 else None
    if booking is None:
        await flow.say(flow.label("bk_unavailable"))
    elif step == "K":
        await flow.say(flow.label("bk_kept"), bt.manage_rows(flow, booking.id))
    elif step == "r" or day is None:
        await show_move_days(flow, booking)
    elif step == "R" or len(args) < 3:
        await show_slots(flow, Pick(job=BookingKind(booking.kind), day=day), move=booking,
                         key="bk_pick_slot")
    elif day not in bookings.bookable_days(flow.today, flow.rules) \
            or bookings.resolve_slot(flow.rules, args[2]) is None:
        await show_move_days(flow, booking, key="bk_day_gone")
    else:
        await move(flow, booking, day, args[2])


async def booking_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every ``bk:`` button lands here and goes to its step."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    await buttons.answer(svc, query)
    customer = await owners.customer_for_user(query.from_user.id)
    chat = update.effective_chat
    if customer is None or chat is None:
        return
    await log_in(update, svc, customer, "button", query.data)
    flow = flow_of(svc, customer, chat.id, query)
    parts = query.data.split(":")
    step, args = (parts[1] if len(parts) > 1 else ""), parts[2:]
    if step == "n":
        await flow.say(flow.label("bk_never_mind"))
    elif step == "x":
        await cancel(flow, args[0] if args else "")
    elif step in ("r", "R", "T", "K"):
        await on_manage(flow, step, args)
    elif step == "s":
        source = await _source(customer, int(args[0])) if args and args[0].isdigit() else None
        if source is None:
            await flow.say(flow.label("bk_unavailable"))
        else:
            await begin(flow, source)
    elif (pick := parse_pick(args)) is not None and step in ("v", "k", "N", "d", "t", "c", "b"):
        await on_pick(flow, step, pick)
    else:
        await flow.say(flow.label("bk_unavailable"))


async def book_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/book: an owner books any time, from nothing but the command."""
    svc = services_of(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/book")
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang_of(update, None)),
                  customer=None)
        return
    await begin(flow_of(svc, customer, chat.id, None), None)


async def note_route(update: Update, context: ContextTypes.DEFAULT_TYPE,
                     customer: Customer | None) -> bool:
    """Priority 12: the one message (or photo) the owner sends about a repair they are
    booking, within half an hour of the ask: kept on the dialogue's row (the message log has
    it already), then the days. Anything later takes the usual way to a person."""
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None or customer is None:
        return False
    conv = await owners.get_conversation(user.id)
    if conv is None or conv.state != NOTE_STATE:
        return False
    svc = services_of(context)
    data = dict(conv.data)
    try:
        asked = datetime.fromisoformat(str(data.get("at")))
    except ValueError:
        asked = datetime.min.replace(tzinfo=svc.clock.now().tzinfo)
    if svc.clock.now() - asked > NOTE_WAIT:
        await owners.set_conversation(user.id, NOTED_STATE, data)  # too late: not a note
        return False
    text = (msg.text or msg.caption or "").strip()
    photo = msg.photo[-1].file_id if msg.photo else ""
    data.update(note=text[:NOTE_LIMIT], photo=photo)
    await owners.set_conversation(user.id, NOTED_STATE, data)
    if isinstance(data.get("keyboard"), int):  # the ask's Skip goes: the note is in
        await svc.sender.edit_markup(msg.chat_id, int(data["keyboard"]), None)
    flow = flow_of(svc, customer, msg.chat_id, None)
    pick = Pick(src=int(data.get("src") or 0), car=int(data.get("car") or 0),
                job=BookingKind.REPAIR)
    await show_days(flow, pick, new=True, key="bk_note_got")
    return True


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("book", book_command, filters=private))
    application.add_handler(CallbackQueryHandler(booking_pressed, pattern=rf"^{PREFIX}:"))
    services.add_text_route(12, note_route)
