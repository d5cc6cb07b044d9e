"""Conversations in Telegram: the owner's side (anything no dialogue took) and the topic's.

An owner's message that no dialogue took opens their conversation or joins it; the owner is
told honestly when a person will answer (the first-answer deadline on the complaints'
business calendar). In the conversation's topic in the staff group, what registered staff
write reaches the owner signed with their name (media as media); ``/note`` stays internal;
``/done`` or ✅ closes it; ``/ticket`` or 🎫 turns it into a complaint ticket.
"""

from __future__ import annotations

import logging
from datetime import date

from telegram import Message, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import bookings, canned, owners, threads, tickets
from bot.handlers import booking as booking_ui
from bot.handlers import buttons, owner
from bot.handlers.threads import CALLBACK_PREFIX, ThreadSide
from bot.handlers.ticket_side import side_of
from bot.services import Services, services_of
from bot.threads import Incoming, ThreadError
from db.models import (
    Booking,
    BookingKind,
    Customer,
    Direction,
    Staff,
    Thread,
    ThreadState,
    Touchpoint,
    Vehicle,
)

log = logging.getLogger(__name__)

MESSAGES = owner.MESSAGES
ROUTE_PRIORITY = 40  # after the complaint dialogue (10), surveys (20), an open ticket (30)


def thread_side_of(svc: Services) -> ThreadSide:
    """The conversations' staff side (registered with the feature, after the staff one)."""
    if svc.threads is None:
        raise RuntimeError("the conversations feature is not registered")
    return svc.threads


def incoming_of(msg: Message) -> Incoming:
    """What the owner (or staff) sent, free of Telegram types."""
    kind, media = "", ""
    if msg.photo:
        kind, media = "photo", msg.photo[-1].file_id
    elif msg.location is not None:
        kind, media = "location", f"{msg.location.latitude},{msg.location.longitude}"
    elif owner.kind_of(msg) != "text":
        kind = owner.kind_of(msg)
        media = getattr(msg, kind).file_id
    reply = msg.reply_to_message
    return Incoming(
        text=msg.text or msg.caption or "", media_kind=kind, media=media,
        telegram_message_id=msg.message_id,
        reply_to=reply.message_id if reply is not None else None,
        source=f"{msg.chat_id}:{msg.message_id}")


# --------------------------------------------------------------------------- the owner


async def conversation_route(update: Update, context: ContextTypes.DEFAULT_TYPE,
                             customer: Customer | None) -> bool:
    """Anything a linked owner sends that no dialogue took: into their conversation."""
    svc = services_of(context)
    msg = update.effective_message
    if msg is None or customer is None:
        return False
    incoming = incoming_of(msg)
    if not incoming.text and not incoming.media_kind:
        return False
    thread, _ = await threads.receive(customer, incoming, now=svc.clock.now(),
                                      settings=svc.settings, sla=svc.rules.tickets)
    if thread.acknowledged_at is None:  # owed since it opened (also when handled again)
        await _acknowledge(svc, customer, thread)
    await thread_side_of(svc).after_change(thread.id)
    return True


async def _acknowledge(svc: Services, customer: Customer, thread: Thread) -> None:
    """Tell the owner when a person will answer; marked once Telegram took it, so an update
    handled again after a crash still owes it (and one already told is not told again)."""
    chat = customer.telegram_chat_id
    if chat is None:
        return
    text = await acknowledgement(svc, customer, thread)
    sent = await svc.sender.text(chat, text)
    if sent is None:
        return  # the sender recorded why; the owner's next message tries again
    now = svc.clock.now()
    await owners.log_message(direction=Direction.OUT, chat_id=chat, text=text, now=now,
                             kind="reply", customer_id=customer.id,
                             telegram_message_id=sent.message_id)
    await Thread.filter(id=thread.id).update(acknowledged_at=now)


async def acknowledgement(svc: Services, customer: Customer, thread: Thread) -> str:
    """When a person will answer: the conversation's first-answer deadline, said plainly."""
    lang = customer.language
    label = svc.scripts.label
    assignee = await Staff.get_or_none(id=thread.assignee_id) if thread.assignee_id else None
    who = label("conv_who_advisor", lang, advisor=assignee.name) \
        if assignee is not None and assignee.name == customer.advisor \
        else label("conv_who_team", lang)
    due = thread.first_answer_due or svc.clock.now()
    day, time = threads.promise_when(due, svc.clock.now(), svc.settings)
    when = label(f"conv_when_{day}", lang, time=time)
    return label("conv_ack", lang, name=customer.name, who=who, when=when,
                 phone=svc.settings.dealer_phone)


