"""The Inbox: owners' conversations for the people who answer them (issue 14, point 3).

The list shows the open conversations this person may see (``access.thread_scope``:
agents and advisors their own, their queue's unassigned ones and their own customers';
supervisors, managers and admins all), filtered unassigned / mine / all and by kind,
longest waiting first: a conversation nobody answered yet waits since its first message, an
answered one since the owner's first message after the last answer; the others follow,
latest first. A conversation is unread while the owner wrote after it was last opened.

One conversation's page is the owner's whole chat (:mod:`.chat`) with the actions of
:mod:`.conversation_actions`. Phones are shown in full only where ``access.phone_visible``
allows, else masked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Max
from tortoise.queryset import QuerySet

from bot import bookings, canned, tickets
from bot.threads import OUTCOMES
from bot.web.console import access, console_of, forbidden, render, requires, staff_of
from bot.web.console.pages.chat import load_chat
from bot.web.console.pages.customers import search_filter
from bot.web.console.pages.tickets import deadline_state
from db.models import (
    Customer,
    Staff,
    StaffRole,
    Thread,
    ThreadKind,
    ThreadMessage,
    ThreadState,
    Vehicle,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50
WAITING_CAP = 2000  # waiting conversations sorted exactly; more than this is a crisis anyway
PREVIEW = 90  # characters of the owner's latest message in the list
ANSWER_LIMIT = 3500  # room for the signature under Telegram's 4096 characters
TEXT_LIMIT = 2000  # notes and an outcome's note
VIEWS = ("all", "unassigned", "mine")
STATES = ("open", "done")
KINDS = tuple(k.value for k in ThreadKind)
# After an action: ?done=<key> shows its notice on the page (or the list).
DONE_KEYS = ("assigned", "answered", "queued", "undelivered", "noted", "done", "reopened",
             "booked")
#: the owner wrote and nobody has answered since
WAITING = Q(first_answered_at__isnull=True) | Q(last_in_at__gt=F("last_out_at"))


@dataclass(frozen=True)
class Filters:
    """The Inbox's filters, from the query string (unknown values are ignored)."""

    view: str = "all"
    kind: str = ""
    state: str = "open"
    q: str = ""  # an owner's name, phone (or its last 4 digits) or plate (or part of it)
    page: int = 1

    @classmethod
    def parse(cls, query: MultiMapping[str]) -> Filters:
        view, kind, state = query.get("view", "all"), query.get("kind", ""), \
            query.get("state", "open")
        page = query.get("page", "1")
        return cls(view=view if view in VIEWS else "all", kind=kind if kind in KINDS else "",
                   state=state if state in STATES else "open",
                   q=query.get("q", "").strip()[:40],
                   page=max(1, min(int(page), 100_000))
                   if page.isdecimal() and len(page) < 7 else 1)

    def link(self, **changes: Any) -> str:
        f = replace(self, **changes)
        params = {"view": f.view if f.view != "all" else "", "kind": f.kind,
                  "state": f.state if f.state != "open" else "", "q": f.q,
                  "page": str(f.page) if f.page > 1 else ""}
        kept = {k: v for k, v in params.items() if v}
        return "/inbox" + (f"?{urlencode(kept)}" if kept else "")


def visible(staff: Staff) -> QuerySet[Thread]:
    scope = access.thread_scope(staff)
    return Thread.filter(scope) if scope is not None else Thread.all()


def filtered(filters: Filters, staff: Staff) -> tuple[QuerySet[Thread], str]:
    """The conversations this person may see that match the filters; (rows, what the
    search looked for)."""
    rows = visible(staff).filter(state=filters.state)
    if filters.view == "mine":
        rows = rows.filter(assignee_id=staff.id)
    elif filters.view == "unassigned":
        rows = rows.filter(assignee_id__isnull=True)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    looked_for = ""
    if filters.q:
        looked_for, found = search_filter(filters.q)
        rows = rows.filter(customer_id__in=Subquery(Customer.filter(found).values("id")))
    return rows, looked_for


