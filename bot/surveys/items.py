"""The questionnaire report (003 §1.4.1-2): each question's answers in a period, its
很满意 / 不满意 shares, and the strongest and weakest items, sales and service apart.

"Very satisfied" is 9-10 on a 1-10 question and 满意 on a three-point one; "dissatisfied"
is a value at or below the low-score threshold (1-6 by default) or 不满意. The strongest
item has the largest very-satisfied share less its dissatisfied share (ties: the larger
very-satisfied share); the weakest the smallest. Skipped questions are counted apart and
left out of the shares. Used by ``carebot report questions`` and the console's Reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise.expressions import Subquery

from bot.surveys import questionnaire as qn
from bot.surveys.rules import DELIGHTED_FROM
from bot.texts import PACKAGED
from db.models import ScoreAnswer

SIDES: tuple[str, ...] = ("sales", "service")


def side_of(kind: str) -> str:
    return "sales" if kind in qn.SALES_KINDS else "service"


@dataclass
class Item:
    """One question of one questionnaire in the period."""

    kind: str
    key: str
    text: str
    position: int
    dimension: str
    scale: str
    answered: int = 0
    skipped: int = 0
    by_choice: Counter[str] = field(default_factory=Counter)
    top: int = 0  # very satisfied
    low: int = 0  # dissatisfied
    total: int = 0  # sum of values, for the mean

    @property
    def top_share(self) -> float | None:
        return self.top / self.answered if self.answered else None

    @property
    def low_share(self) -> float | None:
        return self.low / self.answered if self.answered else None

    @property
    def mean(self) -> float | None:
        return self.total / self.answered if self.answered else None

    def choices(self) -> list[str]:
        """The distribution's columns, in the scale's order."""
        if self.scale == qn.SCALE_SAT3:
            return list(qn.SAT3_CHOICES)
        return [str(n) for n in range(10, 0, -1)]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "question": self.key, "text": self.text,
                "dimension": self.dimension, "answered": self.answered,
                "skipped": self.skipped, "distribution": dict(self.by_choice),
                "very_satisfied_share": self.top_share, "dissatisfied_share": self.low_share,
                "mean": self.mean}


@dataclass
class Side:
    """Sales (the delivery questionnaire) or service (workshop, major repair, complaint)."""

    name: str
    items: list[Item]

    def _ranked(self) -> list[Item]:
        rated = [i for i in self.items if i.answered]
        return sorted(rated, key=lambda i: ((i.top_share or 0) - (i.low_share or 0),
                                            i.top_share or 0))

    @property
    def strongest(self) -> Item | None:
        ranked = self._ranked()
        return ranked[-1] if ranked else None

    @property
    def weakest(self) -> Item | None:
        ranked = self._ranked()
        return ranked[0] if len(ranked) > 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {"items": [i.as_dict() for i in self.items],
                "strongest": self.strongest.key if self.strongest else None,
                "weakest": self.weakest.key if self.weakest else None}


def _is_top(row: dict[str, Any]) -> bool:
    if row["choice"] in qn.SAT3_CHOICES:
        return bool(row["choice"] == "satisfied")
    return row["value"] is not None and row["value"] >= DELIGHTED_FROM


def _is_low(row: dict[str, Any], low_threshold: int) -> bool:
    if row["choice"] in qn.SAT3_CHOICES:
        return bool(row["choice"] == "dissatisfied")
    return row["value"] is not None and row["value"] <= low_threshold


def _texts(lang: str, scripts_dir: Path | str | None, kind: str) -> dict[str, qn.Question]:
    dirs = ([Path(scripts_dir)] if scripts_dir else []) + [PACKAGED]
    try:
        form = qn.load(dirs, lang, kind)
    except (qn.QuestionnaireError, OSError, UnicodeDecodeError):
        return {}  # a broken file: the report names the questions by key
    return {q.key: q for q in form.questions} if form else {}


async def item_report(start: datetime, end: datetime, *, lang: str, low_threshold: int,
                      scripts_dir: Path | str | None = None,
                      customer_ids: Subquery | None = None) -> list[Side]:
    """Each question answered in [start, end), grouped sales / service (``customer_ids``:
    a subquery of the owners whose answers count, for an advisor's view)."""
    rows = ScoreAnswer.filter(answered_at__gte=start, answered_at__lt=end)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    items: dict[tuple[str, str], Item] = {}
    texts: dict[str, dict[str, qn.Question]] = {}
    for row in await rows.values("kind", "question", "position", "dimension", "choice",
                                 "value", "skipped"):
        kind, key = str(row["kind"]), str(row["question"])
        item = items.get((kind, key))
        if item is None:
            known = texts.setdefault(kind, _texts(lang, scripts_dir, kind)).get(key)
            item = items[(kind, key)] = Item(
                kind, key, known.text if known else key, int(row["position"]),
                str(row["dimension"]),
                known.scale if known else (qn.SCALE_SAT3 if row["choice"] in qn.SAT3_CHOICES
                                           else qn.SCALE_10))
        if row["skipped"]:
            item.skipped += 1
            continue
        item.answered += 1
        item.by_choice[str(row["choice"])] += 1
        item.total += int(row["value"] or 0)
        item.top += _is_top(row)
        item.low += _is_low(row, low_threshold)
    order = sorted(items.values(), key=lambda i: (qn.KINDS.index(i.kind)
                                                  if i.kind in qn.KINDS else 99, i.position))
    return [Side(s, [i for i in order if side_of(i.kind) == s]) for s in SIDES]
