"""A period's review as text for people (``carebot report``, the reports posted to the staff
group) and as CSV for spreadsheets (one row a scope: the dealership, then each advisor).

Plain strings, no Telegram types: the CLI prints them, the scheduled reports send them.
Figure names here are English labels with the dealership's Chinese terms beside them, as
the manuals name them; a dealership reading the staff group reads both.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from bot.kpi import DEALERSHIP, UNASSIGNED, Kpis
from bot.kpi_review import Review, figures_of
from bot.kpi_targets import AT_LEAST, Verdict, is_rate
from bot.workshop_kpi import WorkshopKpis

LABELS: dict[str, str] = {
    "followup_rate": "回访率 follow-up rate",
    "satisfied_share": "满意+很满意 satisfied (7-10)",
    "share_9_10": "很满意 very satisfied (9-10)",
    "first_service_rate": "首保率 first-service rate",
    "repeat_repair_rate": "返修率 repeat-repair rate",
    "booking_rate": "预约率 booking rate",
    "renewal_rate": "续保率 insurance renewal rate",
    "complaint_rate": "投诉率 complaint rate",
    "active_base_12m": "基盘客户数 active base, 12 months",
    "active_base_24m": "基盘客户数 active base, 24 months",
}
TREND = {"up": "↑", "down": "↓", "same": "→", "": ""}


def scope_name(scope: str) -> str:
    return {DEALERSHIP: "dealership", UNASSIGNED: "(no advisor)"}.get(scope, scope)


def value_text(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if is_rate(name) else f"{value:,.0f}"


def _target_text(v: Verdict) -> str:
    if v.target is None:
        return "(no target)"
    sign = "≥" if v.target.direction == AT_LEAST else "≤"
    return f"{sign} {value_text(v.name, v.target.value)}"


def _verdict_text(v: Verdict) -> str:
    return {True: "met", False: "MISSED", None: "-"}[v.met]


def _why_missing(review: Review, name: str) -> str:
    """Why a figure has no value, said rather than shown as 0."""
    if name == "renewal_rate":
        return "no renewal outcomes recorded"
    return "no data in the period"


def targets_lines(review: Review) -> list[str]:
    """One line a figure: value, target, met or missed, and the trend against the period
    before."""
    lines = [f"Targets ({review.kpis.period.label}; trend against {review.previous.label})"]
    width = max(len(LABELS[v.name]) for v in review.verdicts)
    for v in review.verdicts:
        value = value_text(v.name, v.value) if v.value is not None else _why_missing(review,
                                                                                     v.name)
        trend = ""
        if v.trend:
            trend = f"{TREND[v.trend]} from {value_text(v.name, v.previous)}"
        lines.append(f"  {LABELS[v.name].ljust(width)}  {value:>8}  {_target_text(v):>12}  "
                     f"{_verdict_text(v):<6}  {trend}".rstrip())
    return lines


def _workshop_rows(w: WorkshopKpis, k: Kpis) -> list[tuple[str, str]]:
    figures = figures_of(k, w)
    return [
        ("first services due / done", f"{w.first_service_due} / {w.first_service_done}"),
        (LABELS["first_service_rate"], value_text("first_service_rate", w.first_service_rate)),
        ("jobs / comebacks", f"{w.jobs} / {w.comebacks}"),
        (LABELS["repeat_repair_rate"], value_text("repeat_repair_rate", w.repeat_repair_rate)),
        (LABELS["booking_rate"], value_text("booking_rate", w.booking_rate)),
        (LABELS["renewal_rate"], value_text("renewal_rate", w.renewal_rate)),
        (LABELS["satisfied_share"], value_text("satisfied_share", figures["satisfied_share"])),
        (LABELS["active_base_12m"], f"{w.base_12m:,}"),
        (LABELS["active_base_24m"], f"{w.base_24m:,}"),
    ]


def _pairs(review: Review) -> list[tuple[Kpis, WorkshopKpis]]:
    """Each scope's satisfaction and workshop figures side by side (an advisor with only
    one kind gets empty figures of the other)."""
    pairs = [(review.kpis.dealership, review.workshop.dealership)]
    kpis = {k.scope: k for k in review.kpis.advisors}
    for name in sorted(set(kpis) | set(review.workshop.advisors),
                       key=lambda s: (s == UNASSIGNED, s)):
        pairs.append((kpis.get(name) or Kpis(name),
                      review.workshop.advisors.get(name) or WorkshopKpis(name)))
    return pairs


def workshop_table(review: Review) -> list[str]:
    pairs = _pairs(review)
    columns = [[label for label, _ in _workshop_rows(pairs[0][1], pairs[0][0])]]
    headers = ["", *(scope_name(w.scope) for _, w in pairs)]
    columns += [[value for _, value in _workshop_rows(w, k)] for k, w in pairs]
    widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(headers, columns, strict=True)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    for r in range(len(columns[0])):
        lines.append("  ".join(col[r].ljust(w) if i == 0 else col[r].rjust(w)
                               for i, (col, w) in enumerate(zip(columns, widths, strict=True))))
    return lines


def review_text(review: Review) -> str:
    """The workshop figures (per scope) and the dealership's targets, for a message or a
    terminal."""
    return "\n".join(["Workshop figures", *workshop_table(review), "",
                      *targets_lines(review)]) + "\n"


def _flat(prefix: str, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "scope":
            continue
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                out[f"{prefix}{key}_{sub}"] = sub_value
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = " ".join(value)
        elif isinstance(value, float):
            out[f"{prefix}{key}"] = round(value, 4)
        else:
            out[f"{prefix}{key}"] = "" if value is None else value
    return out


def review_csv(review: Review, *, scope: str | None = None) -> str:
    """One row a scope: the satisfaction KPIs, then the workshop figures; then one row a
    target. ``scope``: that advisor's row only, without the dealership's targets."""
    out = io.StringIO()
    writer = csv.writer(out)
    rows = [{"scope": scope_name(k.scope), **_flat("", k.as_dict()),
             **_flat("", w.as_dict()),
             "satisfied_share": _round(figures_of(k, w)["satisfied_share"])}
            for k, w in _pairs(review) if scope is None or k.scope == scope]
    if not rows:
        return ""
    header = ["period", *rows[0].keys()]
    writer.writerow(header)
    for row in rows:
        writer.writerow([review.kpis.period.label, *(row.get(h, "") for h in header[1:])])
    if scope is not None:
        return out.getvalue()
    writer.writerow([])
    writer.writerow(["period", "target", "value", "target_value", "direction", "met",
                     "previous_period", "previous", "trend"])
    for v in review.verdicts:
        writer.writerow([review.kpis.period.label, v.name, _round(v.value),
                         "" if v.target is None else v.target.value,
                         "" if v.target is None else v.target.direction,
                         {True: "met", False: "missed", None: ""}[v.met],
                         review.previous.label, _round(v.previous), v.trend])
    return out.getvalue()


def _round(value: float | None) -> Any:
    return "" if value is None else round(value, 4)