async def waiting_since(threads: list[Thread]) -> dict[int, datetime]:
    """When each waiting conversation's oldest unanswered owner message came."""
    since = {t.id: t.created_at for t in threads if t.first_answered_at is None}
    answered = {t.id: t for t in threads if t.id not in since and t.last_out_at is not None}
    if answered:
        earliest = min(t.last_out_at for t in answered.values() if t.last_out_at)
        rows = await ThreadMessage.filter(
            thread_id__in=list(answered), direction="in", created_at__gt=earliest) \
            .order_by("created_at", "id").values_list("thread_id", "created_at")
        for thread_id, at in rows:
            last_out = answered[thread_id].last_out_at
            if thread_id not in since and last_out is not None and at > last_out:
                since[thread_id] = at
    for t in threads:
        since.setdefault(t.id, t.last_in_at or t.created_at)
    return since


async def page_of(rows: QuerySet[Thread], filters: Filters
                  ) -> tuple[list[Thread], dict[int, datetime], int]:
    """One page: waiting conversations longest waiting first, then the others by latest
    activity (done ones: latest done first); (threads, waiting since, total)."""
    offset = (filters.page - 1) * PAGE_SIZE
    if filters.state == "done":
        total = await rows.count()
        items = list(await rows.order_by("-done_at", "-id").offset(offset).limit(PAGE_SIZE))
        return items, {}, total
    waiting = list(await rows.filter(WAITING).order_by("created_at", "id").limit(WAITING_CAP))
    since = await waiting_since(waiting)
    waiting.sort(key=lambda t: (since[t.id], t.id))
    rest = rows.filter(Q(first_answered_at__isnull=False) & (
        Q(last_in_at__isnull=True) | Q(last_in_at__lte=F("last_out_at"))))
    total = len(waiting) + await rest.count()
    items = waiting[offset:offset + PAGE_SIZE]
    if len(items) < PAGE_SIZE:
        items += await rest.order_by("-updated_at", "-id") \
            .offset(max(0, offset - len(waiting))).limit(PAGE_SIZE - len(items))
    return items, {t.id: since[t.id] for t in items if t.id in since}, total


async def shown_phones(staff: Staff, threads: list[Thread]) -> dict[int, str]:
    """Each owner's phone as this person may see it (customer id -> phone)."""
    customers = {t.customer.id: t.customer for t in threads}
    full: set[int] = set()
    scope = access.customer_scope(staff)
    if scope is None:
        full = set(customers)
    elif customers:
        full = set(await Customer.filter(scope, id__in=list(customers))
                   .values_list("id", flat=True))  # type: ignore[arg-type]
        full |= {t.customer_id for t in threads if t.assignee_id == staff.id}
    return {cid: c.phone if cid in full else access.mask_phone(c.phone)
            for cid, c in customers.items()}


async def latest_words(threads: list[Thread]) -> dict[int, tuple[str, str]]:
    """The owner's latest message in each conversation: (its words shortened, its media
    kind)."""
    ids = [t.id for t in threads]
    if not ids:
        return {}
    last = await ThreadMessage.filter(thread_id__in=ids, direction="in") \
        .group_by("thread_id").annotate(last=Max("id")).values_list("thread_id", "last")
    rows = await ThreadMessage.filter(id__in=[m for _, m in last]) \
        .values_list("thread_id", "text", "media_kind")
    out = {}
    for thread_id, text, media_kind in rows:
        words = " ".join(str(text).split())
        out[int(thread_id)] = (words if len(words) <= PREVIEW
                               else words[:PREVIEW - 1] + "…", str(media_kind))
    return out


