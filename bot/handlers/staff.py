"""The staff group's handlers for complaint tickets: card buttons, the resolve dialogue,
staff messages in a topic (answers to the owner), ``/note``, ``/ticket``, ``/done``; and the
staff side's jobs (deadlines every minute, owed effects and relays every few seconds).

Staff identity is the Telegram user id an admin registered. Messages in a conversation's
topic (not a ticket's) go to :mod:`bot.handlers.thread_chat`. What the bot writes in the
group is :class:`bot.handlers.ticket_side.StaffSide`'s.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler
from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import locks, owners, tickets
from bot.delivery import notices
from bot.handlers import answers, buttons, thread_chat
from bot.handlers.ticket_card import CALLBACK_PREFIX
from bot.handlers.ticket_side import StaffSide, side_of
from bot.services import Services, services_of
from bot.tickets import Outcome
from db.models import Conversation, Customer, Staff, Ticket, TicketState

__all__ = ["StaffSide", "deadline_tick", "register", "relay_tick", "schedule", "side_of"]

log = logging.getLogger(__name__)

RESOLUTION_STATE = "tkstaff:resolution"
IMPROVEMENT_STATE = "tkstaff:improvement"


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Claim / Escalate / Major / Resolve on a ticket card; only registered staff may."""
    svc = services_of(context)
    side = side_of(svc)
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, rest = query.data.partition(":")
    action, _, raw_id = rest.partition(":")
    staff = await tickets.staff_for(query.from_user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        log.warning("ticket button %r pressed by unregistered user %s", query.data,
                    query.from_user.id)
        await buttons.answer(svc, query, side.label("tk_not_staff"), show_alert=True)
        return
    if not raw_id.isdigit():
        await buttons.answer(svc, query, side.label("tk_unknown"), show_alert=True)
        return
    ticket_id = int(raw_id)
    now = svc.clock.now()
    outcome: Outcome
    ticket: Ticket | None
    if action == "claim":
        outcome, ticket = await tickets.claim(ticket_id, staff, now=now, services=svc)
        done_text = side.label("tk_claimed_toast", number=ticket.number) if ticket else ""
    elif action in ("escalate", "major"):
        major = action == "major"
        reason = f"{'marked major' if major else 'escalated'} by {staff.name}"
        outcome, ticket = await tickets.escalate(ticket_id, now=now, services=svc, actor=staff,
                                                 reason=reason, major=major)
        done_text = side.label("tk_escalated_toast",
                               level=side._level(ticket.level)) if ticket else ""
    elif action == "resolve":
        outcome, ticket = await _start_resolve(side, ticket_id, staff, query.from_user.id)
        done_text = ""
    else:
        await buttons.answer(svc, query, side.label("tk_unknown"), show_alert=True)
        return
    if outcome is Outcome.DONE:
        await buttons.answer(svc, query, done_text or None)
        return
    level = side._level(ticket.level) if ticket else ""
    messages = {
        Outcome.NOT_STAFF: side.label("tk_not_staff"),
        Outcome.NOT_ALLOWED: side.label("tk_not_allowed", level=level),
        Outcome.NOT_ACTIVE: side.label("tk_not_active") if ticket else side.label("tk_unknown"),
        Outcome.ALREADY: side.label("tk_already"),
        Outcome.TOP: side.label("tk_top"),
    }
    await buttons.answer(svc, query, messages[outcome], show_alert=True)


async def _start_resolve(side: StaffSide, ticket_id: int, staff: Staff,
                         user_id: int) -> tuple[Outcome, Ticket | None]:
    """Resolve asks the resolver for the resolution, then the improvement measure."""
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None or ticket.state not in tickets.ACTIVE_STATES:
        return Outcome.NOT_ACTIVE, ticket
    if not tickets.may_resolve(staff, ticket):
        return Outcome.NOT_ALLOWED, ticket
    await owners.set_conversation(user_id, RESOLUTION_STATE, {"ticket_id": ticket.id})
    await side.send(ticket, side.label("tk_resolve_ask_resolution", name=staff.name))
    return Outcome.DONE, ticket


async def _resolve_step(side: StaffSide, conv: Conversation, ticket: Ticket, staff: Staff,
                        text: str, user_id: int) -> None:
    svc = side.svc
    if not text.strip():
        return
    if conv.state == RESOLUTION_STATE:
        await owners.set_conversation(user_id, IMPROVEMENT_STATE,
                                      {"ticket_id": ticket.id, "resolution": text})
        await side.send(ticket, side.label("tk_resolve_ask_improvement"))
        return
    await Conversation.filter(telegram_user_id=user_id).delete()
    outcome, _ = await tickets.resolve(ticket.id, staff, resolution=str(conv.data.get(
        "resolution", "")), improvement=text, now=svc.clock.now(), services=svc)
    if outcome is not Outcome.DONE:
        await side.send(ticket, side.label("tk_not_active" if outcome is Outcome.NOT_ACTIVE
                                           else "tk_not_allowed",
                                           level=side._level(ticket.level)))


async def on_staff_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message in a ticket's topic: the resolve dialogue, or a reply relayed to the owner."""
    svc = services_of(context)
    side = side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None or user.is_bot:
        return
    ticket = await side.ticket_of_message(msg)
    if ticket is None:  # a conversation's topic, or staff talking among themselves
        await thread_chat.on_topic_message(update, context)
        return
    staff = await tickets.staff_for(user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        log.warning("message in %s topic from unregistered user %s: not relayed",
                    ticket.number, user.id)
        await side.send(ticket, side.label("tk_not_registered"))
        return
    text = msg.text or msg.caption or ""
    conv = await owners.get_conversation(user.id)
    if conv is not None and conv.state in (RESOLUTION_STATE, IMPROVEMENT_STATE) \
            and conv.data.get("ticket_id") == ticket.id:
        await _resolve_step(side, conv, ticket, staff, text, user.id)
        return
    if ticket.state == TicketState.CLOSED:
        await side.send(ticket, side.label("tk_not_active"))
        return
    photo = msg.photo[-1].file_id if msg.photo else ""
    if not text and not photo:
        return
    customer = await Customer.get(id=ticket.customer_id)
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        await side.send(ticket, side.label("tk_owner_unreachable", phone=customer.phone))
        return
    # recorded, then owed to the owner until Telegram takes it (the answer's effect sends
    # it); answering an unclaimed ticket takes it, so the owner hears who handles it first
    await tickets.record_staff_answer(ticket, staff, text, now=svc.clock.now(), services=svc,
                                      photo_file_id=photo,
                                      source=f"{msg.chat_id}:{msg.message_id}")


async def note_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/note text in a ticket's topic: kept on the ticket, never sent to the owner."""
    svc = services_of(context)
    side = side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    staff = await tickets.staff_for(user.id)
    if staff is None:
        return
    ticket = await side.ticket_of_message(msg)
    text = " ".join(context.args or [])
    if ticket is None and await thread_chat.topic_note(update, context, text):
        return
    if ticket is None or not text:
        await side.send(ticket, side.label("tk_note_usage"),
                        thread_id=msg.message_thread_id if msg.is_topic_message else None)
        return
    await tickets.add_note(ticket, staff, text, now=svc.clock.now(), in_topic=True)


async def ticket_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ticket <phone|plate|VIN> <text>: open a ticket for an owner who phoned or came in."""
    svc = services_of(context)
    side = side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    thread = msg.message_thread_id if msg.is_topic_message else None
    staff = await tickets.staff_for(user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        await side.send(None, side.label("tk_not_staff"), thread_id=thread)
        return
    args = context.args or []
    if not args and await thread_chat.topic_command(update, context, "ticket"):
        return  # /ticket in a conversation's topic: it becomes a complaint
    if len(args) < 2:
        await side.send(None, side.label("tk_ticket_usage"), thread_id=thread)
        return
    customer, vehicle = await tickets.find_customer(args[0])
    if customer is None:
        await side.send(None, side.label("tk_ticket_not_found", query=args[0]), thread_id=thread)
        return
    ticket = await tickets.open_ticket(
        customer_id=customer.id, vehicle_id=vehicle.id if vehicle else None, channel="staff",
        category="other", description=" ".join(args[1:]), now=svc.clock.now(), services=svc,
        actor_id=staff.id)
    await side.send(None, side.label("tk_ticket_opened", name=customer.name,
                                     number=ticket.number), thread_id=thread)


async def canned_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/r <name> in a conversation's topic: a canned reply to the owner."""
    svc = services_of(context)
    msg = update.effective_message
    if not await thread_chat.canned_reply(update, context) and msg is not None:
        await side_of(svc).send(None, side_of(svc).label("th_canned_where"),
                                thread_id=msg.message_thread_id if msg.is_topic_message
                                else None)


async def done_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/done in a conversation's topic: the conversation is done."""
    await thread_chat.topic_command(update, context, "done")


# --------------------------------------------------------------------------- wiring


async def deadline_tick(services: Services) -> None:
    """The minute job: escalate missed deadlines; also catch up on unpublished tickets.
    One instance at a time (the ``ticket_deadlines`` advisory lock); others skip."""
    async with locks.locks_of(services).singleton(locks.TICKET_DEADLINES) as mine:
        if not mine:
            return
        try:
            await tickets.check_deadlines(services.clock.now(), services)
        except Exception:  # a failed tick must not kill the scheduler
            log.exception("ticket deadline check failed; the next tick retries")


async def relay_tick(services: Services) -> None:
    """The staff side's job, on the one instance that does it (``StaffSide.holder``):
    effects still owed, tickets not shown yet, owner messages still queued (batched)."""
    side = side_of(services)
    try:
        if not await side.holder():
            return
        await side.carry_out_owed()
        await side.publish_pending()
        await side.flush()
        await answers.deliver_owed(side)
        await side.mirror()
        await thread_chat.thread_side_of(services).tick()
        await notices.send_owed(services.sender, services.clock.now())
    except Exception:  # a failed tick must not kill the scheduler
        log.exception("staff side tick failed; the next tick retries")


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    services.staff_side = side = StaffSide(services)
    services.ticket_effects = side  # a ticket's change owes what the staff side does
    application.add_handler(CallbackQueryHandler(on_button, pattern=rf"^{CALLBACK_PREFIX}:"))
    chat_id = services.settings.staff_chat_id
    if chat_id is None:
        log.warning("CAREBOT_STAFF_CHAT_ID is not set: tickets are recorded but no staff "
                    "chat shows them")
        return
    staff_chat = filters.Chat(chat_id=chat_id)
    application.add_handler(CommandHandler("note", note_command, filters=staff_chat))
    application.add_handler(CommandHandler("ticket", ticket_command, filters=staff_chat))
    application.add_handler(CommandHandler("done", done_command, filters=staff_chat))
    application.add_handler(CommandHandler("r", canned_command, filters=staff_chat))
    application.add_handler(MessageHandler(
        staff_chat & thread_chat.MESSAGES & ~filters.COMMAND, on_staff_message))


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    scheduler.add_job(deadline_tick, "interval", minutes=1, args=[services],
                      id="ticket_deadlines", max_instances=1, coalesce=True)
    scheduler.add_job(relay_tick, "interval", seconds=3, args=[services], id="ticket_relay",
                      max_instances=1, coalesce=True)
