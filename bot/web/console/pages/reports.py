"""Reports: the KPI and complaint reports of a month, a week or any dates, with charts
drawn on the server as SVG, and CSV exports.

Who sees what (``access.REPORTS`` to open the page):

- ``REPORTS_ALL`` (supervisors, managers, marketing, admins): the dealership, any one
  advisor, or every advisor side by side; the KPI export holds the dealership and every
  advisor, the scores export every owner's current score.
- Everyone else with ``REPORTS`` (agents, advisors): only their own figures. The KPI
  figures are their advisor row of ``bot.kpi`` (scores and follow-ups attributed to them,
  docs/kpi.md); the complaint figures and the scores export cover their own customers
  (``access.customer_scope``). Asking for another advisor answers 403.

Complaint *texts* never appear: the complaint report is counts and times
(``bot.ticket_stats.complaint_stats``), and the scores export leaves out owners' comments.

The KPIs come from ``bot.kpi.compute`` only (its public API), once per period, kept in a
small cache: a period still settling (delight counts answers up to 14 days after it) for a
minute, an older one for an hour. The score trend calls it once per period shown.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup
from tortoise.expressions import Q, Subquery

from bot import recall
from bot.kpi import (
    DEALERSHIP,
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
from bot.surveys import CSI_CATEGORIES
from bot.threads_kpi import ConversationStats, ThreadFacts, conversation_stats
from bot.ticket_rules import CATEGORIES, LEVELS
from bot.ticket_stats import ComplaintStats, TicketFacts, complaint_stats
from bot.web.console import access, console_of, forbidden, now_local, render, requires, staff_of
from bot.web.console.pages.reports_workshop import workshop_rows
from bot.web.console.render import Translator, csv_cell
from bot.web.console.svg import Datum, bar_chart, line_chart, plain, stacked_bar
from bot.workshop_kpi import previous_period
from db.models import Customer, Score, ScoreRates, Staff, StaffRole, Thread, Ticket

log = logging.getLogger(__name__)

KINDS = ("month", "week", "range")
TREND_MIN, TREND_MAX, TREND_DEFAULT = 6, 12, 6
MAX_RANGE_DAYS = 366
SETTLE = timedelta(days=14)  # delight counts 9-10s answered up to 14 days after a period
CACHE_STATE = "reports.kpi"
CACHE_FRESH_SECONDS = 60.0  # a period still settling
CACHE_SETTLED_SECONDS = 3600.0  # a period whose figures no longer change
CACHE_ENTRIES = 256
EXPORT_BATCH = 2000
BOM = "\ufeff"
CHART_WIDTH = 420  # viewBox units, about the drawn width in the two-column grid: legible text
CSI_RATES = (ScoreRates.DELIVERY, ScoreRates.VISIT)

# The KPI table, in docs/kpi.md's order: (key, how the value is shown). Every key has a
# label ``reports.kpi.<key>`` and a formula ``reports.formula.<key>`` in reports.toml.
# "group" starts a section; "dist" and "cats" have sub-rows (a score value, a category).
KPI_ROWS: tuple[tuple[str, str], ...] = (
    ("followups", "group"),
    ("followups_due", "int"),
    ("followups_sent", "int"),
    ("followups_reached", "int"),
    ("followups_reached_telegram", "int"),
    ("followups_reached_phone", "int"),
    ("followup_rate", "pct"),
    ("responses", "int"),
    ("responses_phone", "int"),
    ("response_rate", "pct"),
    ("unreachable_owners", "int"),
    ("scores_group", "group"),
    ("scores", "int"),
    ("average", "avg"),
    ("distribution", "dist"),
    ("very_satisfied", "int"),
    ("share_9_10", "pct"),
    ("low_scores", "int"),
    ("categories", "cats"),
    ("uncategorised_low", "int"),
    ("strongest", "list"),
    ("weakest", "list"),
    ("handling_scores", "int"),
    ("handling_average", "avg"),
    ("owners_group", "group"),
    ("owners_served", "int"),
    ("delighted_owners", "int"),
    ("delight_rate", "pct"),
    ("returning_owners", "int"),
    ("return_rate", "pct"),
    ("tickets_opened", "int"),
    ("complaint_rate", "pct"),
)


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


def _customer_ids(scope: Q) -> Subquery:
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
        rows = rows.filter(customer_id__in=_customer_ids(viewer.customers))
    facts: list[dict[str, Any]] = await rows.values(
        "category", "level", "created_at", "first_answered_at", "resolved_at", "breaches",
        "reopen_count", "state")
    return complaint_stats([TicketFacts(**row) for row in facts])


async def conversations(viewer: Viewer, start: datetime, end: datetime,
                        now: datetime) -> ConversationStats:
    """The figures of conversations opened in [start, end) that the viewer may see."""
    rows = Thread.filter(created_at__gte=start, created_at__lt=end)
    if viewer.customers is not None:
        rows = rows.filter(customer_id__in=_customer_ids(viewer.customers))
    facts: list[dict[str, Any]] = await rows.values(
        "kind", "created_at", "first_answer_due", "first_answered_at", "outcome", "premium")
    return conversation_stats([ThreadFacts(**row) for row in facts], now)


# --------------------------------------------------------------------------- presenting


def scope_name(t: Translator, scope: str) -> str:
    return {DEALERSHIP: t("reports.dealership"), UNASSIGNED: t("reports.no_advisor")} \
        .get(scope, scope)


def duration(t: Translator, value: timedelta | None) -> str:
    if value is None:
        return "–"
    minutes = int(value.total_seconds() // 60)
    return t("reports.duration", h=minutes // 60, m=f"{minutes % 60:02d}")


def _avg(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def kpi_value(t: Translator, k: Kpis, key: str, shape: str) -> str:
    value = getattr(k, key)
    if shape == "pct":
        return _pct(value)
    if shape == "avg":
        return _avg(value)
    if shape == "list":
        return t("reports.list_sep").join(t(f"reports.category.{c}") for c in value) or "–"
    return f"{int(value):,}"


@dataclass
class Row:
    key: str
    label: str
    formula: str
    values: list[str]
    kind: str  # group, sub or plain


def kpi_rows(t: Translator, scopes: list[Kpis], threshold: int) -> list[Row]:
    """The KPI table: one row per figure of docs/kpi.md (sub-rows for the distribution and
    the categories), one value per scope, each with its formula for the tooltip."""
    rows: list[Row] = []
    for key, shape in KPI_ROWS:
        label = t(f"reports.kpi.{key}")
        formula = t(f"reports.formula.{key}", threshold=threshold) \
            if shape != "group" else ""
        if shape == "group":
            rows.append(Row(key, label, "", [], "group"))
        elif shape == "dist":
            rows.append(Row(key, label, formula, ["" for _ in scopes], "plain"))
            for n in range(1, 11):
                rows.append(Row(f"score_{n}", t("reports.score_n", n=n), formula,
                                [f"{k.distribution[n]:,}" for k in scopes], "sub"))
        elif shape == "cats":
            rows.append(Row(key, label, formula, ["" for _ in scopes], "plain"))
            for c in CSI_CATEGORIES:
                rows.append(Row(f"category_{c}", t(f"reports.category.{c}"), formula,
                                [f"{k.categories[c]:,}" for k in scopes], "sub"))
        else:
            rows.append(Row(key, label, formula, [kpi_value(t, k, key, shape) for k in scopes],
                            "plain"))
    return rows


def charts(t: Translator, k: Kpis, trend: list[tuple[Period, Kpis]], stats: ComplaintStats,
           threshold: int) -> dict[str, Markup]:
    """The four charts: score trend, score distribution, low scores by CSI category,
    complaint deadline compliance."""
    points = [Datum(p.label, s.average, t("reports.chart.trend_point", period=p.label,
                                          average=_avg(s.average), n=s.scores))
              for p, s in trend]
    bars = [Datum(str(n), k.distribution[n],
                  t("reports.chart.distribution_bar", n=n, count=k.distribution[n]),
                  color="#c53030" if n <= threshold else "#b7791f" if n < 9 else "#1f8a4c")
            for n in range(1, 11)]
    cats = [Datum(t(f"reports.category.{c}"), k.categories[c]) for c in CSI_CATEGORIES]
    cats.append(Datum(t("reports.kpi.uncategorised_low"), k.uncategorised_low, color="#5d6b7a"))
    on_time = stats.total - stats.tickets_breached
    deadlines = [
        Datum(t("reports.deadline.on_time"), on_time,
              t("reports.chart.deadline_segment", label=t("reports.deadline.on_time"),
                count=on_time, total=stats.total), color="#1f8a4c"),
        Datum(t("reports.deadline.breached"), stats.tickets_breached,
              t("reports.chart.deadline_segment", label=t("reports.deadline.breached"),
                count=stats.tickets_breached, total=stats.total), color="#c53030"),
    ]
    return {
        "trend": line_chart(points, title=t("reports.chart.trend"), y_min=0, y_max=10,
                            width=CHART_WIDTH, height=220,
                            fmt=lambda v: f"{v:.2f}", tick_fmt=plain,
                            empty_text=t("reports.chart.empty"),
                            chart_id="chart-trend"),
        "distribution": bar_chart(bars, title=t("reports.chart.distribution"),
                                  width=CHART_WIDTH, height=220,
                                  empty_text=t("reports.chart.empty"),
                                  chart_id="chart-distribution"),
        "categories": bar_chart(cats, title=t("reports.chart.categories"), horizontal=True,
                                width=CHART_WIDTH,
                                color="#c53030", empty_text=t("reports.chart.no_low"),
                                chart_id="chart-categories"),
        "deadlines": stacked_bar(deadlines, title=t("reports.chart.deadlines"),
                                 width=CHART_WIDTH,
                                 empty_text=t("reports.chart.no_tickets"),
                                 chart_id="chart-deadlines"),
    }


def export_query(query: Query, what: str) -> str:
    """The query string of an export of what the page shows."""
    keep = {k: v for k, v in query.form.items()
            if v and k in ("kind", "month", "week", "from", "to", "advisor")}
    return urlencode({**keep, "what": what})


# --------------------------------------------------------------------------- views


async def _error_page(request: web.Request, error: QueryError, params: Mapping[str, str]
                      ) -> web.Response:
    staff = staff_of(request)
    t = Translator(console_of(request).strings, staff.language)
    form = {k: str(params.get(k, "")) for k in
            ("kind", "month", "week", "from", "to", "advisor", "by", "trend")}
    form["kind"] = form["kind"] if form["kind"] in KINDS else "month"
    return await render(request, "reports.html", status=400,
                        error=t(error.key, **error.fmt), form=form, advisors=[],
                        show_all=access.can(staff, access.REPORTS_ALL), kinds=KINDS)


@requires(access.REPORTS)
async def reports_page(request: web.Request) -> web.Response:
    staff = staff_of(request)
    console = console_of(request)
    settings = console.services.settings
    t = Translator(console.strings, staff.language)
    try:
        query = parse_query(request.query, now_local(request).date())
    except QueryError as exc:
        return await _error_page(request, exc, request.query)
    viewer = await viewer_for(staff, query)
    if viewer is None:
        return await forbidden(request)
    threshold = settings.survey_low_threshold
    every = viewer.all and query.by_advisor and viewer.advisor is None
    report = await kpi_report(request, query.period, every or viewer.advisor is not None)
    shown = scope_of(report, viewer.advisor)
    columns = [report.dealership, *report.advisors] if every else [shown]
    periods = trend_periods(query)
    trend = list(zip(periods, [scope_of(r, viewer.advisor) for r in await asyncio.gather(
        *(kpi_report(request, p, viewer.advisor is not None) for p in periods))], strict=False))
    stats = await complaints(viewer, report.start_utc, report.end_utc)
    talks = await conversations(viewer, report.start_utc, report.end_utc,
                                console.services.clock.now())
    advisors = await advisor_names(report) if viewer.all else []
    ids = _customer_ids(viewer.customers) if viewer.customers is not None else None
    before = scope_of(await kpi_report(request, previous_period(query.period),
                                       viewer.advisor is not None), viewer.advisor)
    workshop = await workshop_rows(request, query.period, viewer.advisor, shown, before, t)
    lost = await recall.reasons(report.start_utc, report.end_utc, ids)
    recalled = await recall.recalled(report.start_utc, report.end_utc, ids)
    return await render(
        request, "reports.html", error="", form=query.form, query=query, viewer=viewer,
        kinds=KINDS, show_all=viewer.all, advisors=advisors,
        scope_label=(t("reports.dealership") if viewer.advisor is None else viewer.advisor),
        headers=[scope_name(t, k.scope) for k in columns],
        rows=kpi_rows(t, columns, threshold), shown=shown, stats=stats,
        first_answer=duration(t, stats.median_first_answer),
        resolution=duration(t, stats.median_resolution),
        talks=talks, talk_first_answer=duration(t, talks.median_first_answer),
        lost=lost, recalled=recalled, workshop=workshop,
        categories=[(c, (stats.by_category or {}).get(c, 0)) for c in CATEGORIES],
        levels=[(str(lv), (stats.by_level or {}).get(str(lv), 0)) for lv in LEVELS],
        charts=charts(t, shown, trend, stats, threshold),
        period_to=query.period.end - timedelta(days=1),
        export_kpi=export_query(query, "kpi"), export_scores=export_query(query, "scores"),
    )


def mask_phone(phone: str) -> str:
    """+8613800138000 -> +86138****8000: enough to recognise, not to call."""
    digits = [i for i, c in enumerate(phone) if c.isdigit()]
    if len(digits) < 8:
        return "*" * len(phone)
    hidden = set(digits[-8:-4])
    return "".join("*" if i in hidden else c for i, c in enumerate(phone))


def _filename(kind: str, period: Period) -> str:
    label = re.sub(r"[^0-9A-Za-z-]+", "_", period.label.replace("..", "_to_"))
    return f"carebot-{kind}-{label}.csv"


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([csv_cell(v) for v in values])
    return out.getvalue()


def kpi_csv_rows(t: Translator, period: Period, scopes: list[Kpis]) -> list[list[Any]]:
    """The KPI export: a header, then one row per scope (the dealership, then advisors)."""
    header: list[Any] = [t("reports.csv.period"), t("reports.csv.from"), t("reports.csv.to"),
                         t("reports.csv.scope")]
    for key, shape in KPI_ROWS:
        if shape == "group":
            continue
        if shape == "dist":
            header += [t("reports.score_n", n=n) for n in range(1, 11)]
        elif shape == "cats":
            header += [f"{t('reports.kpi.low_scores')}: {t(f'reports.category.{c}')}"
                       for c in CSI_CATEGORIES]
        else:
            header.append(t(f"reports.kpi.{key}"))
    rows = [header]
    last = period.end - timedelta(days=1)
    for k in scopes:
        row: list[Any] = [period.label, period.start.isoformat(), last.isoformat(),
                          scope_name(t, k.scope)]
        for key, shape in KPI_ROWS:
            if shape == "group":
                continue
            value = getattr(k, key)
            if shape == "dist":
                row += [k.distribution[n] for n in range(1, 11)]
            elif shape == "cats":
                row += [k.categories[c] for c in CSI_CATEGORIES]
            elif shape == "list":
                row.append(" ".join(value))
            elif shape in ("pct", "avg"):
                row.append("" if value is None else round(value, 4))
            else:
                row.append(value)
        rows.append(row)
    return rows


async def score_rows(viewer: Viewer, start: datetime, end: datetime
                     ) -> AsyncIterator[list[dict[str, Any]]]:
    """The current CSI scores first answered in [start, end) of the customers the viewer may
    see, oldest first, in batches (one query each, joined: no query per row).

    The query pages along the ``first_answered_at`` index (keyset, no OFFSET, no sort) and
    leaves out replaced answers and complaint-handling ratings here, in Python: filtering
    them in SQL leads SQLite to the KPI index that starts with ``rates``, which reads every
    score ever given and sorts them, once per batch."""
    rows = Score.filter(first_answered_at__gte=start, first_answered_at__lt=end)
    if viewer.customers is not None:
        rows = rows.filter(customer_id__in=_customer_ids(viewer.customers))
    last: tuple[datetime, int] | None = None
    while True:
        page = rows
        if last is not None:
            page = rows.filter(Q(first_answered_at__gt=last[0])
                               | Q(first_answered_at=last[0], id__gt=last[1]))
        batch: list[dict[str, Any]] = await page.order_by("first_answered_at", "id") \
            .limit(EXPORT_BATCH).values(
                "id", "first_answered_at", "superseded_at", "score", "category", "rates",
                "advisor", "customer__name", "customer__phone", "vehicle__plate",
                "vehicle__model", "vehicle__vin")
        if not batch:
            return
        current = [r for r in batch if r["superseded_at"] is None and r["rates"] in CSI_RATES]
        if current:
            yield current
        if len(batch) < EXPORT_BATCH:
            return
        last = (batch[-1]["first_answered_at"], int(batch[-1]["id"]))


@requires(access.REPORTS)
async def export_csv(request: web.Request) -> web.StreamResponse:
    staff = staff_of(request)
    console = console_of(request)
    settings = console.services.settings
    t = Translator(console.strings, staff.language)
    what = request.query.get("what", "kpi")
    try:
        if what not in ("kpi", "scores"):
            raise QueryError("reports.error.what", value=what)
        query = parse_query(request.query, now_local(request).date())
    except QueryError as exc:
        return await _error_page(request, exc, request.query)
    viewer = await viewer_for(staff, query)
    if viewer is None:
        return await forbidden(request)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{_filename(what, query.period)}"',
        "Cache-Control": "no-store",
    })
    start, end = query.period.utc_bounds(settings.tz)
    if what == "kpi":
        report = await kpi_report(request, query.period, by_advisor=True)
        scopes = [report.dealership, *report.advisors] if viewer.all and viewer.advisor is None \
            else [scope_of(report, viewer.advisor)]
        await response.prepare(request)
        lines = kpi_csv_rows(t, query.period, scopes)
        await response.write((BOM + "".join(_csv_line(r) for r in lines)).encode())
        await response.write_eof()
        return response
    await response.prepare(request)
    header = [t("reports.csv.answered_at"), t("reports.csv.owner"), t("reports.csv.phone"),
              t("reports.csv.plate"), t("reports.csv.model"), t("reports.csv.vin"),
              t("reports.csv.rates"), t("reports.csv.score"), t("reports.csv.category"),
              t("reports.csv.advisor")]
    await response.write((BOM + _csv_line(header)).encode())
    count = 0
    async for batch in score_rows(viewer, start, end):
        chunk = []
        for r in batch:
            phone = str(r["customer__phone"] or "")
            chunk.append(_csv_line([
                r["first_answered_at"].astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
                r["customer__name"], phone if viewer.full_phone else mask_phone(phone),
                r["vehicle__plate"] or "", r["vehicle__model"] or "", r["vehicle__vin"] or "",
                t(f"reports.rates.{r['rates']}"), r["score"],
                t(f"reports.category.{r['category']}") if r["category"] else "",
                r["advisor"] or t("reports.no_advisor"),
            ]))
        count += len(batch)
        await response.write("".join(chunk).encode())
    await response.write_eof()
    log.info("%s (%s) exported %d scores of %s%s", staff.login, staff.role, count,
             query.period.label, "" if viewer.customers is None else " (own customers)")
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/reports", reports_page, name="reports")
    router.add_get("/reports/export.csv", export_csv, name="reports_export")
