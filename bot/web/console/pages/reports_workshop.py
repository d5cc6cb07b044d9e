"""The Reports page's workshop figures and targets (issue 17, point 4): 首保率, 返修率,
预约率, 续保率, 基盘客户数 and the satisfied share, for the dealership judged against its
targets (met or missed, with the trend against the period before), or an advisor's own
(no targets: those are the dealership's). Figures from ``bot/workshop_kpi.py``, verdicts from
``bot/kpi_targets.py``; a module of its own beside ``reports.py``, which shows them."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.kpi import Kpis
from bot.kpi_review import figures_of
from bot.kpi_targets import AT_LEAST, is_rate, judge, parse_targets
from bot.periods import Period
from bot.web.console import console_of
from bot.web.console.render import Translator
from bot.workshop_kpi import WorkshopKpis, WorkshopReport, compute_workshop, previous_period

ARROWS = {"up": "↑", "down": "↓", "same": "→"}


@dataclass(frozen=True)
class FigureRow:
    key: str
    label: str
    value: str
    target: str
    verdict: str  # "met", "missed" or ""
    trend: str


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if is_rate(name) else f"{value:,.0f}"


async def workshop_rows(request: web.Request, period: Period, advisor: str | None,
                        kpis_now: Kpis, kpis_before: Kpis, t: Translator) -> list[FigureRow]:
    """One row a figure for the dealership (``advisor`` None) or one advisor."""
    settings = console_of(request).services.settings
    rules = console_of(request).services.rules.workshop
    by_advisor = advisor is not None
    now = await compute_workshop(period, settings.tz, rules, by_advisor=by_advisor)
    before = await compute_workshop(previous_period(period), settings.tz, rules,
                                    by_advisor=by_advisor)

    def scope(report: WorkshopReport) -> WorkshopKpis:
        if advisor is None:
            return report.dealership
        return report.advisors.get(advisor) or WorkshopKpis(advisor)

    targets = parse_targets(settings.kpi_targets) if advisor is None else {}
    rows: list[FigureRow] = []
    for v in judge(figures_of(kpis_now, scope(now)), figures_of(kpis_before, scope(before)),
                   targets):
        value = _value(v.name, v.value)
        if v.value is None and v.name == "renewal_rate":
            value = t("reports.workshop.no_renewal")
        target = ""
        if v.target is not None:
            sign = "≥" if v.target.direction == AT_LEAST else "≤"
            target = f"{sign} {_value(v.name, v.target.value)}"
        verdict = {True: "met", False: "missed", None: ""}[v.met]
        trend = ""
        if v.trend:
            trend = t("reports.workshop.trend", arrow=ARROWS[v.trend],
                      previous=_value(v.name, v.previous), label=before_label(period))
        rows.append(FigureRow(v.name, t(f"reports.workshop.fig.{v.name}"), value, target,
                              verdict, trend))
    return rows


def before_label(period: Period) -> str:
    return previous_period(period).label
