"""The period's review: the satisfaction KPIs (bot/kpi.py) and the workshop figures
(bot/workshop_kpi.py) of a period and of the one before, each judged against the
dealership's target (bot/kpi_targets.py). What ``carebot report``, the console's Reports
and the reports posted to the staff group show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.kpi import KpiReport, Kpis, compute
from bot.kpi_targets import Verdict, judge, parse_targets
from bot.periods import Period
from bot.workshop_kpi import (
    WorkshopKpis,
    WorkshopReport,
    WorkshopRules,
    compute_workshop,
    previous_period,
)

SATISFIED_FROM = 7  # 满意 + 很满意 on the 1-10 scale: 7-8 satisfied, 9-10 very satisfied


def figures_of(k: Kpis, w: WorkshopKpis) -> dict[str, float | None]:
    """The figures a target can judge, of one scope."""
    satisfied = sum(n for v, n in k.distribution.items() if v >= SATISFIED_FROM)
    return {
        "followup_rate": k.followup_rate,
        "satisfied_share": satisfied / k.scores if k.scores else None,
        "share_9_10": k.share_9_10,
        "first_service_rate": w.first_service_rate,
        "repeat_repair_rate": w.repeat_repair_rate,
        "booking_rate": w.booking_rate,
        "renewal_rate": w.renewal_rate,
        "complaint_rate": k.complaint_rate,
        "active_base_12m": float(w.base_12m),
        "active_base_24m": float(w.base_24m),
    }


@dataclass
class Review:
    kpis: KpiReport
    workshop: WorkshopReport
    previous: Period
    verdicts: list[Verdict]

    def as_dict(self) -> dict[str, Any]:
        return {
            "workshop": {"dealership": self.workshop.dealership.as_dict(),
                         "advisors": {a: w.as_dict() for a, w in self.workshop.advisors.items()}},
            "targets": [{"figure": v.name, "value": v.value, "previous": v.previous,
                         "previous_period": self.previous.label,
                         "target": None if v.target is None else v.target.value,
                         "direction": None if v.target is None else v.target.direction,
                         "met": v.met, "trend": v.trend} for v in self.verdicts],
        }


def workshop_rules(settings: Settings) -> WorkshopRules:
    return WorkshopRules(first_service_days=settings.kpi_first_service_days,
                         repeat_repair_days=settings.kpi_repeat_repair_days,
                         booking_visit_days=settings.booking_visit_days)


async def review(period: Period, settings: Settings, rules: WorkshopRules, *,
                 by_advisor: bool = False, tz: ZoneInfo | None = None) -> Review:
    """The period's figures (per advisor when asked), the dealership's judged against its
    targets with the previous period's beside them."""
    tz = tz or settings.tz
    low = settings.survey_low_threshold
    kpis = await compute(period, tz, by_advisor=by_advisor, low_threshold=low)
    workshop = await compute_workshop(period, tz, rules, by_advisor=by_advisor)
    before = previous_period(period)
    old_kpis = await compute(before, tz, low_threshold=low)
    old_workshop = await compute_workshop(before, tz, rules)
    verdicts = judge(figures_of(kpis.dealership, workshop.dealership),
                     figures_of(old_kpis.dealership, old_workshop.dealership),
                     parse_targets(settings.kpi_targets))
    return Review(kpis, workshop, before, verdicts)