# --------------------------------------------------------------------------- the topic


async def thread_of_message(msg: Message) -> Thread | None:
    """The conversation a staff-group message belongs to: its topic, or a reply to its card."""
    if msg.is_topic_message and msg.message_thread_id:
        found = await Thread.filter(topic_thread_id=msg.message_thread_id).order_by("-id") \
            .first()
        if found is not None:
            return found
    reply = msg.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.is_bot:
        return await Thread.get_or_none(card_message_id=reply.message_id)
    return None


async def on_topic_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A staff message in a conversation's topic: to the owner, signed. False when the
    message is not in a conversation's topic."""
    svc = services_of(context)
    side = thread_side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None or user.is_bot:
        return False
    thread = await thread_of_message(msg)
    if thread is None:
        return False
    staff = await tickets.staff_for(user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        log.warning("message in conversation %s's topic from unregistered user %s: not sent",
                    thread.id, user.id)
        await side.post(thread, side.label("tk_not_registered"))
        return True
    if thread.state != ThreadState.OPEN:
        await side.post(thread, side.label("th_already_done"))
        return True
    customer = await Customer.get(id=thread.customer_id)
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        await side.post(thread, side.label("tk_owner_unreachable", phone=customer.phone))
        return True
    incoming = incoming_of(msg)
    if not incoming.text and not incoming.media_kind:
        return True
    await threads.answer(thread, staff, incoming.text, now=svc.clock.now(),
                         media_kind=incoming.media_kind, media=incoming.media,
                         telegram_message_id=incoming.telegram_message_id,
                         source=incoming.source)
    await side.after_change(thread.id)
    return True


async def topic_note(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> bool:
    """/note in a conversation's topic: kept, never sent. False outside one."""
    svc = services_of(context)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return False
    thread = await thread_of_message(msg)
    staff = await tickets.staff_for(user.id)
    if thread is None or staff is None or not text:
        return False
    await threads.note(thread, staff, text, now=svc.clock.now(),
                       source=f"{msg.chat_id}:{msg.message_id}")
    return True


async def topic_command(update: Update, context: ContextTypes.DEFAULT_TYPE,
                        action: str) -> bool:
    """/done or /ticket (without arguments) in a conversation's topic; False outside one."""
    svc = services_of(context)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return False
    thread = await thread_of_message(msg)
    if thread is None:
        return False
    staff = await tickets.staff_for(user.id)
    side = thread_side_of(svc)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        await side.post(thread, side.label("tk_not_staff"))
        return True
    await perform(svc, thread, staff, action)
    return True


async def canned_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """``/r <name>`` in a conversation's topic: the canned reply of that short name, in the
    owner's language with their name and car, sent as this person's answer and shown in the
    topic. False outside a conversation's topic."""
    svc = services_of(context)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return False
    thread = await thread_of_message(msg)
    if thread is None:
        return False
    side = thread_side_of(svc)
    staff = await tickets.staff_for(user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        await side.post(thread, side.label("tk_not_staff"))
        return True
    customer = await Customer.get(id=thread.customer_id)
    name = (context.args or [""])[0].lower()
    await canned.ensure_defaults(svc.clock.now())
    reply = await canned.find(name, customer.language) if name else None
    if reply is None:
        known = sorted({r.name for r in await canned.library(svc.clock.now(), active_only=True)})
        await side.post(thread, side.label("th_canned_unknown", name=name or "?",
                                           known=", ".join(known) or "-"))
        return True
    vehicle = await Vehicle.get_or_none(id=thread.vehicle_id) if thread.vehicle_id else None
    text = canned.render(reply, customer, vehicle, staff, svc.settings)
    try:
        answered = await threads.answer(thread, staff, text, now=svc.clock.now(),
                                        source=f"{msg.chat_id}:{msg.message_id}")
    except ThreadError:
        await side.post(thread, side.label("th_already_done"))
        return True
    if answered is not None:  # shown in the topic: the command alone does not say what went
        await side.post(thread, side.label("th_canned_sent", staff=staff.name, name=name,
                                           text=text))
    await side.after_change(thread.id)
    return True


async def perform(svc: Services, thread: Thread, staff: Staff, action: str) -> str:
    """Take, done or ticket, from a button or a command; said in the topic, and returned."""
    side = thread_side_of(svc)
    now = svc.clock.now()
    try:
        if action == "take":
            await threads.assign(thread, staff, now=now)
            text = side.label("th_taken_notice", staff=staff.name)
        elif action == "done":
            await threads.mark_done(thread, staff, now=now)
            text = side.label("th_done_notice", staff=staff.name)
        else:
            ticket = await threads.to_ticket(thread, staff, now=now, services=svc)
            text = side.label("th_ticket_notice", staff=staff.name, number=ticket.number)
    except ThreadError:
        text = side.label("th_already_done")
    await side.post(thread, text)  # everyone in the topic sees who did what
    await side.after_change(thread.id)
    return text


async def book_from_thread(svc: Services, thread: Thread, staff: Staff, day: date,
                           slot: str) -> Booking:
    """A booking request becomes a booking: stored with its reminder the day before, the
    owner told (as this person's answer: signed, retried), the conversation done as booked.
    An open booking of that kind for that car is kept and said instead of a second one."""
    if thread.state != ThreadState.OPEN:
        raise ThreadError("threads.refused.done")
    now = svc.clock.now()
    touchpoint = await Touchpoint.get_or_none(id=thread.touchpoint_id) \
        if thread.touchpoint_id else None
    kind = bookings.kind_for(touchpoint.kind if touchpoint else "")
    outcome = await bookings.book(
        customer_id=thread.customer_id, vehicle_id=thread.vehicle_id, day=day, slot=slot,
        kind=kind, source_touchpoint_id=thread.touchpoint_id, now=now,
        rules=svc.rules.bookings)
    booking = outcome.booking
    if booking is None:  # the slot has no place left for that job
        raise ThreadError("threads.refused.slot_full")
    customer = await Customer.get(id=thread.customer_id)
    lang = customer.language
    vehicle = await Vehicle.get_or_none(id=booking.vehicle_id) if booking.vehicle_id else None
    fmt = {"day": booking_ui.day_label(svc, lang, booking.day),
           "slot": booking_ui.slot_label(svc, lang, booking.slot),
           "kind": booking_ui.kind_label(svc, lang, BookingKind(booking.kind))}
    text = svc.scripts.label("bk_confirmed", lang, name=customer.name,
                             phone=svc.settings.dealer_phone, note="",
                             vehicle=booking_ui.vehicle_text(svc, lang, vehicle), **fmt) \
        if outcome.created else svc.scripts.label("bk_exists", lang, **fmt)
    await threads.answer(thread, staff, text, now=now)
    await threads.mark_done(thread, staff, now=now, outcome="booked",
                            outcome_note=f"booking {booking.id}")
    await thread_side_of(svc).after_change(thread.id)
    return booking


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """🙋 Take / ✅ Done / 🎫 Complaint on a conversation's card."""
    svc = services_of(context)
    side = thread_side_of(svc)
    query = update.callback_query
    assert query is not None and query.data is not None
    _, action, raw_id = ([*query.data.split(":"), "", ""])[:3]
    staff = await tickets.staff_for(query.from_user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        await buttons.answer(svc, query, side.label("tk_not_staff"), show_alert=True)
        return
    thread = await Thread.get_or_none(id=int(raw_id)) if raw_id.isdigit() else None
    if thread is None or action not in ("take", "done", "ticket"):
        await buttons.answer(svc, query, side.label("tk_unknown"), show_alert=True)
        return
    if thread.state != ThreadState.OPEN:
        await buttons.answer(svc, query, side.label("th_already_done"), show_alert=True)
        return
    text = await perform(svc, thread, staff, action)
    await buttons.answer(svc, query, text[:200])


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    # after the staff feature: conversations share its group, budget and holder
    services.threads = ThreadSide(side_of(services))
    services.add_text_route(ROUTE_PRIORITY, conversation_route)
    application.add_handler(CallbackQueryHandler(on_button, pattern=rf"^{CALLBACK_PREFIX}:"))
