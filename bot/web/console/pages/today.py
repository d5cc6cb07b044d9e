"""Today, the home page: the outbox today, open tickets by deadline, this month's KPIs,
and (for those who deal with it) what needs a person: parked updates, failed sends.

Counts are indexed aggregates; the KPI headline is the month's report (``bot.kpi``),
kept for a minute so a busy office reloading the page does not recompute it each time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from tortoise.expressions import Q, Subquery

from bot.kpi import KpiReport, Kpis, compute, month_period
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.pages.inbox import needs_a_person
from db.models import (
    Customer,
    Staff,
    Thread,
    ThreadState,
    Ticket,
    TicketState,
    Touchpoint,
    TouchpointStatus,
)

DUE_SOON = timedelta(minutes=30)
KPI_CACHE_SECONDS = 60.0
SETTLED_CACHE_SECONDS = 3600.0
OPEN_STATES = (TicketState.OPEN, TicketState.CLAIMED, TicketState.ANSWERED,
               TicketState.REOPENED)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where the local ``day`` starts and ends."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)


def deadline_state(due_at: datetime | None, now: datetime) -> str:
    """on_time, due_soon (within 30 minutes) or breached; "waiting" when no clock runs."""
    if due_at is None:
        return "waiting"
    if due_at <= now:
        return "breached"
    return "due_soon" if due_at - now <= DUE_SOON else "on_time"


@dataclass
class Outbox:
    due: int
    sent: int
    failed: int
    unreachable: int
    waiting: int  # due by now and not yet sent (the queue)


# Every touchpoint expires within this many days of its due time (the longest window the
# settings allow is the first-service reminder's, at most 180 days after delivery), so
# whatever happened today was due after ``start - HORIZON``: each count is a range of the
# (status, due_at) index, not a scan of the whole history of the outbox.
HORIZON = timedelta(days=190)
ALL_STATUSES = tuple(TouchpointStatus)
OUTBOX_CACHE_SECONDS = 30.0


async def outbox_today(start: datetime, end: datetime, now: datetime,
                       scope: Q | None) -> Outbox:
    rows = Touchpoint.all()
    if scope is not None:
        rows = rows.filter(customer_id__in=Subquery(Customer.filter(scope).values("id")))
    recent = rows.filter(due_at__gte=start - HORIZON, due_at__lt=end)
    return Outbox(
        due=await rows.filter(status__in=ALL_STATUSES, due_at__gte=start,
                              due_at__lt=end).count(),
        sent=await recent.filter(status=TouchpointStatus.SENT, sent_at__gte=start,
                                 sent_at__lt=end).count(),
        failed=await recent.filter(status=TouchpointStatus.FAILED, updated_at__gte=start,
                                   updated_at__lt=end).count(),
        unreachable=await recent.filter(status=TouchpointStatus.UNREACHABLE,
                                        updated_at__gte=start, updated_at__lt=end).count(),
        waiting=await rows.filter(status__in=(TouchpointStatus.PENDING,
                                              TouchpointStatus.SENDING),
                                  due_at__gte=now - HORIZON, due_at__lte=now).count(),
    )


async def open_tickets(now: datetime, scope: Q | None, limit: int = 10
                       ) -> tuple[dict[str, int], list[Ticket]]:
    rows = Ticket.filter(state__in=OPEN_STATES)
    if scope is not None:
        rows = rows.filter(scope)
    soon = now + DUE_SOON
    counts = {
        "breached": await rows.filter(due_at__lte=now).count(),
        "due_soon": await rows.filter(due_at__gt=now, due_at__lte=soon).count(),
        "on_time": await rows.filter(Q(due_at__gt=soon) | Q(due_at=None)).count(),
    }
    urgent = await rows.filter(due_at__not_isnull=True).order_by("due_at") \
        .limit(limit).prefetch_related("customer", "handler")
    return counts, urgent


HEADLINE = ("average", "followup_rate", "response_rate", "share_9_10", "complaint_rate")


async def month_kpis(request: web.Request, staff: Staff, month: date, this_month: date
                     ) -> Kpis | None:
    """The month's KPIs for the dealership, or for the advisor's own customers.

    One report per (month, with or without advisors) is shared by everyone: a minute for
    the running month, an hour for a settled one."""
    console = console_of(request)
    settings = console.services.settings
    scoped = not access.can(staff, access.REPORTS_ALL)
    key = (f"{month:%Y-%m}", scoped)
    cache: dict[tuple[str, bool], tuple[float, KpiReport]] = \
        console.state.setdefault("today.kpis", {})
    ttl = KPI_CACHE_SECONDS if month >= this_month else SETTLED_CACHE_SECONDS
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < ttl:
        report = hit[1]
    else:
        report = await compute(month_period(f"{month:%Y-%m}"), settings.tz,
                               by_advisor=scoped, low_threshold=settings.survey_low_threshold)
        cache[key] = (time.monotonic(), report)
    if scoped:
        return next((k for k in report.advisors if k.scope == staff.name), None)
    return report.dealership


async def open_conversations(now: datetime, scope: Q | None) -> dict[str, int]:
    """The open conversations this person may see: waiting for a first answer (and how
    many of those are past their deadline), and all open."""
    rows = Thread.filter(state=ThreadState.OPEN)
    if scope is not None:
        rows = rows.filter(scope)
    waiting = rows.filter(first_answered_at__isnull=True)
    return {"open": await rows.count(), "waiting": await waiting.count(),
            "breached": await waiting.filter(first_answer_due__lte=now).count()}


@requires(access.TODAY)
async def today(request: web.Request) -> web.Response:
    console = console_of(request)
    staff = staff_of(request)
    tz = console.services.settings.tz
    now = console.services.clock.now()
    day = now.astimezone(tz).date()
    start, end = day_bounds(day, tz)
    scoped = not access.can(staff, access.CUSTOMERS_ALL) \
        and not access.can(staff, access.CAMPAIGNS)
    cache: dict[str, tuple[float, Outbox]] = console.state.setdefault("today.outbox", {})
    outbox_key = f"{day}:{staff.id if scoped else ''}"
    hit = cache.get(outbox_key)
    if hit is not None and time.monotonic() - hit[0] < OUTBOX_CACHE_SECONDS:
        outbox = hit[1]
    else:
        outbox = await outbox_today(start, end, now,
                                    access.customer_scope(staff) if scoped else None)
        cache[outbox_key] = (time.monotonic(), outbox)
    tickets: dict[str, Any] = {}
    urgent: list[Ticket] = []
    if access.can(staff, access.TICKETS):
        tickets, urgent = await open_tickets(now, access.ticket_scope(staff))
    this_month = day.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    current = previous = None
    if access.can(staff, access.REPORTS):
        current = await month_kpis(request, staff, this_month, this_month)
        previous = await month_kpis(request, staff, last_month, this_month)
    headline = [(name, getattr(current, name, None), getattr(previous, name, None))
                for name in HEADLINE]
    talks = await open_conversations(now, access.thread_scope(staff)) \
        if access.can(staff, access.CONVERSATIONS) else None
    needs = await needs_a_person() if access.can(staff, access.INBOX) else None
    return await render(request, "today.html", day=day, outbox=outbox, tickets=tickets,
                        urgent=urgent, deadline_state=deadline_state, headline=headline,
                        this_month=this_month, last_month=last_month, needs=needs,
                        talks=talks)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", today, name="today")
