"""Staff answers owed to owners: rows, sent in order, retried, shown to staff if they fail.

A staff member's answer (in the ticket's topic or on the console) is recorded with its event
in one transaction (:func:`bot.tickets.record_staff_answer`) and is then owed to the owner
until Telegram took it. The staff side sends it at once, as the event's effect; when the
sender could not (Telegram down past the reply deadline) it is tried again after 1, 5 and
30 minutes by the staff side's job, later answers of the same ticket waiting behind it so
the owner reads them in the order they were written. An owner who blocked the bot or never
linked cannot get it: the staff topic says so at once (with the phone to call), and an
answer still refused after every try is shown there and on the ticket's page. Only the
instance doing the staff side sends, and a row is leased before its send: one delivery per
answer however many instances run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.expressions import Q

from bot import owners
from db.models import Customer, Direction, Staff, Ticket, TicketMessage

if TYPE_CHECKING:
    from bot.handlers.ticket_side import StaffSide
    from bot.services import Services

log = logging.getLogger(__name__)

RETRY_AFTER = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
LEASE = timedelta(minutes=2)  # a row being sent; a worker that died gives it back then
UNREACHABLE = "owner unreachable (not linked, or blocked the bot)"
REFUSED = "Telegram did not take it after every try"


def owed() -> Q:
    """Answers not yet taken by Telegram and not given up."""
    return Q(direction="out", relayed_at__isnull=True, failed_at__isnull=True)


async def deliver_owed(side: StaffSide, *, ticket_id: int | None = None,
                       limit: int = 200) -> int:
    """Send the answers due, oldest first; how many Telegram took. A ticket whose earlier
    answer is still owed keeps its later ones back (the owner reads them in order)."""
    now = side.svc.clock.now()
    query = TicketMessage.filter(owed())
    if ticket_id is not None:
        query = query.filter(ticket_id=ticket_id)
    held: set[int] = set()
    sent = 0
    for message in await query.order_by("id").limit(limit):
        if message.ticket_id in held:
            continue
        if not await _claim(message, now):
            held.add(message.ticket_id)  # not due yet, or another worker sends it
            continue
        if await _deliver(side, message, now):
            sent += 1
        else:
            held.add(message.ticket_id)
    return sent


async def _claim(message: TicketMessage, now: datetime) -> bool:
    due = Q(next_try_at__isnull=True) | Q(next_try_at__lte=now)
    return bool(await TicketMessage.filter(owed(), due, id=message.id).update(
        next_try_at=now + LEASE))


async def _deliver(side: StaffSide, message: TicketMessage, now: datetime) -> bool:
    ticket = await Ticket.get(id=message.ticket_id)
    customer = await Customer.get(id=ticket.customer_id)
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        await _give_up(side, message, ticket, customer, UNREACHABLE, now, message.attempts)
        return False
    staff = await Staff.get_or_none(id=message.staff_id) if message.staff_id else None
    text = signed(side.svc, customer, staff, message.text)
    sent = await side.to_owner(customer, text, photo=message.photo_file_id)
    attempts = message.attempts + 1
    if sent is not None:
        await TicketMessage.filter(id=message.id).update(
            relayed_at=now, attempts=attempts, next_try_at=None, last_error="")
        await owners.log_message(direction=Direction.OUT, chat_id=customer.telegram_chat_id,
                                 text=text, now=now, kind="ticket", customer_id=customer.id,
                                 telegram_message_id=sent)
        return True
    if await Customer.filter(id=customer.id, unreachable_at__isnull=False).exists():
        await _give_up(side, message, ticket, customer, UNREACHABLE, now, attempts)
        return False
    if attempts > len(RETRY_AFTER):
        await _give_up(side, message, ticket, customer, REFUSED, now, attempts)
        return False
    log.warning("ticket %s: answer %s not delivered (try %d); again in %s", ticket.number,
                message.id, attempts, RETRY_AFTER[attempts - 1])
    await TicketMessage.filter(id=message.id).update(
        attempts=attempts, next_try_at=now + RETRY_AFTER[attempts - 1],
        last_error="not delivered yet (see the failed sends)")
    return False


def signed(svc: Services, customer: Customer, staff: Staff | None, text: str) -> str:
    """Plain text (nothing to inject), signed with the staff member's registered name."""
    signature = svc.scripts.label("tk_staff_signature", customer.language,
                                  staff=staff.name if staff else "",
                                  dealer=svc.settings.dealer_name)
    return f"{text}\n\n{signature}" if text else signature


async def _give_up(side: StaffSide, message: TicketMessage, ticket: Ticket,
                   customer: Customer, why: str, now: datetime, attempts: int) -> None:
    """Kept as failed, and said where the person who wrote it looks: the ticket's topic
    (with the phone to call) and its page."""
    if not await TicketMessage.filter(owed(), id=message.id).update(
            failed_at=now, attempts=attempts, last_error=why[:200]):
        return
    log.error("ticket %s: answer %s not delivered: %s", ticket.number, message.id, why)
    key = "tk_owner_unreachable" if why == UNREACHABLE else "tk_answer_undelivered"
    await side.notice(ticket, side.label(key, phone=customer.phone, tries=attempts))
    await side.undelivered(ticket, "owner", message.text)
