"""Satisfaction and complaint KPIs for any period, per advisor and for the dealership.

Every figure is computed in the database by aggregation (COUNT, SUM(CASE ...), GROUP BY,
INTERSECT): nothing here loads score or touchpoint rows into Python, only counts per status,
score value or category, so a month over a million scores costs a few scans of covering
indexes (about 2 s on SQLite). The formulas, and which query and index serve each, are
written down in ``docs/kpi.md``; keep the two in step.

A period is a range of *local* dates (the dealership's time zone), turned into UTC bounds
``[start, end)`` once; all stored times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.kpi_sql import (
    Sql,
    advisor_of,
    first_advisor,
    group_clause,
    in_list,
    int_list,
    num,
    scope_select,
)
from bot.periods import Period, PeriodError, month_period, range_period, week_period
from bot.surveys import CSI_CATEGORIES, DELIGHTED_FROM, SURVEY_KINDS
from db.models import ScoreRates, TouchpointStatus

# The follow-ups that carry the CSI question (the delivery and workshop follow-ups). A
# complaint's follow-up rates the handling; it is reported on its own line, not in CSI.
CSI_RATES: tuple[str, ...] = (ScoreRates.DELIVERY.value, ScoreRates.VISIT.value)
FOLLOWUP_KINDS: tuple[str, ...] = tuple(k for k, r in SURVEY_KINDS.items() if r.value in CSI_RATES)
RANKED_CATEGORIES: tuple[str, ...] = tuple(c for c in CSI_CATEGORIES if c != "other")
DEALERSHIP = "*"  # the scope key of the whole dealership
UNASSIGNED = ""  # the scope key of figures with no advisor on file
# Surveys close 7 days after they are sent, and the last follow-ups of a period go out up to
# a week after it: a 9-10 answered that long after the period still counts for it.
DELIGHT_SETTLE = timedelta(days=14)
# the periods (bot.periods) are reached here too, as the report's callers always have
__all__ = ["CSI_RATES", "DEALERSHIP", "DELIGHT_SETTLE", "FOLLOWUP_KINDS", "RANKED_CATEGORIES",
           "UNASSIGNED", "KpiReport", "Kpis", "Period", "PeriodError", "compute",
           "month_period", "range_period", "week_period"]


# --------------------------------------------------------------------------- figures


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Kpis:
    """The figures of one scope (the dealership, or one advisor) for one period."""

    scope: str
    followups_due: int = 0
    followups_sent: int = 0
    followups_reached: int = 0
    followups_reached_phone: int = 0  # reached only by a phone call (the call list)
    responses: int = 0
    responses_phone: int = 0  # answered on the phone
    unreachable_owners: int = 0
    scores: int = 0
    average: float | None = None
    distribution: dict[int, int] = field(default_factory=lambda: {n: 0 for n in range(1, 11)})
    very_satisfied: int = 0  # scores of 9-10
    delighted_owners: int = 0  # owners served in the period who gave a 9-10
    low_scores: int = 0
    categories: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CSI_CATEGORIES})
    uncategorised_low: int = 0
    owners_served: int = 0
    returning_owners: int = 0
    tickets_opened: int = 0
    handling_scores: int = 0
    handling_average: float | None = None

    @property
    def followup_rate(self) -> float | None:
        return _ratio(self.followups_reached, self.followups_due)

    @property
    def followups_reached_telegram(self) -> int:
        return self.followups_reached - self.followups_reached_phone

    @property
    def response_rate(self) -> float | None:
        return _ratio(self.responses, self.followups_reached)

    @property
    def share_9_10(self) -> float | None:
        return _ratio(self.very_satisfied, self.scores)

    @property
    def delight_rate(self) -> float | None:
        return _ratio(self.delighted_owners, self.owners_served)

    @property
    def return_rate(self) -> float | None:
        return _ratio(self.returning_owners, self.owners_served)

    @property
    def complaint_rate(self) -> float | None:
        return _ratio(self.tickets_opened, self.owners_served)

    @property
    def weakest(self) -> list[str]:
        """The categories with the most low scores (none when no low score named one)."""
        counts = {c: self.categories[c] for c in RANKED_CATEGORIES}
        top = max(counts.values())
        return [c for c, n in counts.items() if n == top] if top else []

    @property
    def strongest(self) -> list[str]:
        """The categories with the fewest low scores (only once any score was given)."""
        if not self.scores:
            return []
        counts = {c: self.categories[c] for c in RANKED_CATEGORIES}
        low = min(counts.values())
        return [c for c, n in counts.items() if n == low]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "followups_due": self.followups_due,
            "followups_sent": self.followups_sent,
            "followups_reached": self.followups_reached,
            "followups_reached_telegram": self.followups_reached_telegram,
            "followups_reached_phone": self.followups_reached_phone,
            "followup_rate": self.followup_rate,
            "responses": self.responses,
            "response_rate": self.response_rate,
            "responses_phone": self.responses_phone,
            "unreachable_owners": self.unreachable_owners,
            "scores": self.scores,
            "average": self.average,
            "distribution": {str(k): v for k, v in self.distribution.items()},
            "very_satisfied": self.very_satisfied,
            "share_9_10": self.share_9_10,
            "delighted_owners": self.delighted_owners,
            "owners_served": self.owners_served,
            "delight_rate": self.delight_rate,
            "returning_owners": self.returning_owners,
            "return_rate": self.return_rate,
            "tickets_opened": self.tickets_opened,
            "complaint_rate": self.complaint_rate,
            "low_scores": self.low_scores,
            "categories": dict(self.categories),
            "uncategorised_low": self.uncategorised_low,
            "strongest": self.strongest,
            "weakest": self.weakest,
            "handling_scores": self.handling_scores,
            "handling_average": self.handling_average,
        }


@dataclass
class KpiReport:
    period: Period
    start_utc: datetime
    end_utc: datetime
    dealership: Kpis
    advisors: list[Kpis]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"label": self.period.label, "from": self.period.start.isoformat(),
                       "to": (self.period.end - timedelta(days=1)).isoformat(),
                       "start_utc": self.start_utc.isoformat(),
                       "end_utc": self.end_utc.isoformat()},
            "dealership": self.dealership.as_dict(),
            "advisors": [a.as_dict() for a in self.advisors],
        }


# --------------------------------------------------------------------------- SQL


# Every status a touchpoint can have. The follow-up figures search the touchpoint_kpi index
# (kind, status, due_at, ...) once per kind and status, so a period costs a range of the
# index for each, never a scan of every follow-up ever written.
ALL_STATUSES: tuple[str, ...] = tuple(s.value for s in TouchpointStatus)
ATTEMPTED: tuple[str, ...] = (TouchpointStatus.SENT, TouchpointStatus.UNREACHABLE,
                              TouchpointStatus.FAILED)
LOST: tuple[str, ...] = (TouchpointStatus.UNREACHABLE, TouchpointStatus.FAILED,
                         TouchpointStatus.EXPIRED)
# a call that ended without reaching the owner (bot.calls)
CALL_LOST: tuple[str, ...] = ("unreachable", "wrong_number")
SCORE_VALUES: tuple[int, ...] = tuple(range(1, 11))  # record_score refuses anything else


class _Parts:
    """The figures of each scope as the queries return them, filled into ``Kpis``."""

    def __init__(self, group: bool, scopes: dict[str, Kpis]) -> None:
        self.group = group
        self.scopes = scopes

    def of(self, row: dict[str, Any]) -> Kpis:
        key = DEALERSHIP if not self.group else str(row["scope"] or UNASSIGNED)
        if self.group and key == DEALERSHIP:
            key = "'*'"  # an advisor literally called "*" must not overwrite the total
        return self.scopes.setdefault(key, Kpis(key))


async def _followups(sql: Sql, start: datetime, end: datetime, parts: _Parts) -> None:
    """Due, sent, reached and answered follow-ups, and the owners who could not be reached."""
    group = parts.group
    # The advisor: the visit named in the payload, else the car's, else the owner's; each
    # looked up only when the one before it has no name.
    adv, group_by = scope_select(group, first_advisor(
        f"(SELECT NULLIF(vi.advisor, '') FROM visit vi WHERE vi.id = "
        f"{sql.visit_id_of('t.payload')})",
        "(SELECT NULLIF(v.sales_advisor, '') FROM vehicle v WHERE v.id = t.vehicle_id)",
        "(SELECT NULLIF(c.advisor, '') FROM customer c WHERE c.id = t.customer_id)"))
    # Per advisor every follow-up is looked up anyway, so whether it has a score is asked
    # in the same pass; the dealership's responses have a query of their own (_responses).
    answered = """SUM(CASE WHEN t.status = 'sent' AND EXISTS (
                       SELECT 1 FROM score s WHERE s.touchpoint_id = t.id)
                   THEN 1 ELSE 0 END)""" if group else "0"
    # Counted per kind and status: the touchpoint_kpi index (kind, status, due_at, ...) is
    # searched once for each pair, so a period costs one range of the index per pair.
    query = f"""
        SELECT {adv} AS scope, t.kind AS kind, t.status AS status, COUNT(*) AS n,
               SUM(CASE WHEN t.status = 'skipped' AND t.status_reason LIKE 'owner declined%'
                   THEN 1 ELSE 0 END) AS declined,
               {answered} AS answered,
               MIN(t.id) AS first_id, MAX(t.id) AS last_id
        FROM touchpoint t
        WHERE t.kind IN {in_list(FOLLOWUP_KINDS)} AND t.status IN {in_list(ALL_STATUSES)}
          AND t.due_at >= ? AND t.due_at < ?
        {group_clause(group, "t.kind", "t.status")}"""
    sent_ids: dict[str, tuple[int, int]] = {}  # kind -> the id range of its sent follow-ups
    for row in await sql.rows(query, [start, end]):
        k, status, n = parts.of(row), str(row["status"]), num(row["n"])
        k.followups_due += n - num(row["declined"])
        k.followups_sent += n if status in ATTEMPTED else 0
        k.responses += num(row["answered"])
        if status == TouchpointStatus.SENT:
            k.followups_reached += n
            low, high = sent_ids.get(str(row["kind"]), (row["first_id"], row["last_id"]))
            sent_ids[str(row["kind"])] = (min(low, row["first_id"]), max(high, row["last_id"]))
    if not group:
        parts.scopes[DEALERSHIP].responses = await _responses(sql, start, end, sent_ids)
    await _by_phone(sql, start, end, parts, adv, group_by)
    # Owners, not follow-ups: counted distinct across the statuses, so a query of its own.
    # Owed by phone, an owner is unreachable when the call ended so (联络不上, wrong number).
    query = f"""
        SELECT {adv} AS scope, COUNT(DISTINCT t.customer_id) AS unreachable
        FROM touchpoint t
        WHERE t.kind IN {in_list(FOLLOWUP_KINDS)}
          AND t.status IN {in_list((*LOST, "skipped", TouchpointStatus.CALL_LIST.value))}
          AND t.due_at >= ? AND t.due_at < ?
          AND (t.status <> 'skipped' OR t.status_reason LIKE 'owner unreachable%')
          AND (t.status <> 'call_list' OR EXISTS (
              SELECT 1 FROM phone_call k WHERE k.touchpoint_id = t.id
                AND k.status IN {in_list(CALL_LOST)}))
        {group_by}"""
    for row in await sql.rows(query, [start, end]):
        parts.of(row).unreachable_owners = num(row["unreachable"])


async def _by_phone(sql: Sql, start: datetime, end: datetime, parts: _Parts, adv: str,
                    group_by: str) -> None:
    """Follow-ups reached on the phone (the call list, issue 16): those Telegram never
    delivered count as reached, by phone; every answer given on the phone is a phone
    response (a survey delivered but unanswered, then answered on the phone, is reached by
    Telegram and answered by phone)."""
    query = f"""
        SELECT {adv} AS scope,
               SUM(CASE WHEN t.status <> 'sent' THEN 1 ELSE 0 END) AS phone_only,
               SUM(CASE WHEN t.status <> 'sent' AND EXISTS (
                       SELECT 1 FROM score s WHERE s.touchpoint_id = t.id)
                   THEN 1 ELSE 0 END) AS phone_only_answered,
               SUM(CASE WHEN EXISTS (
                       SELECT 1 FROM score s WHERE s.touchpoint_id = t.id
                         AND s.source = 'phone')
                   THEN 1 ELSE 0 END) AS phone_answered
        FROM phone_call k JOIN touchpoint t ON t.id = k.touchpoint_id
        WHERE k.status = 'reached' AND t.kind IN {in_list(FOLLOWUP_KINDS)}
          AND t.due_at >= ? AND t.due_at < ?
        {group_by}"""
    for row in await sql.rows(query, [start, end]):
        k = parts.of(row)
        k.followups_reached += num(row["phone_only"])
        k.followups_reached_phone += num(row["phone_only"])
        k.responses += num(row["phone_only_answered"])
        k.responses_phone += num(row["phone_answered"])


async def _responses(sql: Sql, start: datetime, end: datetime,
                     sent_ids: dict[str, tuple[int, int]]) -> int:
    """The period's sent follow-ups that have a score (``sent_ids``: the id range of the
    sent follow-ups of each kind)."""
    if sql.postgres:  # PostgreSQL turns the EXISTS into a semi-join (hash or merge) itself
        query = f"""
            SELECT COUNT(*) AS answered FROM touchpoint t
            WHERE t.kind IN {in_list(FOLLOWUP_KINDS)} AND t.status = 'sent'
              AND t.due_at >= ? AND t.due_at < ?
              AND EXISTS (SELECT 1 FROM score s WHERE s.touchpoint_id = t.id)"""
        return sum(num(r["answered"]) for r in await sql.rows(query, [start, end]))
    # SQLite only nests loops: a look-up among the scores for each follow-up would be most
    # of the report's time. Instead the sent follow-ups of a kind (touchpoint_answered
    # index: kind, status, id, due_at) are intersected with the touchpoints that have a
    # score (score_touchpoint index); both come in id order within the id range of the
    # period's sent follow-ups, so SQLite merges the two sorted lists in one pass.
    query = """
        SELECT COUNT(*) AS answered FROM (
            SELECT t.id FROM touchpoint t
            WHERE t.kind = ? AND t.status = 'sent' AND t.id >= ? AND t.id <= ?
              AND t.due_at >= ? AND t.due_at < ?
            INTERSECT
            SELECT s.touchpoint_id FROM score s
            WHERE s.touchpoint_id >= ? AND s.touchpoint_id <= ?
            ORDER BY 1) a"""
    answered = 0
    for kind, (low, high) in sent_ids.items():
        rows = await sql.rows(query, [kind, low, high, start, end, low, high])
        answered += sum(num(r["answered"]) for r in rows)
    return answered


async def _scores(sql: Sql, start: datetime, end: datetime, parts: _Parts,
                  low_threshold: int) -> None:
    """Current scores of the period counted per (rates, value); the averages, shares and
    low scores follow from those counts. The score_csi index (rates, superseded_at, score,
    first_answered_at, ...) is searched once per rates and value."""
    group = parts.group
    adv, _ = scope_select(group, "s.advisor")
    rates = (*CSI_RATES, ScoreRates.COMPLAINT.value)
    query = f"""
        SELECT {adv} AS scope, s.rates AS rates, s.score AS score, COUNT(*) AS n
        FROM score s
        WHERE s.rates IN {in_list(rates)} AND s.superseded_at IS NULL
          AND s.score IN {int_list(SCORE_VALUES)}
          AND s.first_answered_at >= ? AND s.first_answered_at < ?
        {group_clause(group, "s.rates", "s.score")}"""
    sums: dict[str, list[int]] = {}  # scope -> [sum of CSI scores, of handling scores]
    for row in await sql.rows(query, [start, end]):
        k, value, n = parts.of(row), int(row["score"]), num(row["n"])
        total = sums.setdefault(k.scope, [0, 0])
        if str(row["rates"]) == ScoreRates.COMPLAINT:
            k.handling_scores += n
            total[1] += value * n
        else:
            k.scores += n
            k.distribution[value] += n
            total[0] += value * n
    for scope, total in sums.items():
        k = parts.scopes[scope]
        k.average = total[0] / k.scores if k.scores else None
        k.handling_average = total[1] / k.handling_scores if k.handling_scores else None
        k.very_satisfied = sum(n for v, n in k.distribution.items() if v >= DELIGHTED_FROM)
        k.low_scores = sum(n for v, n in k.distribution.items() if v <= low_threshold)
    low_values = tuple(v for v in SCORE_VALUES if v <= low_threshold)
    if not low_values:
        return
    query = f"""
        SELECT {adv} AS scope, s.category AS category, COUNT(*) AS n
        FROM score s
        WHERE s.rates IN {in_list(CSI_RATES)} AND s.superseded_at IS NULL
          AND s.score IN {int_list(low_values)}
          AND s.first_answered_at >= ? AND s.first_answered_at < ?
        {group_clause(group, "s.category")}"""
    for row in await sql.rows(query, [start, end]):
        k, category, n = parts.of(row), row["category"], num(row["n"])
        if category is None:
            k.uncategorised_low += n
        elif category in k.categories:
            k.categories[category] += n


async def _served(sql: Sql, start: datetime, end: datetime, parts: _Parts) -> None:
    """Owners with a delivery or a workshop visit in the period (each owner once per scope),
    and of those, how many had one before and how many gave a 9-10: one indexed look-up
    per owner served, not a list of every earlier customer or every 9-10."""
    group = parts.group
    adv, group_by = scope_select(group, "served.advisor")
    owners = "(SELECT NULLIF(c.advisor, '') FROM customer c WHERE c.id = v.customer_id)"
    delivery_adv = first_advisor("NULLIF(v.sales_advisor, '')", owners) if group else "''"
    if group:  # the visit's advisor, else the car's, else the owner's
        visits = f"""SELECT v.customer_id AS customer_id, {first_advisor(
                "NULLIF(x.advisor, '')", "NULLIF(v.sales_advisor, '')", owners)} AS advisor
            FROM visit x JOIN vehicle v ON v.id = x.vehicle_id
            WHERE x.left_at >= ? AND x.left_at < ?"""
    else:  # each car with a visit once, its owner looked up in id order
        visits = """SELECT v.customer_id AS customer_id, '' AS advisor
            FROM vehicle v
            WHERE v.id IN (SELECT x.vehicle_id FROM visit x
                           WHERE x.left_at >= ? AND x.left_at < ?)"""
    query = f"""
        SELECT {adv} AS scope,
               COUNT(*) AS served,
               SUM(CASE WHEN EXISTS (
                       SELECT 1 FROM vehicle ev
                       WHERE ev.customer_id = served.customer_id AND ev.delivered_at < ?)
                     OR EXISTS (
                       SELECT 1 FROM vehicle pv JOIN visit px ON px.vehicle_id = pv.id
                       WHERE pv.customer_id = served.customer_id AND px.left_at < ?)
                   THEN 1 ELSE 0 END) AS returners,
               SUM(CASE WHEN EXISTS (
                       SELECT 1 FROM score ds
                       WHERE ds.customer_id = served.customer_id
                         AND ds.score >= {DELIGHTED_FROM} AND ds.superseded_at IS NULL
                         AND ds.rates IN {in_list(CSI_RATES)}
                         AND ds.first_answered_at >= ? AND ds.first_answered_at < ?)
                   THEN 1 ELSE 0 END) AS delighted
        FROM (
            SELECT v.customer_id AS customer_id, {delivery_adv} AS advisor
            FROM vehicle v
            WHERE v.delivered_at >= ? AND v.delivered_at < ?
            UNION
            {visits}
        ) served
        {group_by}"""
    # A delivery on the 30th is surveyed on the 2nd: its score still counts for the month
    # that served the owner (the figure settles once that month's surveys have closed).
    settle = end + DELIGHT_SETTLE
    for row in await sql.rows(query, [start, start, start, settle, start, end, start, end]):
        k = parts.of(row)
        k.owners_served = num(row["served"])
        k.delighted_owners = num(row["delighted"])
        k.returning_owners = num(row["returners"])


async def _tickets(sql: Sql, start: datetime, end: datetime, parts: _Parts) -> None:
    """Complaints opened in the period; per advisor through the score that opened them, else
    the car's sales advisor, else the owner's advisor."""
    group = parts.group
    adv, group_by = scope_select(group, advisor_of("s.advisor", "v.sales_advisor", "c.advisor"))
    joins = """JOIN customer c ON c.id = t.customer_id
        LEFT JOIN vehicle v ON v.id = t.vehicle_id
        LEFT JOIN score s ON s.id = t.score_id""" if group else ""
    query = f"""
        SELECT {adv} AS scope, COUNT(*) AS opened
        FROM ticket t
        {joins}
        WHERE t.created_at >= ? AND t.created_at < ?
        {group_by}"""
    for row in await sql.rows(query, [start, end]):
        parts.of(row).tickets_opened = num(row["opened"])


async def compute(period: Period, tz: ZoneInfo, *, by_advisor: bool = False,
                  low_threshold: int = 6) -> KpiReport:
    """Every KPI of ``period`` for the dealership, and per advisor when asked."""
    start, end = period.utc_bounds(tz)
    sql = Sql()
    dealership: dict[str, Kpis] = {DEALERSHIP: Kpis(DEALERSHIP)}
    advisors: dict[str, Kpis] = {}
    for parts in [_Parts(False, dealership)] + ([_Parts(True, advisors)] if by_advisor else []):
        await _followups(sql, start, end, parts)
        await _scores(sql, start, end, parts, low_threshold)
        await _served(sql, start, end, parts)
        await _tickets(sql, start, end, parts)
    ordered = sorted(advisors.values(), key=lambda k: (k.scope == UNASSIGNED, k.scope))
    return KpiReport(period, start, end, dealership[DEALERSHIP], ordered)
