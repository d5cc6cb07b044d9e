"""``kpi``: last month's KPI report (``carebot report --month``) over a million scores, beside
the month's rows loaded with the ORM and counted in Python."""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise import Tortoise

from benchmarks.common import Databases, Figure, check_ids, seed, vin
from bot.clock import SystemClock
from bot.config import Settings

KPI_SCORES = 1_000_000

_ADVISORS = tuple(f"顾问{k}" for k in range(12))
_SCORE_WEIGHTS = (1, 1, 1, 1, 2, 3, 6, 15, 30, 40)
_UNANSWERED = (("sent", ""), ("unreachable", ""), ("expired", ""),
               ("skipped", "owner declined follow-ups"), ("skipped", "owner unreachable"))


class _Month:
    """The shape of the seeded month: ``scores`` score rows (CSI scores on follow-ups, 2 %
    superseded, 1 % complaint handling), the follow-up touchpoints they answer (+10 %
    unanswered, half of them the month before), a workshop visit for 30 % of them."""

    def __init__(self, scores: int, start: datetime, end: datetime) -> None:
        self.rng = random.Random(3)
        self.start, self.end = start, end
        self.span = (end - start).total_seconds()
        self.scores = scores
        self.owners = max(10, scores // 4)
        self.superseded, self.handling = scores // 50, scores // 100
        # touchpoints 1..answered carry a CSI score; 1..visits are workshop follow-ups
        self.answered = scores - self.superseded - self.handling
        self.visits = int(self.answered * 0.3)
        self.total = self.answered + max(1, self.answered // 10)
        self.visit_car: list[int] = []
        self.tickets: list[list[Any]] = []

    def due(self, k: int) -> datetime:
        return self.start + timedelta(
            seconds=self.span * 0.95 * ((k * 7919) % self.total) / self.total)

    def owner_of(self, k: int) -> int:
        return self.visit_car[k] if k < self.visits else (k * 31) % self.owners + 1

    def touchpoints(self) -> Iterable[list[Any]]:
        for k in range(self.total):
            kind = "service_followup" if k < self.visits else "followup_3d"
            payload = json.dumps({"visit_id": k + 1} if k < self.visits else {"vin": vin(k)})
            status, reason = ("sent", "") if k < self.answered else _UNANSWERED[k % 5]
            at = self.due(k) if k < self.answered or k % 2 else self.due(k) - timedelta(days=31)
            yield [self.owner_of(k), self.owner_of(k), kind, f"b{k}", at, status, reason,
                   payload]

    def score_rows(self) -> Iterable[list[Any]]:
        """The scores; a tenth of the low survey scores also open a ticket (``tickets``)."""
        from bot.surveys import CSI_CATEGORIES

        rng, answered = self.rng, self.answered
        low_categories = (*CSI_CATEGORIES, None)
        for i in range(self.scores):
            k = i if i < answered else rng.randrange(answered)
            rates = "complaint" if i >= answered + self.superseded else \
                "visit" if k < self.visits else "delivery"
            value = rng.choices(range(1, 11), _SCORE_WEIGHTS)[0]
            category = rng.choice(low_categories) if value <= 6 else None
            at = min(self.due(k) + timedelta(hours=2), self.end - timedelta(seconds=1))
            gone = at + timedelta(hours=1) if answered <= i < answered + self.superseded \
                else None
            if value <= 6 and rates != "complaint" and i % 10 == 0:
                self.tickets.append([
                    f"T-{len(self.tickets) + 1:07d}", self.owner_of(k), self.owner_of(k),
                    "survey", category or "other", at + timedelta(minutes=30),
                    at + timedelta(hours=2, minutes=30), i + 1])
            yield [k + 1, self.owner_of(k), self.owner_of(k), k + 1 if k < self.visits else None,
                   rates, _ADVISORS[k % 12], value, category, at, at, gone]


async def _seed_people(month: _Month, now: datetime) -> None:
    """Owners, their cars (30 % delivered this month) and the workshop visits."""
    from db.models import Customer, Vehicle, Visit

    owners, rng, start, span = month.owners, month.rng, month.start, month.span
    await seed(Customer, ("name", "phone", "link_token", "advisor", "telegram_chat_id"), (
        [f"车主{i}", f"+86137{i:08d}", f"kpi{i}", _ADVISORS[i % 12], 1_000_000_000 + i]
        for i in range(owners)), now)
    await check_ids(Customer, owners)
    await seed(Vehicle, ("vin", "customer_id", "model", "sales_advisor", "delivered_at"), (
        [vin(i), i + 1, "星辰 S7", _ADVISORS[i % 12],
         start + timedelta(seconds=span * rng.random()) if i % 10 < 3
         else start - timedelta(days=1 + rng.randrange(900))]
        for i in range(owners)), now)
    month.visit_car = [rng.randrange(owners) + 1 for _ in range(month.visits)]
    await seed(Visit, ("vehicle_id", "kind", "advisor", "left_at"), (
        [month.visit_car[j], "maintenance", _ADVISORS[j % 12],
         start + timedelta(seconds=span * 0.9 * j / max(1, month.visits))]
        for j in range(month.visits)), now)
    await check_ids(Visit, month.visits)


async def _seed_kpi(scores: int, start: datetime, end: datetime, now: datetime) -> None:
    """A month with ``scores`` score rows (see ``_Month``), owners, cars and tickets."""
    from db.models import Score, Ticket, Touchpoint

    month = _Month(scores, start, end)
    await _seed_people(month, now)
    await seed(Touchpoint, ("customer_id", "vehicle_id", "kind", "occasion_key", "due_at",
                            "status", "status_reason", "payload"), month.touchpoints(), now)
    await check_ids(Touchpoint, month.total)
    await seed(Score, ("touchpoint_id", "customer_id", "vehicle_id", "visit_id", "rates",
                       "advisor", "score", "category", "first_answered_at", "created_at",
                       "superseded_at"), month.score_rows(), now)
    await check_ids(Score, scores)
    await seed(Ticket, ("number", "customer_id", "vehicle_id", "channel", "category",
                        "created_at", "first_answer_due", "score_id"), month.tickets, now)
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "postgres":
        # A bulk load PostgreSQL's autovacuum has not analysed yet: without statistics its
        # planner guesses thousands of scores per owner and picks the wrong indexes. (SQLite
        # databases are never analysed; the report's queries are planned well without.)
        await conn.execute_script("ANALYZE")


async def _followups_in_python(start: datetime, end: datetime) -> dict[str, Any]:
    from bot.kpi import FOLLOWUP_KINDS
    from db.models import Score, Touchpoint

    out: dict[str, Any] = {}
    followups = await Touchpoint.filter(
        kind__in=list(FOLLOWUP_KINDS), due_at__gte=start, due_at__lt=end,
    ).values_list("id", "status", "status_reason", "customer_id")
    answered = set(await Score.all().values_list("touchpoint_id", flat=True))
    counted = [r for r in followups
               if not (r[1] == "skipped" and str(r[2]).startswith("owner declined"))]
    out["followups_due"] = len(counted)
    out["followups_sent"] = sum(1 for r in counted if r[1] in ("sent", "unreachable", "failed"))
    out["followups_reached"] = sum(1 for r in counted if r[1] == "sent")
    out["responses"] = sum(1 for r in counted if r[1] == "sent" and r[0] in answered)
    out["unreachable_owners"] = len({
        r[3] for r in counted if r[1] in ("unreachable", "failed", "expired")
        or (r[1] == "skipped" and str(r[2]).startswith("owner unreachable"))})
    return out


def _scores_in_python(rows: list[Any], low: int) -> dict[str, Any]:
    from bot.kpi import CSI_RATES
    from bot.surveys import CSI_CATEGORIES, DELIGHTED_FROM

    out: dict[str, Any] = {}
    csi = [r for r in rows if str(r[0]) in CSI_RATES]
    values = [r[1] for r in csi]
    out["scores"] = len(values)
    out["average"] = sum(values) / len(values) if values else None
    out["distribution"] = {n: values.count(n) for n in range(1, 11)}
    out["very_satisfied"] = sum(1 for v in values if v >= DELIGHTED_FROM)
    out["low_scores"] = sum(1 for v in values if v <= low)
    out["uncategorised_low"] = sum(1 for r in csi if r[1] <= low and r[2] is None)
    out["categories"] = {c: sum(1 for r in csi if r[1] <= low and r[2] == c)
                         for c in CSI_CATEGORIES}
    handling = [r[1] for r in rows if str(r[0]) == "complaint"]
    out["handling_scores"] = len(handling)
    return out


async def _owners_in_python(start: datetime, end: datetime, rows: list[Any]
                            ) -> dict[str, Any]:
    from bot.kpi import CSI_RATES, DELIGHT_SETTLE
    from bot.surveys import DELIGHTED_FROM
    from db.models import Score, Ticket, Vehicle, Visit

    out: dict[str, Any] = {}
    csi = [r for r in rows if str(r[0]) in CSI_RATES]
    served = set(await Vehicle.filter(delivered_at__gte=start, delivered_at__lt=end)
                 .values_list("customer_id", flat=True))
    served |= set(await Visit.filter(left_at__gte=start, left_at__lt=end)
                  .values_list("vehicle__customer_id", flat=True))
    earlier = set(await Vehicle.filter(delivered_at__lt=start).values_list("customer_id",
                                                                           flat=True))
    earlier |= set(await Visit.filter(left_at__lt=start).values_list("vehicle__customer_id",
                                                                     flat=True))
    out["owners_served"] = len(served)
    # Delighted: owners served in the period who gave a 9-10 by the time its surveys closed.
    late = await Score.filter(
        superseded_at__isnull=True, rates__in=list(CSI_RATES), score__gte=DELIGHTED_FROM,
        first_answered_at__gte=end, first_answered_at__lt=end + DELIGHT_SETTLE,
    ).values_list("customer_id", flat=True)
    out["delighted_owners"] = len(served & ({r[3] for r in csi if r[1] >= DELIGHTED_FROM}
                                            | set(late)))
    out["returning_owners"] = len(served & earlier)
    out["tickets_opened"] = len(await Ticket.filter(created_at__gte=start, created_at__lt=end)
                                .values_list("id", flat=True))
    return out


async def _kpi_in_python(start: datetime, end: datetime, low: int) -> dict[str, Any]:
    """The naive report: load the month's rows with the ORM, count in Python (dealership)."""
    from db.models import Score

    out = await _followups_in_python(start, end)
    rows = await Score.filter(
        superseded_at__isnull=True, first_answered_at__gte=start, first_answered_at__lt=end,
    ).values_list("rates", "score", "category", "customer_id")
    out.update(_scores_in_python(rows, low))
    out.update(await _owners_in_python(start, end, rows))
    return out


def _check(naive: dict[str, Any], ours: Any, per_advisor: Any) -> str:
    """'; same figures from both', or what differs (each marked CHECK)."""
    differ = [name for name, value in naive.items()
              if (round(value, 9) if isinstance(value, float) else value)
              != (round(got, 9) if isinstance(got := getattr(ours, name), float) else got)]
    check = f"; CHECK: figures differ: {', '.join(differ)}" if differ else \
        "; same figures from both"
    # Each follow-up, score and complaint is in exactly one advisor's column (owners are not:
    # one served by two advisors counts for each), so these columns add up to the total.
    additive = ("followups_due", "followups_sent", "followups_reached", "responses", "scores",
                "very_satisfied", "low_scores", "uncategorised_low", "handling_scores",
                "tickets_opened")
    split = [name for name in additive
             if sum(getattr(k, name) for k in per_advisor.advisors) != getattr(ours, name)]
    check += f"; CHECK: the advisors' columns do not add up: {', '.join(split)}" if split else ""
    return check


async def bench_kpi(settings: Settings, *, scores: int) -> list[Figure]:
    """Last month's KPI report (``carebot report --month``) over ``scores`` scores; baseline:
    the month's rows loaded into Python and counted there."""
    from bot.journeys.timing import local_date
    from bot.kpi import compute, month_period
    from db.setup import close_database, open_database

    now = SystemClock().now()
    first = local_date(now, settings.tz).replace(day=1) - timedelta(days=1)
    period = month_period(f"{first:%Y-%m}")
    start, end = period.utc_bounds(settings.tz)
    low = settings.survey_low_threshold
    with tempfile.TemporaryDirectory() as tmp:
        await open_database(await Databases(Path(tmp)).fresh("kpi"), apply_migrations=False)
        try:
            await _seed_kpi(scores, start, end, now)
            started = time.perf_counter()
            report = await compute(period, settings.tz, low_threshold=low)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            per_advisor = await compute(period, settings.tz, by_advisor=True, low_threshold=low)
            advisor_seconds = time.perf_counter() - started
            started = time.perf_counter()
            naive = await _kpi_in_python(start, end, low)
            base = time.perf_counter() - started
        finally:
            await close_database()
    ours = report.dealership
    check = _check(naive, ours, per_advisor)
    return [Figure(f"kpi: report for {period.label} over {scores:,} scores", seconds, "s",
                   "≤ 3 s", seconds <= 3, base,
                   f"{ours.scores:,} current CSI scores, {ours.followups_due:,} follow-ups; "
                   f"per advisor (--by advisor, {len(per_advisor.advisors)} columns) "
                   f"{advisor_seconds:.1f} s; baseline: the month's rows loaded with the ORM "
                   f"and counted in Python{check}")]
