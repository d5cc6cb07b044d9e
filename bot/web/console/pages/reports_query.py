"""What a report asks for (the period and options staff typed), who may see it (the
dealership, one advisor, their own customers), and its figures (``bot.kpi.compute`` cached,
the complaint and conversation stats in scope)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from tortoise.expressions import Q, Subquery

from bot.kpi import (
    UNASSIGNED,
    KpiReport,
    Kpis,
    Period,
    PeriodError,
    compute,
    month_period,
    range_period,
    week_period,
)
from bot.threads_kpi import ConversationStats, ThreadFacts, conversation_stats
from bot.ticket_stats import ComplaintStats, TicketFacts, complaint_stats
from bot.web.console import access, console_of
from db.models import Customer, Staff, StaffRole, Thread, Ticket

log = logging.getLogger(__name__)

KINDS = ("month", "week", "range")
TREND_MIN, TREND_MAX, TREND_DEFAULT = 6, 12, 6
MAX_RANGE_DAYS = 366
SETTLE = timedelta(days=14)  # delight counts 9-10s answered up to 14 days after a period
CACHE_STATE = "reports.kpi"
CACHE_FRESH_SECONDS = 60.0  # a period still settling
CACHE_SETTLED_SECONDS = 3600.0  # a period whose figures no longer change
CACHE_ENTRIES = 256


class QueryError(Exception):
    """A period or option staff typed is not understood; ``key`` names the message."""

    def __init__(self, key: str, **fmt: Any) -> None:
        super().__init__(key)
        self.key = key
        self.fmt = fmt


@dataclass
class Query:
    """What the page (or an export) was asked for."""

    kind: str
    period: Period
    advisor: str | None  # None: the dealership
    by_advisor: bool  # every advisor side by side (REPORTS_ALL)
    trend: int
    form: dict[str, str] = field(default_factory=dict)  # to fill the form in again


# --------------------------------------------------------------------------- the query


def _current_week(today: date) -> str:
    year, week, _ = today.isocalendar()
    return f"{year:04d}-W{week:02d}"


def parse_query(params: Mapping[str, str], today: date) -> Query:
    """The period and options of ``params`` (the query string). Without a period: the
    current local month. Raises ``QueryError`` with a message key staff understand."""
    get = {k: str(params.get(k, "")).strip() for k in
           ("kind", "month", "week", "from", "to", "advisor", "by", "trend")}
    kind = get["kind"] or ("range" if get["from"] or get["to"] else
                           "week" if get["week"] and not get["month"] else "month")
    if kind not in KINDS:
        raise QueryError("reports.error.kind", value=get["kind"])
    form = dict(get, kind=kind)
    if kind == "month":
        value = get["month"] or f"{today:%Y-%m}"
        try:
            period = month_period(value)
        except PeriodError:
            raise QueryError("reports.error.month", value=value) from None
        form["month"] = period.label
    elif kind == "week":
        value = get["week"] or _current_week(today)
        try:
            period = week_period(value)
        except PeriodError:
            raise QueryError("reports.error.week", value=value) from None
        form["week"] = period.label
    else:
        if not get["from"] or not get["to"]:
            raise QueryError("reports.error.range_both")
        for value in (get["from"], get["to"]):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise QueryError("reports.error.date", value=value) from None
        try:
            period = range_period(get["from"], get["to"])
        except PeriodError:
            raise QueryError("reports.error.range_order", first=get["from"],
                             last=get["to"]) from None
        if (period.end - period.start).days > MAX_RANGE_DAYS:
            raise QueryError("reports.error.range_long", days=MAX_RANGE_DAYS)
    trend = TREND_DEFAULT
    if get["trend"]:
        if not get["trend"].isdigit() or not TREND_MIN <= int(get["trend"]) <= TREND_MAX:
            raise QueryError("reports.error.trend", low=TREND_MIN, high=TREND_MAX)
        trend = int(get["trend"])
    form["trend"] = str(trend)
    if get["by"] not in ("", "dealership", "advisor"):
        raise QueryError("reports.error.by", value=get["by"])
    return Query(kind, period, get["advisor"] or None, get["by"] == "advisor", trend, form)


def trend_periods(query: Query) -> list[Period]:
    """The ``query.trend`` weeks (for a week) or months (otherwise) up to the one shown,
    oldest first; for dates, the months up to the month of the last day."""
    periods: list[Period] = []
    if query.kind == "week":
        start = query.period.start
        for back in range(query.trend - 1, -1, -1):
            year, week, _ = (start - timedelta(weeks=back)).isocalendar()
            periods.append(week_period(f"{year:04d}-W{week:02d}"))
        return periods
    last = query.period.end - timedelta(days=1)
    index = last.year * 12 + last.month - 1
    for back in range(query.trend - 1, -1, -1):
        year, month0 = divmod(index - back, 12)
        periods.append(month_period(f"{year:04d}-{month0 + 1:02d}"))
    return periods


# --------------------------------------------------------------------------- who sees what


@dataclass
class Viewer:
    """What one request may see: every scope, or one advisor's."""

    staff: Staff
    all: bool  # REPORTS_ALL
    advisor: str | None  # the advisor row shown (None: the dealership)
    customers: Q | None  # the customers behind complaints and the scores export (None: all)
    full_phone: bool  # may see owners' phone numbers (they may open these customers' files)


