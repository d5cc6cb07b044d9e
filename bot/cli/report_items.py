"""``carebot report questions``: each questionnaire question's answers in a period, its
很满意 / 不满意 shares, the strongest and weakest items, sales and service apart
(003 §1.4.1-2; bot.surveys.items).

    carebot report questions --month 2026-11 [--format table|csv|json] [--lang en]
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from bot.cli.database import database
from bot.cli.say import t
from bot.config import Settings
from bot.periods import Period
from bot.surveys.items import Item, Side, item_report


async def questions_report(settings: Settings, period: Period, fmt: str, lang: str) -> int:
    start, end = period.utc_bounds(settings.tz)
    async with database(settings):
        sides = await item_report(start, end, lang=lang,
                                  low_threshold=settings.survey_low_threshold,
                                  scripts_dir=settings.scripts_dir)
    print(render_items(sides, fmt, period.label), end="")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _distribution(item: Item) -> str:
    return " ".join(f"{c}:{item.by_choice.get(c, 0)}" for c in item.choices())


def render_items(sides: list[Side], fmt: str, label: str) -> str:
    """The report as a table for people, CSV or JSON for tools."""
    if fmt == "json":
        data: dict[str, Any] = {"period": label, **{s.name: s.as_dict() for s in sides}}
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["side", "kind", "question", "dimension", "answered", "skipped",
                         "very_satisfied_share", "dissatisfied_share", "distribution"])
        for side in sides:
            for i in side.items:
                writer.writerow([side.name, i.kind, i.key, i.dimension, i.answered, i.skipped,
                                 i.top_share if i.top_share is not None else "",
                                 i.low_share if i.low_share is not None else "",
                                 _distribution(i)])
        return out.getvalue()
    lines = [t("items.title", period=label)]
    for side in sides:
        lines += ["", f"== {t(f'items.side.{side.name}')} =="]
        if not side.items:
            lines.append(t("items.no_answers"))
            continue
        for i in side.items:
            lines.append(f"  [{i.kind}] {i.key}: {i.text}")
            lines.append(t("items.figures", answered=i.answered, skipped=i.skipped,
                           top=_pct(i.top_share), low=_pct(i.low_share),
                           distribution=_distribution(i)))
        for name, item in (("strongest", side.strongest), ("weakest", side.weakest)):
            if item is not None:
                lines.append(t(f"items.{name}", question=item.key, text=item.text))
    return "\n".join(lines) + "\n"
