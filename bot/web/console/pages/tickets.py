"""Tickets: the list (filters, deadlines counting down) and one ticket's page; the actions
on a ticket are :mod:`.ticket_actions`.

Staff claim, answer the owner, note, escalate and resolve here with the very functions the
staff chat uses (``bot.tickets``), and the same effects (``StaffSide`` on
``services.staff_side``): the owner is told who handles the complaint, an answer
reaches the owner in Telegram signed with the staff member's name, the card in the staff
group is kept up to date. What a person may do is decided by :func:`refusal` from the
domain's rules (state, role against the ticket's level); the page shows only those
buttons, a forbidden post answers 403 and changes nothing, a post the ticket's state no
longer allows (a colleague was quicker) gets a message on the page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from bot import ticket_reasons, tickets
from bot.tickets import Outcome
from bot.web.console import access, console_of, forbidden, render, requires, staff_of
from bot.web.console.pages.chat import load_chat
from bot.web.console.render import Translator
from db.models import (
    Customer,
    Staff,
    StaffRole,
    Ticket,
    TicketEvent,
    TicketLevel,
    TicketMessage,
    TicketState,
    Vehicle,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50
DUE_SOON = timedelta(minutes=30)
SHOWN_MESSAGES = 500  # a ticket's latest messages and events shown on its page
ANSWER_LIMIT = 3500  # room for the signature under Telegram's 4096 characters
TEXT_LIMIT = 4000  # notes, resolution, improvement
REASON_LIMIT = 150  # the event keeps 200 characters with "escalated by NAME: "
REPEAT_WINDOW = timedelta(seconds=60)  # the same answer twice in a minute is a double click

ACTIONS = ("claim", "answer", "note", "escalate", "major", "resolve")
FORBIDDEN = "forbidden"
# After an action: ?done=<key> shows its notice on the ticket (or the list).
DONE = {"claim": "claimed", "answer": "answered", "note": "noted", "escalate": "escalated",
        "major": "major", "resolve": "resolved"}
QUEUED = "queued"  # an answer Telegram has not taken yet: carebot keeps trying
OUTCOME_KEYS = {
    Outcome.NOT_ACTIVE: "tickets.refused.not_active",
    Outcome.ALREADY: "tickets.refused.already",
    Outcome.TOP: "tickets.refused.top",
}
# Event kinds whose text (or reason) is what someone wrote: hidden without COMPLAINT_TEXTS.
TEXT_EVENTS = frozenset({"answered", "note", "resolved", "undelivered"})
NUMBER = re.compile(r"^T-\d{1,9}$")


# --------------------------------------------------------------------------- rules


def refusal(action: str, staff: Staff, ticket: Ticket) -> str | None:
    """Why ``staff`` may not do ``action`` on ``ticket`` now, in the domain's order.

    ``FORBIDDEN`` when their role or the ticket's level forbids it (403, as the staff chat's
    "not allowed"); a message key when the ticket's state does (resolved, closed, already
    theirs, nobody above); None when allowed. The same rules as the staff chat: anyone who
    handles tickets may answer, note, escalate and mark major; claim and resolve need a
    role at or above the ticket's level; a closed ticket takes no more answers.
    """
    if action not in ACTIONS or not tickets.is_ticket_staff(staff.role):
        return FORBIDDEN
    if action == "note":
        return None
    if action == "answer":
        return "tickets.refused.closed" if ticket.state == TicketState.CLOSED else None
    if ticket.state not in tickets.ACTIVE_STATES:
        return "tickets.refused.not_active"
    if action == "resolve" and tickets.may_resolve(staff, ticket):
        return None  # their level, or theirs before it was escalated
    if action in ("claim", "resolve"):
        if not tickets.can_act(staff.role, ticket.level):
            return FORBIDDEN
        if action == "claim" and ticket.handler_id == staff.id:
            return "tickets.refused.already"
        return None
    if action == "escalate" and tickets.next_level(ticket.level) is None:
        return "tickets.refused.top"
    if action == "major" and ticket.level == TicketLevel.MANAGER and ticket.major:
        return "tickets.refused.top"
    return None


def deadline_state(due_at: datetime | None, now: datetime) -> str:
    """on_time, due_soon (within 30 minutes), breached, or waiting (no clock runs)."""
    if due_at is None:
        return "waiting"
    if due_at <= now:
        return "breached"
    return "due_soon" if due_at - now <= DUE_SOON else "on_time"


# --------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class Filters:
    """The list's filters, from the query string (unknown values are ignored)."""

    state: str = "active"  # active, all, or one TicketState
    level: str = ""
    category: str = ""
    assignee: str = ""  # "", "me", "none" or a staff id
    breached: bool = False
    q: str = ""  # a ticket number, or an owner's phone, plate or VIN
    page: int = 1

    @classmethod
    def parse(cls, query: MultiMapping[str]) -> Filters:
        state = query.get("state", "active")
        if state not in ("active", "all") and state not in {s.value for s in TicketState}:
            state = "active"
        level = query.get("level", "")
        category = query.get("category", "")
        assignee = query.get("assignee", "")
        if assignee not in ("", "me", "none") and not (assignee.isdecimal() and len(assignee) < 10):
            assignee = ""
        page = query.get("page", "1")
        return cls(
            state=state,
            level=level if level in {lv.value for lv in TicketLevel} else "",
            category=category if category in tickets.CATEGORIES else "",
            assignee=assignee,
            breached=query.get("breached", "") in ("1", "on", "true"),
            q=query.get("q", "").strip()[:40],
            page=max(1, min(int(page), 100_000)) if page.isdecimal() and len(page) < 7 else 1,
        )

    def link(self, **changes: Any) -> str:
        """This list's URL with some filters changed (the pager, the quick links)."""
        f = replace(self, **changes)
        params = {"state": f.state, "level": f.level, "category": f.category,
                  "assignee": f.assignee, "breached": "1" if f.breached else "", "q": f.q,
                  "page": str(f.page) if f.page > 1 else ""}
        kept = {k: v for k, v in params.items() if v and not (k == "state" and v == "active")}
        return "/tickets" + (f"?{urlencode(kept)}" if kept else "")


