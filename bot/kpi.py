"""Satisfaction and complaint KPIs for any period, per advisor and for the dealership.

Every figure is computed in the database by aggregation (COUNT, SUM(CASE ...), AVG, GROUP
BY): nothing here loads score or touchpoint rows into Python, so a month over a million
scores costs a few indexed scans. The formulas are written down in ``docs/kpi.md``; keep the
two in step.

A period is a range of *local* dates (the dealership's time zone), turned into UTC bounds
``[start, end)`` once; all stored times are UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import Tortoise

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


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` (inclusive) to ``end`` (exclusive), with a label for people."""

    start: date
    end: date
    label: str

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """Local midnight of the first day and of the day after the last, in UTC."""
        return (datetime.combine(self.start, time(0), tzinfo=tz).astimezone(timezone.utc),
                datetime.combine(self.end, time(0), tzinfo=tz).astimezone(timezone.utc))


class PeriodError(ValueError):
    """A period argument people typed is not understood; the message says what to type."""


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)


def month_period(value: str) -> Period:
    """``2026-11`` -> 1 November to 1 December."""
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise PeriodError(f"{value!r} is not a month; use YYYY-MM, for example 2026-11")
    year, month = int(m.group(1)), int(m.group(2))
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(start, end, f"{year:04d}-{month:02d}")


def week_period(value: str) -> Period:
    """``2026-W45`` -> that ISO week, Monday to the next Monday."""
    m = _WEEK.match(value.strip())
    if not m:
        raise PeriodError(f"{value!r} is not an ISO week; use YYYY-Www, for example 2026-W45")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        start = date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise PeriodError(f"{value!r}: {year} has no week {week}") from exc
    return Period(start, start + timedelta(days=7), f"{year:04d}-W{week:02d}")


def range_period(first: str, last: str) -> Period:
    """``--from 2026-11-01 --to 2026-11-15``: both days included."""
    try:
        start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
    except ValueError as exc:
        raise PeriodError(f"dates are YYYY-MM-DD ({exc})") from None
    if end < start:
        raise PeriodError(f"--to {end} is before --from {start}")
    return Period(start, end + timedelta(days=1), f"{start}..{end}")


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
    responses: int = 0
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
            "followup_rate": self.followup_rate,
            "responses": self.responses,
            "response_rate": self.response_rate,
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


class _Sql:
    """Write queries once with ``?`` placeholders; PostgreSQL gets ``$1, $2 ...``."""

    def __init__(self) -> None:
        self.conn = Tortoise.get_connection("default")
        self.postgres = self.conn.capabilities.dialect == "postgres"

    def visit_id_of(self, payload: str) -> str:
        """The integer ``visit_id`` of a touchpoint's JSON payload, NULL when absent or odd."""
        if self.postgres:
            return (f"CASE WHEN ({payload}->>'visit_id') ~ '^[0-9]{{1,9}}$' "
                    f"THEN ({payload}->>'visit_id')::int END")
        return f"CAST(json_extract({payload}, '$.visit_id') AS INTEGER)"

    async def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        if self.postgres:
            n = 0

            def number(_: re.Match[str]) -> str:
                nonlocal n
                n += 1
                return f"${n}"

            sql = re.sub(r"\?", number, sql)
        return list(await self.conn.execute_query_dict(sql, params))


def _advisor(*columns: str) -> str:
    """The first non-empty advisor name among ``columns`` ('' when none)."""
    return "COALESCE(" + ", ".join(f"NULLIF({c}, '')" for c in columns) + ", '')"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _num(value: Any) -> int:
    return int(value or 0)