async def _customers_of(name: str) -> Q:
    """The customers of the advisor called ``name``: the same rule as their own view
    (``access.customer_scope``) when they are a scoped staff member, else the owners whose
    advisor on file they are."""
    for person in await Staff.filter(name=name, active=True):
        scope = access.customer_scope(person)
        if scope is not None and not access.can(person, access.REPORTS_ALL):
            return scope
    return Q(advisor=name)


async def viewer_for(staff: Staff, query: Query) -> Viewer | None:
    """The viewer for ``staff`` asking ``query``; None when it asks for more than it may."""
    full_phone = access.can(staff, access.CUSTOMERS)
    if access.can(staff, access.REPORTS_ALL):
        if query.advisor is None:
            return Viewer(staff, True, None, None, full_phone)
        return Viewer(staff, True, query.advisor, await _customers_of(query.advisor),
                      full_phone)
    if query.advisor is not None and query.advisor != staff.name:
        return None
    query.by_advisor = False
    scope = access.customer_scope(staff)
    return Viewer(staff, False, staff.name, scope if scope is not None
                  else Q(advisor=staff.name), full_phone)


def customer_ids(scope: Q) -> Subquery:
    return Subquery(Customer.filter(scope).values("id"))


# --------------------------------------------------------------------------- figures


async def kpi_report(request: web.Request, period: Period, by_advisor: bool) -> KpiReport:
    """``bot.kpi.compute`` for ``period``, cached; a report computed per advisor also serves
    a request for the dealership alone. Requests arriving while a period is being computed
    wait for that one computation instead of starting their own."""
    console = console_of(request)
    settings = console.services.settings
    cache: dict[tuple[str, bool, int], tuple[float, asyncio.Future[KpiReport]]] = \
        console.state.setdefault(CACHE_STATE, {})
    clock_now = console.services.clock.now()
    now = clock_now.timestamp()
    settled = period.utc_bounds(settings.tz)[1] + SETTLE < clock_now
    keep = CACHE_SETTLED_SECONDS if settled else CACHE_FRESH_SECONDS
    threshold = settings.survey_low_threshold
    for want in ((True,) if by_advisor else (False, True)):
        hit = cache.get((period.label, want, threshold))
        if hit is not None and now - hit[0] < keep:
            return await asyncio.shield(hit[1])
    if len(cache) >= CACHE_ENTRIES:
        done = sorted((k for k, v in cache.items() if v[1].done()), key=lambda k: cache[k][0])
        for stale in done[:CACHE_ENTRIES // 4]:
            del cache[stale]
    key = (period.label, by_advisor, threshold)
    task = asyncio.ensure_future(compute(period, settings.tz, by_advisor=by_advisor,
                                         low_threshold=threshold))
    cache[key] = (now, task)
    try:
        return await asyncio.shield(task)  # a closed browser tab does not cancel it for others
    except Exception:
        if key in cache and cache[key][1] is task:
            del cache[key]
        raise


async def advisor_names(report: KpiReport) -> list[str]:
    """Names to offer in the advisor field: agents' and advisors' accounts, and the
    advisors of the report when it was computed per advisor (any other name may be typed)."""
    accounts = await Staff.filter(active=True, role__in=(StaffRole.AGENT, StaffRole.ADVISOR)) \
        .values_list("name", flat=True)
    names = {str(n) for n in accounts}
    names.update(k.scope for k in report.advisors if k.scope != UNASSIGNED)
    return sorted(names)


def scope_of(report: KpiReport, advisor: str | None) -> Kpis:
    """The dealership's figures, or one advisor's row (empty when they have none)."""
    if advisor is None:
        return report.dealership
    return next((k for k in report.advisors if k.scope == advisor), Kpis(advisor))


async def complaints(viewer: Viewer, start: datetime, end: datetime) -> ComplaintStats:
    """The complaint statistics of tickets opened in [start, end) that the viewer may see:
    counts and times only (``bot.ticket_stats.complaint_stats``), never what was written."""
    rows = Ticket.filter(created_at__gte=start, created_at__lt=end)
    if viewer.customers is not None:
        rows = rows.filter(customer_id__in=customer_ids(viewer.customers))
    facts: list[dict[str, Any]] = await rows.values(
        "category", "level", "created_at", "first_answered_at", "resolved_at", "breaches",
        "reopen_count", "state")
    return complaint_stats([TicketFacts(**row) for row in facts])


async def conversations(viewer: Viewer, start: datetime, end: datetime,
                        now: datetime) -> ConversationStats:
    """The figures of conversations opened in [start, end) that the viewer may see."""
    rows = Thread.filter(created_at__gte=start, created_at__lt=end)
    if viewer.customers is not None:
        rows = rows.filter(customer_id__in=customer_ids(viewer.customers))
    facts: list[dict[str, Any]] = await rows.values(
        "kind", "created_at", "first_answer_due", "first_answered_at", "outcome", "premium")
    return conversation_stats([ThreadFacts(**row) for row in facts], now)
