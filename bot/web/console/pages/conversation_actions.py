"""What staff do with a conversation on the console: assign, answer, note, done, complaint
ticket, reopen.

Each action calls the domain function the staff group's topic uses (``bot.threads``), then
``after_change`` on the conversations' staff side, so the owner has the answer and the topic
shows what was done at once (the staff side's job would within seconds anyway). A refusal
(the conversation was closed meanwhile, an outcome that does not fit, an empty answer)
shows the page again with the reason and what was typed; every change is in the audit log
with who and when (never what was written: that is in the conversation itself).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot import bookings, threads, tickets
from bot.handlers import thread_chat
from bot.handlers.threads import owed_answers
from bot.threads import OUTCOMES, ThreadError
from bot.web.console import access, console_of, requires, staff_of
from bot.web.console.forms import Refused, posted_texts, text_field
from bot.web.console.pages.conversations import (
    ANSWER_LIMIT,
    TEXT_LIMIT,
    show,
    thread_for,
)
from db.models import (
    AuditLog,
    Customer,
    Staff,
    Thread,
    ThreadKind,
    ThreadMessage,
    ThreadState,
)

log = logging.getLogger(__name__)

ACTIONS = ("assign", "answer", "note", "done", "ticket", "reopen")
REPEAT_WINDOW = timedelta(seconds=60)  # the same answer twice in a minute is a double click
PHOTO_LIMIT = 10 * 1024 * 1024  # Telegram's limit for a photo
PHOTO_CAPTION_LIMIT = 900  # a caption takes 1,024 characters, the signature included
PREMIUM_MAX = Decimal(10_000_000)  # a premium at or above this is a typo


def _text(form: dict[str, str], name: str, limit: int, empty_key: str) -> str:
    return text_field(
        form, name, limit, empty_key=empty_key, too_long_key="conversations.refused.too_long"
    )


async def _assign(thread: Thread, staff: Staff, form: dict[str, str], now: Any) -> str:
    to = form.get("to", "")
    target: Staff | None
    if to == "me":
        target = staff
    elif to == "queue":
        target = None
    else:
        target = await Staff.get_or_none(id=int(to), active=True) \
            if to.isdecimal() and len(to) < 10 else None
        if target is None or not access.can(target, access.CONVERSATIONS):
            raise Refused("conversations.refused.assignee", 422)
    await threads.assign(thread, target, now=now)
    return "assigned"


async def _answer(request: web.Request, thread: Thread, staff: Staff,
                  form: dict[str, str]) -> str:
    """To the owner, signed with this person's name (the staff side sends it; answering an
    unassigned conversation takes it)."""
    now = console_of(request).services.clock.now()
    photo = await _photo(request)
    text = form.get("text", "").strip() if photo else \
        _text(form, "text", ANSWER_LIMIT, "conversations.refused.empty_answer")
    if len(text) > PHOTO_CAPTION_LIMIT and photo:
        raise Refused("conversations.refused.too_long", 422, limit=PHOTO_CAPTION_LIMIT)
    customer = await Customer.get(id=thread.customer_id)
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        shown = customer.phone if await access.phone_visible(staff, customer.id, thread) \
            else access.mask_phone(customer.phone)
        raise Refused("conversations.refused.unreachable", phone=shown)
    if not photo and await ThreadMessage.filter(
            thread_id=thread.id, direction="out", staff_id=staff.id, text=text,
            created_at__gte=now - REPEAT_WINDOW).exists():
        log.info("conversation %s: the same answer from staff %s within a minute: not resent",
                 thread.id, staff.id)
        return "answered"
    await threads.answer(thread, staff, text, now=now, upload=photo)
    return "answered"


async def _photo(request: web.Request) -> bytes | None:
    """The photo attached to an answer: JPEG or PNG (by its first bytes, not its name), at
    most Telegram's 10 MB for a photo; None when there is none."""
    field = (await request.post()).get("photo")
    if not isinstance(field, web.FileField):
        return None
    data = field.file.read(PHOTO_LIMIT + 1)
    if not data:
        return None  # the file input left empty
    if len(data) > PHOTO_LIMIT or not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        raise Refused("conversations.refused.photo", 422)
    return data


def _premium(form: dict[str, str]) -> Decimal | None:
    raw = form.get("premium", "").strip().replace(",", "").replace("，", "")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise Refused("conversations.refused.premium", 422) from None
    if not value.is_finite() or value < 0 or value >= PREMIUM_MAX \
            or value != value.quantize(Decimal("0.01")):
        raise Refused("conversations.refused.premium", 422)
    return value


def _booking(request: web.Request, form: dict[str, str]) -> tuple[date, str]:
    settings = console_of(request).services.settings
    today = console_of(request).services.clock.now().astimezone(settings.tz).date()
    try:
        day = date.fromisoformat(form.get("day", ""))
    except ValueError:
        raise Refused("conversations.refused.booking", 422) from None
    rules = console_of(request).services.rules.bookings
    slot = bookings.resolve_slot(rules, form.get("slot", ""))
    if day not in bookings.bookable_days(today, rules) or slot is None:
        raise Refused("conversations.refused.booking", 422)
    return day, slot.code