def _avg(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _scope_select(group: bool, expr: str) -> tuple[str, str]:
    """(select expression, GROUP BY clause) for a per-advisor or a dealership query."""
    return (expr, "GROUP BY 1") if group else ("'*'", "")


async def _followups(sql: _Sql, start: datetime, end: datetime, group: bool
                     ) -> list[dict[str, Any]]:
    adv, group_by = _scope_select(group, _advisor("vi.advisor", "v.sales_advisor", "c.advisor"))
    attempted = _in((TouchpointStatus.SENT, TouchpointStatus.UNREACHABLE,
                     TouchpointStatus.FAILED))
    lost = _in((TouchpointStatus.UNREACHABLE, TouchpointStatus.FAILED, TouchpointStatus.EXPIRED))
    # The joins only find the advisor: the dealership's figures need none of them (each is
    # on a unique key, so leaving them out changes no count).
    joins = f"""JOIN customer c ON c.id = t.customer_id
        LEFT JOIN vehicle v ON v.id = t.vehicle_id
        LEFT JOIN visit vi ON vi.id = {sql.visit_id_of('t.payload')}""" if group else ""
    query = f"""
        SELECT {adv} AS scope,
               COUNT(*) AS due,
               SUM(CASE WHEN t.status IN {attempted} THEN 1 ELSE 0 END) AS sent,
               SUM(CASE WHEN t.status = 'sent' THEN 1 ELSE 0 END) AS reached,
               SUM(CASE WHEN t.status = 'sent' AND EXISTS (
                       SELECT 1 FROM score s WHERE s.touchpoint_id = t.id)
                   THEN 1 ELSE 0 END) AS responses,
               COUNT(DISTINCT CASE WHEN t.status IN {lost}
                       OR (t.status = 'skipped' AND t.status_reason LIKE 'owner unreachable%')
                   THEN t.customer_id END) AS unreachable
        FROM touchpoint t
        {joins}
        WHERE t.kind IN {_in(FOLLOWUP_KINDS)} AND t.due_at >= ? AND t.due_at < ?
          AND NOT (t.status = 'skipped' AND t.status_reason LIKE 'owner declined%')
        {group_by}"""
    return await sql.rows(query, [start, end])


async def _scores(sql: _Sql, start: datetime, end: datetime, group: bool, low_threshold: int
                  ) -> list[dict[str, Any]]:
    adv, group_by = _scope_select(group, "s.advisor")
    dist = ",\n".join(f"SUM(CASE WHEN s.score = {n} THEN 1 ELSE 0 END) AS s{n}"
                      for n in range(1, 11))
    cats = ",\n".join(
        f"SUM(CASE WHEN s.score <= {low_threshold} AND s.category = '{c}' THEN 1 ELSE 0 END)"
        f" AS c_{c}" for c in CSI_CATEGORIES)
    query = f"""
        SELECT {adv} AS scope,
               COUNT(*) AS n,
               AVG(s.score * 1.0) AS average,
               {dist},
               SUM(CASE WHEN s.score >= {DELIGHTED_FROM} THEN 1 ELSE 0 END) AS very,
               SUM(CASE WHEN s.score <= {low_threshold} THEN 1 ELSE 0 END) AS low,
               SUM(CASE WHEN s.score <= {low_threshold} AND s.category IS NULL
                   THEN 1 ELSE 0 END) AS uncategorised,
               {cats}
        FROM score s
        WHERE s.superseded_at IS NULL AND s.rates IN {_in(CSI_RATES)}
          AND s.first_answered_at >= ? AND s.first_answered_at < ?
        {group_by}"""
    return await sql.rows(query, [start, end])


async def _handling(sql: _Sql, start: datetime, end: datetime, group: bool
                    ) -> list[dict[str, Any]]:
    adv, group_by = _scope_select(group, "s.advisor")
    query = f"""
        SELECT {adv} AS scope, COUNT(*) AS n, AVG(s.score * 1.0) AS average
        FROM score s
        WHERE s.superseded_at IS NULL AND s.rates = '{ScoreRates.COMPLAINT.value}'
          AND s.first_answered_at >= ? AND s.first_answered_at < ?
        {group_by}"""
    return await sql.rows(query, [start, end])


async def _served(sql: _Sql, start: datetime, end: datetime, group: bool
                  ) -> list[dict[str, Any]]:
    """Owners with a delivery or a workshop visit in the period, and how many had one before."""
    adv, group_by = _scope_select(group, "served.advisor")
    query = f"""
        SELECT {adv} AS scope,
               COUNT(DISTINCT served.customer_id) AS served,
               COUNT(DISTINCT CASE WHEN served.customer_id IN (
                       SELECT ev.customer_id FROM vehicle ev WHERE ev.delivered_at < ?
                       UNION
                       SELECT pv.customer_id FROM visit px JOIN vehicle pv ON pv.id = px.vehicle_id
                       WHERE px.left_at < ?)
                   THEN served.customer_id END) AS returners,
               COUNT(DISTINCT CASE WHEN served.customer_id IN (
                       SELECT ds.customer_id FROM score ds
                       WHERE ds.superseded_at IS NULL AND ds.rates IN {_in(CSI_RATES)}
                         AND ds.score >= {DELIGHTED_FROM}
                         AND ds.first_answered_at >= ? AND ds.first_answered_at < ?)
                   THEN served.customer_id END) AS delighted
        FROM (
            SELECT v.customer_id AS customer_id,
                   {_advisor("v.sales_advisor", "c.advisor") if group else "''"} AS advisor
            FROM vehicle v {"JOIN customer c ON c.id = v.customer_id" if group else ""}
            WHERE v.delivered_at >= ? AND v.delivered_at < ?
            UNION ALL
            SELECT v.customer_id AS customer_id,
                   {_advisor("x.advisor", "v.sales_advisor", "c.advisor") if group else "''"}
                   AS advisor
            FROM visit x JOIN vehicle v ON v.id = x.vehicle_id
            {"JOIN customer c ON c.id = v.customer_id" if group else ""}
            WHERE x.left_at >= ? AND x.left_at < ?
        ) served
        {group_by}"""
    # A delivery on the 30th is surveyed on the 2nd: its score still counts for the month
    # that served the owner (the figure settles once that month's surveys have closed).
    settle = end + DELIGHT_SETTLE
    return await sql.rows(query, [start, start, start, settle, start, end, start, end])


async def _tickets(sql: _Sql, start: datetime, end: datetime, group: bool
                   ) -> list[dict[str, Any]]:
    """Complaints opened in the period; per advisor through the score that opened them, else
    the car's sales advisor, else the owner's advisor."""
    adv, group_by = _scope_select(group, _advisor("s.advisor", "v.sales_advisor", "c.advisor"))
    query = f"""
        SELECT {adv} AS scope, COUNT(*) AS opened
        FROM ticket t
        JOIN customer c ON c.id = t.customer_id
        LEFT JOIN vehicle v ON v.id = t.vehicle_id
        LEFT JOIN score s ON s.id = t.score_id
        WHERE t.created_at >= ? AND t.created_at < ?
        {group_by}"""
    return await sql.rows(query, [start, end])


def _fill(k: Kpis, part: str, row: dict[str, Any]) -> None:
    if part == "followups":
        k.followups_due = _num(row["due"])
        k.followups_sent = _num(row["sent"])
        k.followups_reached = _num(row["reached"])
        k.responses = _num(row["responses"])
        k.unreachable_owners = _num(row["unreachable"])
    elif part == "scores":
        k.scores = _num(row["n"])
        k.average = _avg(row["average"])
        k.distribution = {n: _num(row[f"s{n}"]) for n in range(1, 11)}
        k.very_satisfied = _num(row["very"])
        k.low_scores = _num(row["low"])
        k.uncategorised_low = _num(row["uncategorised"])
        k.categories = {c: _num(row[f"c_{c}"]) for c in CSI_CATEGORIES}
    elif part == "handling":
        k.handling_scores = _num(row["n"])
        k.handling_average = _avg(row["average"])
    elif part == "served":
        k.owners_served = _num(row["served"])
        k.delighted_owners = _num(row["delighted"])
        k.returning_owners = _num(row["returners"])
    elif part == "tickets":
        k.tickets_opened = _num(row["opened"])


async def compute(period: Period, tz: ZoneInfo, *, by_advisor: bool = False,
                  low_threshold: int = 6) -> KpiReport:
    """Every KPI of ``period`` for the dealership, and per advisor when asked."""
    start, end = period.utc_bounds(tz)
    sql = _Sql()
    scopes: dict[str, Kpis] = {DEALERSHIP: Kpis(DEALERSHIP)}
    passes = [False, True] if by_advisor else [False]
    for group in passes:
        parts: list[tuple[str, list[dict[str, Any]]]] = [
            ("followups", await _followups(sql, start, end, group)),
            ("scores", await _scores(sql, start, end, group, low_threshold)),
            ("handling", await _handling(sql, start, end, group)),
            ("served", await _served(sql, start, end, group)),
            ("tickets", await _tickets(sql, start, end, group)),
        ]
        for part, rows in parts:
            for row in rows:
                key = DEALERSHIP if not group else str(row["scope"] or UNASSIGNED)
                if group and key == DEALERSHIP:
                    key = "'*'"  # an advisor literally called "*" must not overwrite the total
                _fill(scopes.setdefault(key, Kpis(key)), part, row)
    advisors = sorted((k for s, k in scopes.items() if s != DEALERSHIP),
                      key=lambda k: (k.scope == UNASSIGNED, k.scope))
    return KpiReport(period, start, end, scopes[DEALERSHIP], advisors)
