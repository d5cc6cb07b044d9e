"""A ticket's actions from the console: claim, answer the owner, note, escalate, mark
major, resolve (with the very functions the staff chat uses), and a ticket's photos fetched
from Telegram. What a person may do is :func:`.tickets.refusal`'s answer."""

from __future__ import annotations

import logging
import mimetypes
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from telegram.error import TelegramError

from bot import tickets
from bot.handlers import answers
from bot.handlers.staff import StaffSide
from bot.tickets import Outcome
from bot.web.console import access, console_of, forbidden, requires, staff_of
from bot.web.console.forms import Refused, posted_texts, text_field
from bot.web.console.pages.tickets import (
    ACTIONS,
    ANSWER_LIMIT,
    DONE,
    FORBIDDEN,
    OUTCOME_KEYS,
    QUEUED,
    REASON_LIMIT,
    REPEAT_WINDOW,
    TEXT_LIMIT,
    refusal,
    show_ticket,
    ticket_for,
)
from db.models import (
    AuditLog,
    Customer,
    Staff,
    Ticket,
    TicketMessage,
)

log = logging.getLogger(__name__)


def _side(request: web.Request) -> StaffSide | None:
    return console_of(request).services.staff_side


async def _audit(request: web.Request, staff: Staff, action: str, ticket: Ticket,
                 **detail: Any) -> None:
    await AuditLog.create(staff_id=staff.id, action=f"ticket.{action}",
                          target=f"ticket:{ticket.id}",
                          detail={"number": ticket.number, "via": "console", **detail},
                          created_at=console_of(request).services.clock.now())


def _text(form: dict[str, str], name: str, limit: int, empty_key: str) -> str:
    return text_field(form, name, limit, empty_key=empty_key,
                      too_long_key="tickets.refused.too_long")


async def _answer(request: web.Request, staff: Staff, ticket: Ticket,
                  form: dict[str, str]) -> Outcome:
    """What the staff chat does with a message in the topic: claim an unclaimed ticket the
    person may act on (the owner hears who handles it first), send the answer to the owner
    signed with their name, record it (the first answer stops the 2-hour clock)."""
    svc = console_of(request).services
    text = _text(form, "text", ANSWER_LIMIT, "tickets.refused.empty_answer")
    side = _side(request)
    if side is None:
        raise Refused("tickets.refused.no_bot", 503)
    customer = await Customer.get(id=ticket.customer_id)
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        raise Refused("tickets.refused.unreachable", phone=customer.phone)
    now = svc.clock.now()
    if await TicketMessage.filter(ticket_id=ticket.id, direction="out", staff_id=staff.id,
                                  text=text, created_at__gte=now - REPEAT_WINDOW).exists():
        log.info("ticket %s: the same answer from %s again within a minute: not resent",
                 ticket.number, staff.login)
        return Outcome.DONE
    # recorded, then owed to the owner until Telegram takes it (sent now when it may); an
    # unclaimed ticket is taken first, so the owner hears who handles it
    await tickets.record_staff_answer(ticket, staff, text, now=now, services=svc)
    return Outcome.DONE


async def _answer_owed(ticket: Ticket, staff: Staff) -> bool:
    """This person's answer is recorded but Telegram has not taken it yet."""
    return await TicketMessage.filter(answers.owed(), ticket_id=ticket.id,
                                      staff_id=staff.id).exists()