async def _search(q: str) -> Q | None:
    """A ticket number (T-0042, or 42), or the tickets of the owner with that phone, plate or
    VIN (unique or indexed look-ups); a filter matching nothing when nobody fits."""
    if not q:
        return None
    number = tickets.parse_number(q)
    if number is None and q.isdecimal() and len(q) <= 6:
        number = int(q)
    if number is not None:
        return Q(id=number)
    customer, _ = await tickets.find_customer(q)
    return Q(customer_id=customer.id) if customer is not None else Q(id=-1)


async def filtered(filters: Filters, staff: Staff, now: datetime) -> QuerySet[Ticket]:
    """The tickets this person may see that match the filters (scoped by ``ticket_scope``)."""
    rows = Ticket.all()
    scope = access.ticket_scope(staff)
    if scope is not None:
        rows = rows.filter(scope)
    if filters.state == "active":
        rows = rows.filter(state__in=tickets.ACTIVE_STATES)
    elif filters.state != "all":
        rows = rows.filter(state=filters.state)
    if filters.level:
        rows = rows.filter(level=filters.level)
    if filters.category:
        rows = rows.filter(category=filters.category)
    if filters.assignee == "me":
        rows = rows.filter(handler_id=staff.id)
    elif filters.assignee == "none":
        rows = rows.filter(handler_id__isnull=True)
    elif filters.assignee:
        rows = rows.filter(handler_id=int(filters.assignee))
    if filters.breached:
        # missed a deadline (escalated for it), or its running deadline has passed
        rows = rows.filter(Q(breaches__gt=0)
                           | Q(state__in=tickets.ACTIVE_STATES, due_at__lte=now))
    search = await _search(filters.q)
    if search is not None:
        rows = rows.filter(search)
    return rows


