"""``carebot report``: the satisfaction and complaint KPIs of a period, for people or tools.

    carebot report --month 2026-11
    carebot report --week 2026-W45 --by advisor
    carebot report --from 2026-11-01 --to 2026-11-15 --format csv
    carebot report complaints --month 2026-11   (the complaints report, bot.cli.tickets)

Formulas: docs/kpi.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import timedelta
from typing import Any

from bot.cli.database import database
from bot.cli.report_items import questions_report
from bot.cli.say import fail, ljust, rjust, t, width, words
from bot.cli.tickets import complaints_report
from bot.clock import SystemClock
from bot.config import Settings
from bot.kpi import (
    DEALERSHIP,
    UNASSIGNED,
    KpiReport,
    Kpis,
    Period,
    PeriodError,
    month_period,
    range_period,
    week_period,
)
from bot.kpi_review import Review, review, workshop_rules
from bot.review_text import review_csv, review_text


def add_commands(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="satisfaction, complaint and workshop KPIs (with the dealership's "
                       "targets) for a month, a week or dates",
        description="KPIs of a period in the dealership's time zone (formulas: docs/kpi.md). "
                    "Without a period: the current month.",
    )
    report.add_argument("what", nargs="?", choices=["kpi", "complaints", "questions"],
                        default="kpi",
                        help="kpi (default); complaints: the complaint ticket statistics "
                             "(as `carebot complaints report`); questions: each "
                             "questionnaire question's answers, sales and service apart")
    when = report.add_mutually_exclusive_group()
    when.add_argument("--month", metavar="YYYY-MM", help="a calendar month, e.g. 2026-11")
    when.add_argument("--week", metavar="YYYY-Www", help="an ISO week, e.g. 2026-W45")
    report.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                        help="first day (with --to)")
    report.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD",
                        help="last day, included (with --from)")
    report.add_argument("--by", choices=["dealership", "advisor"], default="dealership",
                        help="also one column per advisor")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument("--lang", choices=["zh_CN", "en"], default="zh_CN",
                        help="the language of the question texts (questions report)")
    report.set_defaults(run=run_report)


def period_from_args(args: argparse.Namespace, settings: Settings) -> Period:
    """The period the arguments name; the current local month when none is given."""
    ranged = args.date_from is not None or args.date_to is not None
    if ranged and (args.month or args.week):
        raise PeriodError("give --month, --week, or --from/--to, not several")
    if ranged:
        if args.date_from is None or args.date_to is None:
            raise PeriodError("--from and --to go together")
        return range_period(args.date_from, args.date_to)
    if args.week:
        return week_period(args.week)
    if args.month:
        return month_period(args.month)
    today = SystemClock().now().astimezone(settings.tz)
    return month_period(f"{today.year:04d}-{today.month:02d}")


async def run_report(settings: Settings, args: argparse.Namespace) -> int:
    try:
        period = period_from_args(args, settings)
    except PeriodError as exc:
        fail("report", "report.period", why=exc)
        return 2
    if getattr(args, "what", "kpi") == "complaints":
        return await complaints_report(settings, period.start, period.end, period.label,
                                       args.format)
    if getattr(args, "what", "kpi") == "questions":
        return await questions_report(settings, period, args.format,
                                      getattr(args, "lang", "zh_CN"))
    async with database(settings):
        got = await review(period, settings, workshop_rules(settings),
                           by_advisor=args.by == "advisor")
    print(render_review(got, args.format, settings.timezone), end="")
    return 0


def render_review(got: Review, fmt: str, timezone_name: str = "") -> str:
    """The satisfaction KPIs, then the workshop figures and the targets (issue 17)."""
    if fmt == "json":
        return json.dumps({**got.kpis.as_dict(), **got.as_dict()}, ensure_ascii=False,
                          indent=2) + "\n"
    if fmt == "csv":
        return review_csv(got)
    return render(got.kpis, fmt, timezone_name) + "\n" + review_text(got)


# --------------------------------------------------------------------------- rendering


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _avg(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


SCOPE_CODES = {DEALERSHIP: "dealership", UNASSIGNED: "(no advisor)"}  # CSV/JSON: as they are


def _name(scope: str) -> str:
    """A scope as people read it in the table."""
    return {DEALERSHIP: t("kpi.dealership"), UNASSIGNED: t("kpi.no_advisor")}.get(scope, scope)


def _rows(k: Kpis) -> list[tuple[str, str]]:
    rows = [
        (t("kpi.followups_due"), str(k.followups_due)),
        (t("kpi.followups_sent"), str(k.followups_sent)),
        (t("kpi.followups_reached"), str(k.followups_reached)),
        (t("kpi.in_telegram"), str(k.followups_reached_telegram)),
        (t("kpi.by_phone"), str(k.followups_reached_phone)),
        (t("kpi.followup_rate"), _pct(k.followup_rate)),
        (t("kpi.responses"), str(k.responses)),
        (t("kpi.by_phone"), str(k.responses_phone)),
        (t("kpi.response_rate"), _pct(k.response_rate)),
        (t("kpi.unreachable_owners"), str(k.unreachable_owners)),
        (t("kpi.scores"), str(k.scores)),
        (t("kpi.average_score"), _avg(k.average)),
    ]
    rows += [(t("kpi.score_n", n=n), str(k.distribution[n])) for n in range(1, 11)]
    rows += [
        (t("kpi.share_9_10"), _pct(k.share_9_10)),
        (t("kpi.owners_served"), str(k.owners_served)),
        (t("kpi.delighted_owners"), str(k.delighted_owners)),
        (t("kpi.delight_rate"), _pct(k.delight_rate)),
        (t("kpi.returning_owners"), str(k.returning_owners)),
        (t("kpi.return_rate"), _pct(k.return_rate)),
        (t("kpi.complaints_opened"), str(k.tickets_opened)),
        (t("kpi.complaint_rate"), _pct(k.complaint_rate)),
        (t("kpi.low_scores"), str(k.low_scores)),
    ]
    rows += [(f"  {words().get(f'tickets.category.{c}', c)}", str(n))
             for c, n in k.categories.items()]
    rows += [
        (t("kpi.no_category"), str(k.uncategorised_low)),
        (t("kpi.strongest"), ", ".join(k.strongest) or "-"),
        (t("kpi.weakest"), ", ".join(k.weakest) or "-"),
        (t("kpi.handling_scores"), str(k.handling_scores)),
        (t("kpi.handling_average"), _avg(k.handling_average)),
    ]
    return rows


def render(report: KpiReport, fmt: str, timezone_name: str = "") -> str:
    """The report as an aligned text table, CSV (one row per scope) or JSON."""
    scopes = [report.dealership, *report.advisors]
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        flat = [_flat(k) for k in scopes]
        writer.writerow(["period", *flat[0].keys()])
        for row in flat:
            writer.writerow([report.period.label, *row.values()])
        return out.getvalue()
    columns = [[label for label, _ in _rows(report.dealership)]]
    headers = ["", *(_name(k.scope) for k in scopes)]
    for k in scopes:
        columns.append([value for _, value in _rows(k)])
    widths = [max(width(h), *(width(v) for v in col))
              for h, col in zip(headers, columns, strict=False)]
    title = t("kpi.title", period=report.period.label, start=report.period.start,
              end=report.period.end - timedelta(days=1),
              timezone=t("kpi.timezone", name=timezone_name) if timezone_name else "")
    lines = [title, "  ".join(ljust(h, w) if i == 0 else rjust(h, w)
                              for i, (h, w) in enumerate(zip(headers, widths, strict=False)))]
    for r in range(len(columns[0])):
        lines.append("  ".join(ljust(col[r], w) if i == 0 else rjust(col[r], w)
                               for i, (col, w) in enumerate(zip(columns, widths, strict=False))))
    return "\n".join(lines) + "\n"


def _flat(k: Kpis) -> dict[str, Any]:
    data = k.as_dict()
    flat: dict[str, Any] = {"scope": SCOPE_CODES.get(k.scope, k.scope)}
    for key, value in data.items():
        if key == "scope":
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                flat[f"{key}_{sub_key}"] = sub_value
        elif isinstance(value, list):
            flat[key] = " ".join(value)
        elif isinstance(value, float):
            flat[key] = round(value, 4)
        else:
            flat[key] = "" if value is None else value
    return flat
