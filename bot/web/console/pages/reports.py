"""Reports: the KPI and complaint reports of a month, a week or any dates, with charts
drawn on the server as SVG, and CSV exports. What was asked, who may see it and the
figures are :mod:`.reports_query`; the exports :mod:`.reports_export`.

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
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from bot import recall
from bot.kpi import (
    DEALERSHIP,
    UNASSIGNED,
    Kpis,
    Period,
)
from bot.surveys import CSI_CATEGORIES
from bot.surveys.items import item_report
from bot.ticket_rules import CATEGORIES, LEVELS
from bot.ticket_stats import ComplaintStats
from bot.web.console import access, console_of, forbidden, now_local, render, requires, staff_of
from bot.web.console.pages.reports_query import (
    KINDS,
    Query,
    QueryError,
    advisor_names,
    complaints,
    conversations,
    customer_ids,
    kpi_report,
    parse_query,
    scope_of,
    trend_periods,
    viewer_for,
)
from bot.web.console.pages.reports_workshop import workshop_rows
from bot.web.console.render import Translator
from bot.web.console.svg import Datum, bar_chart, line_chart, plain, stacked_bar
from bot.workshop_kpi import previous_period
from db.models import ScoreRates

log = logging.getLogger(__name__)

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


async def error_page(request: web.Request, error: QueryError, params: Mapping[str, str]
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
        return await error_page(request, exc, request.query)
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
    ids = customer_ids(viewer.customers) if viewer.customers is not None else None
    before = scope_of(await kpi_report(request, previous_period(query.period),
                                       viewer.advisor is not None), viewer.advisor)
    workshop = await workshop_rows(request, query.period, viewer.advisor, shown, before, t)
    lost = await recall.reasons(report.start_utc, report.end_utc, ids)
    items = await item_report(report.start_utc, report.end_utc, lang=staff.language,
                              low_threshold=threshold, scripts_dir=settings.scripts_dir,
                              customer_ids=ids)
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
        lost=lost, recalled=recalled, workshop=workshop, items=items,
        categories=[(c, (stats.by_category or {}).get(c, 0)) for c in CATEGORIES],
        levels=[(str(lv), (stats.by_level or {}).get(str(lv), 0)) for lv in LEVELS],
        charts=charts(t, shown, trend, stats, threshold),
        period_to=query.period.end - timedelta(days=1),
        export_kpi=export_query(query, "kpi"), export_scores=export_query(query, "scores"),
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/reports", reports_page, name="reports")