@requires(access.CONVERSATIONS)
async def inbox(request: web.Request) -> web.Response:
    staff = staff_of(request)
    now = console_of(request).services.clock.now()
    filters = Filters.parse(request.query)
    rows, looked_for = filtered(filters, staff)
    items, since, total = await page_of(rows, filters)
    await Thread.fetch_for_list(items, "customer", "vehicle", "assignee")
    phones = await shown_phones(staff, items)
    words = await latest_words(items) if access.can(staff, access.COMPLAINT_TEXTS) else {}
    listed = [{
        "thread": t, "since": since.get(t.id), "phone": phones[t.customer.id],
        "unread": t.last_in_at is not None and (t.read_at is None or t.last_in_at > t.read_at),
        "deadline": deadline_state(t.first_answer_due, now)
        if t.first_answered_at is None and t.state == ThreadState.OPEN else "answered",
        "words": words.get(t.id, ("", ""))[0], "media": words.get(t.id, ("", ""))[1],
    } for t in items]
    done = request.query.get("done", "")
    return await render(
        request, "conversations.html", filters=filters, rows=listed, total=total,
        pages=max(1, -(-total // PAGE_SIZE)), looked_for=looked_for, kinds=KINDS,
        views=VIEWS, done=done if done in DONE_KEYS else "")


# --------------------------------------------------------------------------- one


async def thread_for(request: web.Request, staff: Staff) -> Thread | web.Response:
    """The conversation of the URL if this person may see it: 404 when none, 403 else."""
    thread_id = int(request.match_info["id"])
    thread = await Thread.get_or_none(id=thread_id)
    if thread is None:
        return await render(request, "error.html", status=404, code=404,
                            message_key="error.404")
    scope = access.thread_scope(staff)
    if scope is not None and not await Thread.filter(scope, id=thread_id).exists():
        log.info("conversation %s refused to staff %s (%s): not theirs", thread_id, staff.id,
                 staff.role)
        return await forbidden(request)
    return thread


async def handlers() -> list[Staff]:
    """Who a conversation can be given to: active staff who answer owners."""
    roles = [r for r in StaffRole if access.PERMISSIONS[r] & {access.CONVERSATIONS}]
    return list(await Staff.filter(role__in=roles, active=True).order_by("name", "id"))


async def _canned(request: web.Request, staff: Staff, customer: Customer,
                  vehicle: Vehicle | None, form: dict[str, str]) -> list[tuple[Any, str]]:
    """The picker's replies rendered for this owner, in their language; ``?canned=name``
    (the picker without JavaScript) puts one in the answer box."""
    svc = console_of(request).services
    choices = [(r, canned.render(r, customer, vehicle, staff, svc.settings))
               for r in await canned.choices(customer.language, svc.clock.now())]
    picked = request.query.get("canned", "") if request.method == "GET" else ""
    if picked and not form.get("text"):
        reply = await canned.find(picked, customer.language)
        if reply is not None:
            form.update(text=canned.render(reply, customer, vehicle, staff, svc.settings),
                        _form="answer")
    return choices


async def show(request: web.Request, staff: Staff, thread: Thread, *, status: int = 200,
               error_key: str = "", error_args: dict[str, Any] | None = None,
               form: dict[str, str] | None = None) -> web.Response:
    """The conversation's page (after an action refused: with the message, and with what
    was typed kept in its box)."""
    svc = console_of(request).services
    now = svc.clock.now()
    await thread.fetch_related("customer", "vehicle", "assignee", "ticket")
    customer: Customer = thread.customer
    form = dict(form or {})
    choices = await _canned(request, staff, customer, thread.vehicle, form)
    scope = access.customer_scope(staff)
    own = scope is None or await Customer.filter(scope, id=customer.id).exists()
    today = now.astimezone(svc.settings.tz).date()
    rules = svc.rules.bookings
    done = request.query.get("done", "") if request.method == "GET" else ""
    return await render(
        request, "conversation.html", status=status, thread=thread, customer=customer,
        vehicle=thread.vehicle, chat=await load_chat(customer), this_thread=thread.id,
        texts=access.can(staff, access.COMPLAINT_TEXTS),
        phone=customer.phone if await access.phone_visible(staff, customer.id, thread)
        else access.mask_phone(customer.phone),
        may_open_file=own and access.can(staff, access.CUSTOMERS),
        reachable=customer.telegram_chat_id is not None and customer.unreachable_at is None,
        deadline=deadline_state(thread.first_answer_due, now)
        if thread.first_answered_at is None and thread.state == ThreadState.OPEN
        else "answered",
        people=await handlers(), outcomes=OUTCOMES[ThreadKind(thread.kind)],
        choices=choices, categories=tickets.CATEGORIES,
        days=bookings.bookable_days(today, rules),
        slots=[(s.code, bookings.slot_range(rules, s.code)) for s in rules.slots],
        done=done if done in DONE_KEYS else "",
        error_key=error_key, error_args=error_args or {}, form=form,
        answer_limit=ANSWER_LIMIT, text_limit=TEXT_LIMIT)


@requires(access.CONVERSATIONS)
async def conversation(request: web.Request) -> web.Response:
    staff = staff_of(request)
    thread = await thread_for(request, staff)
    if isinstance(thread, web.Response):
        return thread
    now = console_of(request).services.clock.now()
    await Thread.filter(id=thread.id).update(read_at=now)  # opened: read (not a change)
    thread.read_at = now
    return await show(request, staff, thread)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/inbox", inbox)
    router.add_get(r"/inbox/{id:\d{1,18}}", conversation)