async def _perform(request: web.Request, action: str, staff: Staff, ticket: Ticket,
                   form: dict[str, str]) -> Outcome:
    svc = console_of(request).services
    now = svc.clock.now()
    if action == "claim":
        outcome, _ = await tickets.claim(ticket.id, staff, now=now, services=svc)
        return outcome
    if action == "answer":
        return await _answer(request, staff, ticket, form)
    if action == "note":
        await tickets.add_note(ticket, staff, _text(form, "text", TEXT_LIMIT,
                                                    "tickets.refused.empty_note"), now=now)
        return Outcome.DONE
    if action in ("escalate", "major"):
        why = _text(form, "reason", REASON_LIMIT, "tickets.refused.empty_reason")
        major = action == "major"
        reason = f"{'marked major' if major else 'escalated'} by {staff.name}: {why}"
        outcome, _ = await tickets.escalate(ticket.id, now=now, services=svc, actor=staff,
                                            reason=reason, major=major)
        return outcome
    resolution = _text(form, "resolution", TEXT_LIMIT, "tickets.refused.empty_resolution")
    improvement = _text(form, "improvement", TEXT_LIMIT, "tickets.refused.empty_improvement")
    outcome, _ = await tickets.resolve(ticket.id, staff, resolution=resolution,
                                       improvement=improvement, now=now, services=svc)
    return outcome


@requires(access.TICKETS)
async def ticket_action(request: web.Request) -> web.StreamResponse:
    staff = staff_of(request)
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound(text="no such action")
    found = await ticket_for(request, staff)
    if isinstance(found, web.Response):
        return found
    ticket = found
    form = await posted_texts(request)
    why = refusal(action, staff, ticket)
    if why == FORBIDDEN:
        log.info("ticket %s: %s refused to %s (%s) at level %s", ticket.number, action,
                 staff.login, staff.role, ticket.level)
        return await forbidden(request)
    if why is not None:
        return await show_ticket(request, staff, ticket, status=409, error_key=why, form=form)
    try:
        outcome = await _perform(request, action, staff, ticket, form)
    except Refused as refused:
        fresh = await Ticket.get(id=ticket.id)
        return await show_ticket(request, staff, fresh, status=refused.status,
                                 error_key=refused.key, error_args=refused.fmt, form=form)
    if outcome in (Outcome.NOT_STAFF, Outcome.NOT_ALLOWED):
        return await forbidden(request)  # the domain refused before changing anything
    if outcome is not Outcome.DONE:
        fresh = await Ticket.get(id=ticket.id)
        return await show_ticket(request, staff, fresh, status=409, error_key=OUTCOME_KEYS[outcome],
                           form=form)
    await _audit(request, staff, action, ticket)
    scope = access.ticket_scope(staff)
    if scope is not None and not await Ticket.filter(scope, id=ticket.id).exists():
        # escalated out of this person's reach: back to their list, saying what happened
        raise web.HTTPSeeOther(f"/tickets?{urlencode({'done': DONE[action], 'n': ticket.number})}")
    done = DONE[action]
    if action == "answer" and await _answer_owed(ticket, staff):
        done = QUEUED
    raise web.HTTPSeeOther(f"/tickets/{ticket.id}?done={done}")


@requires(access.TICKETS)
async def ticket_photo(request: web.Request) -> web.StreamResponse:
    """A photo on the ticket, fetched from Telegram by its file id (never stored here)."""
    staff = staff_of(request)
    found = await ticket_for(request, staff)
    if isinstance(found, web.Response):
        return found
    if not access.can(staff, access.COMPLAINT_TEXTS):
        return await forbidden(request)
    message = await TicketMessage.get_or_none(id=int(request.match_info["message"]),
                                              ticket_id=found.id)
    if message is None or not message.photo_file_id:
        raise web.HTTPNotFound(text="no such photo")
    bot = console_of(request).services.sender.bot  # get_file sends nothing
    try:
        file = await bot.get_file(message.photo_file_id)
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("ticket %s: photo %s not fetched: %s", found.number, message.id, exc)
        raise web.HTTPBadGateway(text="Telegram did not give the photo") from None
    kind = mimetypes.guess_type(file.file_path or "")[0] or "image/jpeg"
    return web.Response(body=data, content_type=kind if kind.startswith("image/")
                        else "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=3600"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(r"/tickets/{id:\d{1,9}}/{action:[a-z]+}", ticket_action)
    router.add_get(r"/tickets/{id:\d{1,9}}/photos/{message:\d{1,18}}", ticket_photo)
