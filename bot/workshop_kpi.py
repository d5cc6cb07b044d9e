"""The dealership's workshop figures (issue 17, point 4; 000 篇一, 003 §4.1): 首保率, 返修率,
预约率, 续保率, 基盘客户数, for any period, per advisor and for the dealership.

Counted in the database where the set is large (基盘客户数 over every car); read row by row
only for what one period holds (its deliveries, its visits and the repairs that followed
them, its insurance leads), which a dealership counts in hundreds a month. Formulas and
attributions: docs/kpi.md ("Workshop figures"); keep the two in step.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import Tortoise

from bot.bookings import booking_rate
from bot.journeys.timing import add_months
from bot.periods import Period
from bot.threads_kpi import RENEWAL_OUTCOMES
from db.models import ThreadKind, VisitKind

DEALERSHIP = "*"
UNASSIGNED = ""
# Jobs whose return for a repair is a comeback (返修); an accident is not the workshop's.
JOBS: tuple[str, ...] = (VisitKind.FIRST_SERVICE.value, VisitKind.MAINTENANCE.value,
                         VisitKind.REPAIR.value, VisitKind.WARRANTY.value)
COMEBACKS: tuple[str, ...] = (VisitKind.REPAIR.value, VisitKind.WARRANTY.value)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class WorkshopKpis:
    """The workshop figures of one scope for one period."""

    scope: str
    first_service_due: int = 0  # deliveries whose first-service window closed in the period
    first_service_done: int = 0  # of those, first service done within the window
    jobs: int = 0  # visits of the period (not accidents)
    comebacks: int = 0  # of those, the car back for a repair within the set days
    visits: int = 0  # 预约率: the period's visits (bot.bookings.booking_rate)
    booked_visits: int = 0  # of those, booked
    renewals_decided: int = 0  # insurance leads of the period closed with a renewal outcome
    renewed_here: int = 0
    base_12m: int = 0  # active cars with a visit in the 12 months before the period's end
    base_24m: int = 0

    @property
    def first_service_rate(self) -> float | None:
        return _ratio(self.first_service_done, self.first_service_due)

    @property
    def repeat_repair_rate(self) -> float | None:
        return _ratio(self.comebacks, self.jobs)

    @property
    def booking_rate(self) -> float | None:
        return _ratio(self.booked_visits, self.visits)

    @property
    def renewal_rate(self) -> float | None:
        return _ratio(self.renewed_here, self.renewals_decided)

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_service_due": self.first_service_due,
            "first_service_done": self.first_service_done,
            "first_service_rate": self.first_service_rate,
            "jobs": self.jobs, "comebacks": self.comebacks,
            "repeat_repair_rate": self.repeat_repair_rate,
            "visits": self.visits, "booked_visits": self.booked_visits,
            "booking_rate": self.booking_rate,
            "renewals_decided": self.renewals_decided, "renewed_here": self.renewed_here,
            "renewal_rate": self.renewal_rate,
            "active_base_12m": self.base_12m, "active_base_24m": self.base_24m,
        }


@dataclass(frozen=True)
class WorkshopRules:
    first_service_days: int = 90  # a first service counts when done this soon after delivery
    repeat_repair_days: int = 30  # a repair this soon after a job is a comeback (返修)
    booking_visit_days: int = 7  # 预约率: a booking this many days before the visit counts


@dataclass
class WorkshopReport:
    dealership: WorkshopKpis
    advisors: dict[str, WorkshopKpis] = field(default_factory=dict)

    def scope(self, name: str) -> WorkshopKpis:
        if name == DEALERSHIP:
            return self.dealership
        return self.advisors.setdefault(name, WorkshopKpis(name))


async def _rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "postgres":
        n = 0

        def number(_: re.Match[str]) -> str:
            nonlocal n
            n += 1
            return f"${n}"

        sql = re.sub(r"\?", number, sql)
    return list(await conn.execute_query_dict(sql, params))


def _aware(value: Any) -> datetime:
    """A raw column value as an aware UTC datetime (SQLite hands back ISO text)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, datetime)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _who(*names: Any) -> str:
    return next((str(n) for n in names if n), UNASSIGNED)


async def _first_services(report: WorkshopReport, start: datetime, end: datetime,
                          rules: WorkshopRules) -> None:
    """首保率: cars whose first-service window (``first_service_days`` after delivery) closed
    in the period, and how many had their first service within it; the car's sales
    advisor's (else the owner's advisor's)."""
    window = timedelta(days=rules.first_service_days)
    rows = await _rows(f"""
        SELECT v.delivered_at AS delivered, v.sales_advisor AS sales, c.advisor AS owner_adv,
               (SELECT MIN(x.left_at) FROM visit x WHERE x.vehicle_id = v.id
                  AND x.kind = '{VisitKind.FIRST_SERVICE.value}') AS first
        FROM vehicle v JOIN customer c ON c.id = v.customer_id
        WHERE v.delivered_at >= ? AND v.delivered_at < ? AND v.status <> 'scrapped'""",
        [start - window, end - window])
    for row in rows:
        delivered = _aware(row["delivered"])
        done = row["first"] is not None and _aware(row["first"]) <= delivered + window
        for k in (report.dealership, report.scope(_who(row["sales"], row["owner_adv"]))):
            k.first_service_due += 1
            k.first_service_done += int(done)