async def _done(request: web.Request, thread: Thread, staff: Staff,
                form: dict[str, str]) -> str:
    """Done with how it ended: a lead's outcome (an insurance renewal with its premium if
    known); a booking request booked becomes the booking, told to the owner as this
    person's answer."""
    svc = console_of(request).services
    kind = ThreadKind(thread.kind)
    allowed = OUTCOMES[kind]
    outcome = allowed[0] if len(allowed) == 1 else form.get("outcome", "")
    if outcome not in allowed:
        raise Refused("conversations.refused.outcome_needed", 422)
    premium = _premium(form) if outcome == "renewed_here" else None
    note = form.get("outcome_note", "").strip()
    if len(note) > TEXT_LIMIT:
        raise Refused("conversations.refused.too_long", 422, limit=TEXT_LIMIT)
    if kind == ThreadKind.BOOKING_REQUEST and outcome == "booked":
        day, slot = _booking(request, form)
        await thread_chat.book_from_thread(svc, thread, staff, day, slot)
        return "booked"
    await threads.mark_done(thread, staff, now=svc.clock.now(), outcome=outcome,
                            premium=premium, outcome_note=note)
    return "done"


async def _reopen(thread: Thread, now: Any) -> str:
    if thread.state != ThreadState.DONE:
        raise Refused("conversations.refused.not_done")
    if thread.ticket_id is not None:
        raise Refused("conversations.refused.ticketed")
    other = await threads.open_thread_of(thread.customer_id)
    if other is not None:
        raise Refused("conversations.refused.other_open", id=other.id)
    await threads.reopen(thread, now=now)
    return "reopened"


async def _perform(request: web.Request, action: str, staff: Staff, thread: Thread,
                   form: dict[str, str]) -> str:
    """Do it; the ``done`` notice key, or the path to go to."""
    svc = console_of(request).services
    now = svc.clock.now()
    if action == "assign":
        return await _assign(thread, staff, form, now)
    if action == "answer":
        return await _answer(request, thread, staff, form)
    if action == "note":
        await threads.note(thread, staff, _text(form, "text", TEXT_LIMIT,
                                                "conversations.refused.empty_note"), now=now)
        return "noted"
    if action == "done":
        return await _done(request, thread, staff, form)
    if action == "reopen":
        return await _reopen(thread, now)
    category = form.get("category", "")
    if category not in tickets.CATEGORIES:
        raise Refused("conversations.refused.category", 422)
    ticket = await threads.to_ticket(thread, staff, now=now, services=svc, category=category)
    return f"/tickets/{ticket.id}"


async def _delivery(thread: Thread, staff: Staff) -> str:
    """How this person's latest answer fared: answered (Telegram took it), queued (still
    being tried) or undelivered (given up: the owner must be called)."""
    latest = await ThreadMessage.filter(thread_id=thread.id, direction="out",
                                        staff_id=staff.id).order_by("-id").first()
    if latest is not None and latest.failed_at is not None:
        return "undelivered"
    if await ThreadMessage.filter(owed_answers(), thread_id=thread.id,
                                  staff_id=staff.id).exists():
        return "queued"
    return "answered"


async def _audit(request: web.Request, staff: Staff, action: str, thread: Thread) -> None:
    fresh = await Thread.get(id=thread.id)
    detail: dict[str, Any] = {"via": "console"}
    if action == "assign":
        detail["to"] = fresh.assignee_id
    elif action == "done":
        detail.update(outcome=fresh.outcome,
                      premium=str(fresh.premium) if fresh.premium is not None else None)
    elif action == "ticket":
        detail["ticket"] = fresh.ticket_id
    await AuditLog.create(staff_id=staff.id, action=f"conversation.{action}",
                          target=f"thread:{thread.id}", detail=detail,
                          created_at=console_of(request).services.clock.now())


@requires(access.CONVERSATIONS)
async def conversation_action(request: web.Request) -> web.StreamResponse:
    staff = staff_of(request)
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound(text="no such action")
    found = await thread_for(request, staff)
    if isinstance(found, web.Response):
        return found
    thread = found
    form = await posted_texts(request)
    try:
        if action != "reopen" and thread.state != ThreadState.OPEN:
            raise ThreadError("threads.refused.done")
        result = await _perform(request, action, staff, thread, form)
    except (Refused, ThreadError) as refused:
        key, status, fmt = (refused.key, refused.status, refused.fmt) \
            if isinstance(refused, Refused) else (refused.key, 409, {})
        fresh = await Thread.get(id=thread.id)
        return await show(request, staff, fresh, status=status, error_key=key,
                          error_args=fmt, form=form)
    await _audit(request, staff, action, thread)
    side = console_of(request).services.threads
    if side is not None:
        await side.after_change(thread.id)
    if result.startswith("/"):
        raise web.HTTPSeeOther(result)
    if result == "answered":
        result = await _delivery(thread, staff)
    scope = access.thread_scope(staff)
    if scope is not None and not await Thread.filter(scope, id=thread.id).exists():
        # given to someone else, out of this person's reach: back to their Inbox
        raise web.HTTPSeeOther(f"/inbox?{urlencode({'done': result})}")
    raise web.HTTPSeeOther(f"/inbox/{thread.id}?done={result}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(r"/inbox/{id:\d{1,18}}/{action:[a-z]+}", conversation_action)
