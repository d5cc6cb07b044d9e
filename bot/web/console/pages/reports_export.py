"""The reports' CSV exports: the KPI table as shown, and every owner's current score (the
phone masked unless the viewer may see it in full; never a comment)."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from tortoise.expressions import Q

from bot.kpi import (
    Kpis,
    Period,
)
from bot.surveys import CSI_CATEGORIES
from bot.web.console import access, console_of, forbidden, now_local, requires, staff_of
from bot.web.console.pages.reports import CSI_RATES, KPI_ROWS, error_page, scope_name
from bot.web.console.pages.reports_query import (
    QueryError,
    Viewer,
    customer_ids,
    kpi_report,
    parse_query,
    scope_of,
    viewer_for,
)
from bot.web.console.render import Translator, csv_cell
from db.models import Score

log = logging.getLogger(__name__)

EXPORT_BATCH = 2000
BOM = "\ufeff"


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
        rows = rows.filter(customer_id__in=customer_ids(viewer.customers))
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
        return await error_page(request, exc, request.query)
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
    router.add_get("/reports/export.csv", export_csv, name="reports_export")