async def _comebacks(report: WorkshopReport, start: datetime, end: datetime,
                     rules: WorkshopRules) -> None:
    """返修率: the period's jobs (visits but accidents), and how many were followed by a
    repair or warranty visit of the same car within ``repeat_repair_days``; the job's
    advisor's. It settles that many days after the period ends."""
    later = timedelta(days=rules.repeat_repair_days)
    jobs_in = "(" + ", ".join(f"'{k}'" for k in JOBS) + ")"
    back_in = "(" + ", ".join(f"'{k}'" for k in COMEBACKS) + ")"
    jobs = await _rows(f"""
        SELECT x.id AS id, x.vehicle_id AS car, x.left_at AS left_at, x.advisor AS adv,
               v.sales_advisor AS sales, c.advisor AS owner_adv
        FROM visit x JOIN vehicle v ON v.id = x.vehicle_id JOIN customer c ON c.id = v.customer_id
        WHERE x.left_at >= ? AND x.left_at < ? AND x.kind IN {jobs_in}""", [start, end])
    returns: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for row in await _rows(f"""
        SELECT y.id AS id, y.vehicle_id AS car, y.left_at AS left_at FROM visit y
        WHERE y.kind IN {back_in} AND y.left_at > ? AND y.left_at <= ?
          AND y.vehicle_id IN (SELECT x.vehicle_id FROM visit x
                               WHERE x.left_at >= ? AND x.left_at < ?)""",
                           [start, end + later, start, end]):
        returns[int(row["car"])].append((int(row["id"]), _aware(row["left_at"])))
    for row in jobs:
        left = _aware(row["left_at"])
        back = any(vid != row["id"] and left < at <= left + later
                   for vid, at in returns.get(int(row["car"]), []))
        for k in (report.dealership, report.scope(_who(row["adv"], row["sales"],
                                                       row["owner_adv"]))):
            k.jobs += 1
            k.comebacks += int(back)


async def _active_base(report: WorkshopReport, period: Period, tz: ZoneInfo) -> None:
    """基盘客户数: active cars with a visit in the 12 (24) months before the period's end; the
    owner's advisor's. One aggregate over the visits' (left_at, vehicle_id) index."""
    end = datetime.combine(period.end, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    since = {months: datetime.combine(add_months(period.end, -months), datetime.min.time(),
                                      tzinfo=tz).astimezone(UTC) for months in (12, 24)}
    for months, first in since.items():
        rows = await _rows("""
            SELECT c.advisor AS adv, COUNT(*) AS n FROM vehicle v
            JOIN customer c ON c.id = v.customer_id
            WHERE v.status = 'active' AND v.id IN (
                SELECT x.vehicle_id FROM visit x WHERE x.left_at >= ? AND x.left_at < ?)
            GROUP BY c.advisor""", [first, end])
        for row in rows:
            n = int(row["n"] or 0)
            for k in (report.dealership, report.scope(_who(row["adv"]))):
                if months == 12:
                    k.base_12m += n
                else:
                    k.base_24m += n


async def _renewals(report: WorkshopReport, start: datetime, end: datetime) -> None:
    """续保率: the period's insurance leads closed with a renewal outcome, renewed with us /
    decided; the owner's advisor's."""
    outcomes = "(" + ", ".join(f"'{o}'" for o in RENEWAL_OUTCOMES) + ")"
    rows = await _rows(f"""
        SELECT c.advisor AS adv, t.outcome AS outcome, COUNT(*) AS n FROM thread t
        JOIN customer c ON c.id = t.customer_id
        WHERE t.kind = '{ThreadKind.INSURANCE_LEAD.value}' AND t.outcome IN {outcomes}
          AND t.created_at >= ? AND t.created_at < ?
        GROUP BY c.advisor, t.outcome""", [start, end])
    for row in rows:
        n = int(row["n"] or 0)
        for k in (report.dealership, report.scope(_who(row["adv"]))):
            k.renewals_decided += n
            k.renewed_here += n if row["outcome"] == "renewed_here" else 0


async def _booking_rates(report: WorkshopReport, period: Period, tz: ZoneInfo,
                         rules: WorkshopRules, by_advisor: bool) -> None:
    """预约率: the bookings feature's count of the period's visits that were booked
    (``bot.bookings.booking_rate``), for the dealership and for each advisor's visits."""
    scopes = [(DEALERSHIP, report.dealership)]
    if by_advisor:
        scopes += list(report.advisors.items())
    for name, k in scopes:
        got = await booking_rate(period.start, period.end, tz,
                                 advisor=None if name == DEALERSHIP else name,
                                 visit_days=rules.booking_visit_days)
        k.visits, k.booked_visits = got.visits, got.booked


async def compute_workshop(period: Period, tz: ZoneInfo, rules: WorkshopRules, *,
                           by_advisor: bool = False) -> WorkshopReport:
    """The workshop figures of ``period`` for the dealership (and per advisor when asked)."""
    start, end = period.utc_bounds(tz)
    report = WorkshopReport(WorkshopKpis(DEALERSHIP))
    await _first_services(report, start, end, rules)
    await _comebacks(report, start, end, rules)
    await _active_base(report, period, tz)
    await _renewals(report, start, end)
    await _booking_rates(report, period, tz, rules, by_advisor)
    if not by_advisor:
        report.advisors = {}
    return report


def previous_period(period: Period) -> Period:
    """The period before ``period``, of the same kind: the month, the week, or as many days."""
    if period.start.day == 1 and period.end == add_months(period.start, 1):
        start = add_months(period.start, -1)
        return Period(start, period.start, f"{start:%Y-%m}")
    days = (period.end - period.start).days
    start = period.start - timedelta(days=days)
    if days == 7 and period.start.isoweekday() == 1:
        year, week, _ = start.isocalendar()
        return Period(start, period.start, f"{year:04d}-W{week:02d}")
    return Period(start, period.start, f"{start}..{period.start - timedelta(days=1)}")