async def page_of(rows: QuerySet[Ticket], page: int) -> tuple[list[Ticket], int]:
    """One page sorted by deadline: running deadlines first, soonest first; then tickets
    without a clock (resolved, closed), newest first. Two ranges read apart, so the order
    is the same on SQLite and PostgreSQL (which disagree on where NULLs sort); the first
    page needs no count of the first range."""
    related = ("customer", "vehicle", "handler")
    dated = rows.filter(due_at__not_isnull=True).order_by("due_at", "id")
    undated = rows.filter(due_at__isnull=True).order_by("-created_at", "-id")
    total = await rows.count()
    offset = (page - 1) * PAGE_SIZE
    if offset >= total:
        return [], total
    if offset == 0:
        items = list(await dated.limit(PAGE_SIZE).prefetch_related(*related))
        n_dated = len(items)  # all of them, when fewer than a page
    else:
        n_dated = await dated.count()
        items = list(await dated.offset(offset).limit(PAGE_SIZE).prefetch_related(*related)) \
            if offset < n_dated else []
    if len(items) < PAGE_SIZE and n_dated < total:
        items += await undated.offset(max(0, offset - n_dated)) \
            .limit(PAGE_SIZE - len(items)).prefetch_related(*related)
    return items, total


async def ticket_staff() -> list[Staff]:
    """Who can be a ticket's handler, for the assignee filter (a small table)."""
    roles = [r for r in StaffRole if tickets.is_ticket_staff(r)]
    return await Staff.filter(role__in=roles, active=True).order_by("name", "id")


@requires(access.TICKETS)
async def ticket_list(request: web.Request) -> web.Response:
    staff = staff_of(request)
    now = console_of(request).services.clock.now()
    filters = Filters.parse(request.query)
    items, total = await page_of(await filtered(filters, staff, now), filters.page)
    pages = max(1, -(-total // PAGE_SIZE))
    rows = [{"ticket": t, "state": deadline_state(t.due_at, now)} for t in items]
    done = request.query.get("done", "")
    number = request.query.get("n", "")
    return await render(
        request, "tickets.html", filters=filters, rows=rows, total=total, pages=pages,
        assignees=await ticket_staff(), categories=tickets.CATEGORIES,
        levels=[lv.value for lv in tickets.LEVELS], states=[s.value for s in TicketState],
        done=done if done in DONE.values() or done == QUEUED else "",
        done_number=number if NUMBER.match(number) else "",
    )


# --------------------------------------------------------------------------- one ticket


async def ticket_for(request: web.Request, staff: Staff) -> Ticket | web.Response:
    """The ticket of the URL if this person may see it: 404 when none, 403 out of scope."""
    ticket_id = int(request.match_info["id"])
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None:
        return await render(request, "error.html", status=404, code=404,
                            message_key="error.404")
    scope = access.ticket_scope(staff)
    if scope is not None and not await Ticket.filter(scope, id=ticket_id).exists():
        log.info("ticket %s refused to %s (%s): not theirs", ticket.number, staff.login,
                 staff.role)
        return await forbidden(request)
    return ticket


def _event_row(event: TicketEvent, texts: bool, t: Translator) -> dict[str, Any]:
    """One line of the history, in the reader's language where the record allows."""
    detail, reason, major = event.text, reason_text(t, event.reason), False
    if event.kind in ("escalated", "reopened") and " -> " in detail:
        before, _, after = detail.partition(" -> ")
        major = after.endswith(" (major)")
        after = after.removesuffix(" (major)")
        detail = f"{_level(t, before)} → {_level(t, after)}"
    elif event.kind == "opened":  # the description heads the conversation
        channel = reason.removeprefix("channel ")
        detail, reason = "", t(f"tickets.channel.{channel}") if channel in tickets.CHANNELS \
            else reason
    elif event.kind == "claimed":
        detail, reason = "", ""  # the claimer's name and level: in "Who" and the escalations
    hidden = not texts and event.kind in TEXT_EVENTS
    if hidden:
        detail, reason = "", ""
    return {"event": event, "detail": detail, "reason": reason, "major": major,
            "hidden": hidden}


def reason_text(t: Translator, reason: str) -> str:
    """The record's reason in the reader's language (as written when not a known form)."""
    reason, skipped = ticket_reasons.split_skipped(reason)
    shown = _known_reason(t, reason)
    if skipped:
        comma, semicolon = (", ", "; ") if t.lang == "en" else ("、", "；")
        note = t("tickets.reason.skipped", levels=comma.join(_level(t, lv) for lv in skipped))
        shown = f"{shown}{semicolon}{note}" if shown else note
    return shown


def _known_reason(t: Translator, reason: str) -> str:
    known = ticket_reasons.reason_key(reason)
    if known is None:
        return reason
    key, values = known
    if "level" in values:
        values["level"] = _level(t, values["level"])
    if "state" in values:
        values["state"] = t.get(f"tickets.state.{values['state']}", values["state"])
    return t(f"tickets.reason.{key}", **values)


def _level(t: Translator, level: str) -> str:
    return t(f"level.{level}") if level in {lv.value for lv in TicketLevel} else level


@dataclass
class TicketPage:
    """What a ticket's page shows, read in a fixed number of queries."""

    ticket: Ticket
    customer: Customer
    vehicles: list[Vehicle]
    messages: list[TicketMessage]
    more_messages: bool
    events: list[TicketEvent]
    earlier: list[Ticket]
    newest_in: int | None = None
    allowed: dict[str, bool] = field(default_factory=dict)


async def load_page(ticket: Ticket, staff: Staff) -> TicketPage:
    await ticket.fetch_related("customer", "vehicle", "handler")
    customer: Customer = ticket.customer
    vehicles = await Vehicle.filter(customer_id=customer.id).order_by("-delivered_at", "id") \
        .limit(10)
    latest = await TicketMessage.filter(ticket_id=ticket.id).order_by("-id") \
        .limit(SHOWN_MESSAGES + 1).prefetch_related("staff")
    events = await TicketEvent.filter(ticket_id=ticket.id).order_by("-created_at", "-id") \
        .limit(SHOWN_MESSAGES).prefetch_related("actor")
    earlier_q = Ticket.filter(customer_id=customer.id).exclude(id=ticket.id)
    scope = access.ticket_scope(staff)
    if scope is not None:
        earlier_q = earlier_q.filter(scope)
    earlier = await earlier_q.order_by("-created_at").limit(5)
    messages = list(reversed(latest[:SHOWN_MESSAGES]))
    newest_in = next((m.id for m in reversed(messages) if m.direction == "in"), None)
    return TicketPage(
        ticket=ticket, customer=customer, vehicles=list(vehicles), messages=messages,
        more_messages=len(latest) > SHOWN_MESSAGES, events=list(reversed(events)),
        earlier=list(earlier), newest_in=newest_in,
        allowed={a: refusal(a, staff, ticket) is None for a in ACTIONS},
    )


async def show_ticket(request: web.Request, staff: Staff, ticket: Ticket, *, status: int = 200,
                error_key: str = "", error_args: dict[str, Any] | None = None,
                form: dict[str, str] | None = None) -> web.Response:
    console = console_of(request)
    now = console.services.clock.now()
    data = await load_page(ticket, staff)
    texts = access.can(staff, access.COMPLAINT_TEXTS)
    t = Translator(console.strings, staff.language)
    done = request.query.get("done", "") if request.method == "GET" else ""
    return await render(
        request, "ticket.html", status=status, page=data, ticket=data.ticket,
        customer=data.customer, texts=texts, chat=await load_chat(data.customer),
        events=[_event_row(e, texts, t) for e in data.events],
        state=deadline_state(data.ticket.due_at, now),
        done=done if done in DONE.values() or done == QUEUED else "",
        error_key=error_key, error_args=error_args or {}, form=form or {},
        next_level=tickets.next_level(data.ticket.level),
        followup_days=f"{console.services.settings.ticket_followup_days:g}",
        answer_limit=ANSWER_LIMIT, text_limit=TEXT_LIMIT, reason_limit=REASON_LIMIT,
    )


@requires(access.TICKETS)
async def ticket_view(request: web.Request) -> web.Response:
    staff = staff_of(request)
    ticket = await ticket_for(request, staff)
    if isinstance(ticket, web.Response):
        return ticket
    return await show_ticket(request, staff, ticket)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/tickets", ticket_list)
    router.add_get(r"/tickets/{id:\d{1,9}}", ticket_view)
