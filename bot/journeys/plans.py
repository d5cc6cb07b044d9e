"""Delivery and service journeys: turn a recorded cause into touchpoint rows.

Planning is pure (``plan_*`` functions return :class:`TouchpointPlan`); writing is one bulk
insert that ignores rows already present, so re-recording a cause writes nothing new.

Every touchpoint has its own window (``due_at`` .. ``expires_at``): the dispatcher records it
as expired rather than sending it stale. Days are local calendar days after the cause (day 0
is the day of the delivery or of leaving the workshop); see docs/touchpoints.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from bot.config import QuietHours, Settings
from bot.journeys.mileage import Interval, interval_for, parse_intervals
from bot.journeys.timing import add_months, at_local, end_of_local_day, local_date, parse_hhmm
from bot.schedule import shift_out_of_quiet_hours
from db.models import Touchpoint, TouchpointStatus

CHECKIN = "delivery_checkin"
FOLLOWUP_3D = "followup_3d"
VISIT_7D = "visit_7d"
FIRST_SERVICE = "first_service_reminder"
SERVICE_FOLLOWUP = "service_followup"
SERVICE_DUE = "service_due"
BIRTHDAY = "birthday"
INSURANCE = "insurance_expiry"
LICENCE = "licence_expiry"
HOLIDAY = "holiday"
BOOKING_REMINDER = "booking_reminder"
SECOND_FOLLOWUP = "second_followup"  # 第二次跟踪 (000 篇四 §5): off unless configured
BOOKING_NO_SHOW = "booking_no_show"  # a missed booking: a new time offered (issue 17)
JOURNEY_KINDS = (CHECKIN, FOLLOWUP_3D, VISIT_7D, FIRST_SERVICE)
SERVICE_PRIORITY = 0
GREETING_PRIORITY = 5  # birthdays and holidays: after service messages, before marketing
MARKETING_PRIORITY = 10
# Visit kinds after which the next routine service can be computed from the interval.
ROUTINE_VISITS = ("first_service", "maintenance")


@dataclass(frozen=True)
class JourneyRules:
    """The timing rules a journey needs, taken from Settings by the caller."""

    tz: ZoneInfo
    quiet: QuietHours | None
    checkin_after: timedelta = timedelta(hours=2)
    checkin_expiry: timedelta = timedelta(hours=12)
    followup_day: int = 3
    followup_time: time = time(10, 0)
    followup_grace_days: int = 1
    visit_day: int = 7
    visit_time: time = time(10, 0)
    visit_grace_days: int = 1
    first_service_day: int = 18
    first_service_time: time = time(10, 0)
    first_service_deadline_day: int = 21
    service_followup_day: int = 2
    service_followup_time: time = time(10, 0)
    service_followup_deadline_day: int = 3
    major_repair_followup_days: int = 7
    service_interval_months: int = 6
    service_interval_km: int = 10000
    service_due_lead_days: int = 7
    service_due_time: time = time(10, 0)
    service_due_grace_days: int = 14
    second_followup_day: int = 0  # 0: no second follow-up
    second_followup_time: time = time(10, 0)
    # per model (casefolded name): the interval when it differs from the one above
    service_intervals: dict[str, Interval] = field(default_factory=dict)
    repair_reminder_days: int = 30  # a postponed repair (建议维修项目) is reminded after

    def window(self, origin: date, day: int, at: time, last_day: int) -> tuple[datetime, datetime]:
        """(due, expires) for local day ``day`` after ``origin`` at ``at``, valid until the
        end of local day ``last_day``; a due time in quiet hours moves to when they end."""
        due = shift_out_of_quiet_hours(
            at_local(origin + timedelta(days=day), at, self.tz), self.tz, self.quiet
        )
        return due, end_of_local_day(origin + timedelta(days=max(last_day, day)), self.tz)


@dataclass(frozen=True)
class TouchpointPlan:
    customer_id: int
    vehicle_id: int | None
    kind: str
    occasion_key: str
    due_at: datetime
    expires_at: datetime | None
    priority: int = SERVICE_PRIORITY
    payload: dict[str, Any] = field(default_factory=dict)


def delivery_key(vin: str, delivered_at: datetime) -> str:
    """One occasion per car per delivery: a resold car delivered again is a new occasion."""
    return f"{vin}:{delivered_at.astimezone(UTC):%Y%m%dT%H%M}"


def plan_delivery(
    *, customer_id: int, vehicle_id: int, vin: str, delivered_at: datetime, rules: JourneyRules
) -> list[TouchpointPlan]:
    """Touchpoints owed for a delivery (003 §2.1), all under the delivery's occasion key.

    The 2-hour check-in is held until quiet hours end and expires ``checkin_expiry`` after the
    time it would have gone out. Then the 3-day follow-up (with the satisfaction question),
    the 7-day care visit and the first-service (走合保养) reminder, each at its local day and
    time and valid until the end of its last day: a delivery imported days late gets no stale
    "how is the car?".
    """
    due = shift_out_of_quiet_hours(delivered_at + rules.checkin_after, rules.tz, rules.quiet)
    key = delivery_key(vin, delivered_at)
    origin = local_date(delivered_at, rules.tz)
    payload = {"vin": vin, "delivered_on": origin.isoformat()}
    plans = [
        TouchpointPlan(
            customer_id=customer_id,
            vehicle_id=vehicle_id,
            kind=CHECKIN,
            occasion_key=key,
            due_at=due,
            expires_at=due + rules.checkin_expiry,
        )
    ]
    for kind, day, at, last in (
        (FOLLOWUP_3D, rules.followup_day, rules.followup_time,
         rules.followup_day + rules.followup_grace_days),
        (VISIT_7D, rules.visit_day, rules.visit_time, rules.visit_day + rules.visit_grace_days),
        (FIRST_SERVICE, rules.first_service_day, rules.first_service_time,
         rules.first_service_deadline_day),
    ):
        due, expires = rules.window(origin, day, at, last)
        plans.append(TouchpointPlan(
            customer_id=customer_id, vehicle_id=vehicle_id, kind=kind, occasion_key=key,
            due_at=due, expires_at=expires, payload=payload,
        ))
    return plans


def visit_key(visit_id: int) -> str:
    return f"visit:{visit_id}"


def next_service(
    *, kind: str, left_on: date, mileage: int | None, next_on: date | None,
    next_km: int | None, rules: JourneyRules, model: str = "",
) -> tuple[date | None, int | None]:
    """When the next routine service is due: as the workshop wrote it, else (after a routine
    service) the interval of the car's model (``service_intervals``, else the default) from
    this visit; unknown after a repair."""
    if next_on is None and next_km is None and kind in ROUTINE_VISITS:
        interval = interval_for(model, rules.service_intervals, Interval(
            rules.service_interval_months, rules.service_interval_km))
        if interval.months:
            next_on = add_months(left_on, interval.months)
        if mileage is not None and interval.km:
            next_km = mileage + interval.km
    return next_on, next_km


def plan_visit(
    *, visit_id: int, customer_id: int, vehicle_id: int, kind: str, left_at: datetime,
    major_repair: bool, mileage: int | None, next_on: date | None, next_km: int | None,
    advisor: str, rules: JourneyRules, model: str = "",
) -> list[TouchpointPlan]:
    """Touchpoints owed for a workshop visit (003 §2.2 a, 001).

    The service follow-up (with the satisfaction question) on day ``service_followup_day``
    after the car left, valid until the end of ``service_followup_deadline_day`` (a major
    repair: ``major_repair_followup_days``). It names the job and when the next service is
    due. The service-due reminder is not planned here: it follows the car's forecast (by
    date or mileage, whichever first; ``bot/journeys/forecasts.py``) and the daily scan.
    """
    origin = local_date(left_at, rules.tz)
    last = rules.major_repair_followup_days if major_repair else rules.service_followup_deadline_day
    due, expires = rules.window(origin, rules.service_followup_day, rules.service_followup_time,
                                last)
    next_on, next_km = next_service(kind=kind, left_on=origin, mileage=mileage, next_on=next_on,
                                    next_km=next_km, rules=rules, model=model)
    payload: dict[str, Any] = {
        "visit_id": visit_id, "visit_kind": kind, "left_on": origin.isoformat(),
        "major_repair": major_repair, "advisor": advisor, "mileage": mileage,
        "next_service_on": next_on.isoformat() if next_on else None,
        "next_service_km": next_km,
    }
    key = visit_key(visit_id)
    plans = [TouchpointPlan(
        customer_id=customer_id, vehicle_id=vehicle_id, kind=SERVICE_FOLLOWUP,
        occasion_key=key, due_at=due, expires_at=expires, payload=payload,
    )]
    if rules.second_followup_day > 0:
        # 第二次跟踪: about a week after the first, a care contact of its own (000 篇四 §5)
        due, expires = rules.window(origin, rules.second_followup_day,
                                    rules.second_followup_time, rules.second_followup_day + 2)
        plans.append(TouchpointPlan(
            customer_id=customer_id, vehicle_id=vehicle_id, kind=SECOND_FOLLOWUP,
            occasion_key=key, due_at=due, expires_at=expires, payload=payload,
        ))
    return plans


async def write_touchpoints(
    plans: Iterable[TouchpointPlan], *, batch_size: int = 1000, now: datetime | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> None:
    """Insert the planned rows; rows whose (customer, kind, occasion_key) exist are left alone.

    With ``now`` the rows go in as one raw ``INSERT … ON CONFLICT DO NOTHING`` run with
    ``executemany`` on ``conn`` (default: the current connection or transaction): building an
    ORM instance costs about 110 µs a row, which an import of 100,000 deliveries (400,000
    touchpoints) cannot afford. Without ``now``, the ORM's bulk insert.
    """
    if now is None:
        rows = [
            Touchpoint(
                customer_id=p.customer_id,
                vehicle_id=p.vehicle_id,
                kind=p.kind,
                occasion_key=p.occasion_key,
                due_at=p.due_at,
                expires_at=p.expires_at,
                priority=p.priority,
                payload=p.payload,
            )
            for p in plans
        ]
        if rows:
            await Touchpoint.bulk_create(rows, batch_size=batch_size, ignore_conflicts=True)
        return
    conn = conn or Touchpoint._choose_db(True)
    postgres = conn.capabilities.dialect == "postgres"
    columns = ("customer_id", "vehicle_id", "kind", "occasion_key", "priority", "due_at",
               "expires_at", "status", "payload", "created_at", "updated_at")
    marks = [f"${i}" for i in range(1, len(columns) + 1)] if postgres else ["?"] * len(columns)
    if postgres:  # asyncpg takes JSON as text, cast to the column's jsonb
        marks[columns.index("payload")] = f"CAST(${columns.index('payload') + 1} AS JSONB)"
    sql = (
        'INSERT INTO "touchpoint" ({}, "status_reason", "attempts", "last_error") '
        "VALUES ({}, '', 0, '') ON CONFLICT DO NOTHING"
    ).format(", ".join(f'"{c}"' for c in columns), ", ".join(marks))
    pending = TouchpointStatus.PENDING.value
    # A delivery's touchpoints share one payload dict: encode each dict once, not per row
    # (the plans keep every payload alive here, so its id() is not reused meanwhile).
    encoded: dict[int, str] = {}

    def as_json(payload: dict[str, Any]) -> str:
        text = encoded.get(id(payload))
        if text is None:
            text = encoded[id(payload)] = json.dumps(payload, ensure_ascii=False)
        return text

    values = [
        [p.customer_id, p.vehicle_id, p.kind, p.occasion_key, p.priority, p.due_at, p.expires_at,
         pending, as_json(p.payload), now, now]
        for p in plans
    ]
    for first in range(0, len(values), batch_size):
        await conn.execute_many(sql, values[first : first + batch_size])


def journey_rules(settings: Settings) -> JourneyRules:
    return JourneyRules(
        tz=settings.tz,
        quiet=settings.quiet,
        checkin_after=timedelta(hours=settings.checkin_after_hours),
        checkin_expiry=timedelta(hours=settings.checkin_expiry_hours),
        followup_day=settings.followup_day,
        followup_time=parse_hhmm(settings.followup_time),
        followup_grace_days=settings.followup_grace_days,
        visit_day=settings.visit_day,
        visit_time=parse_hhmm(settings.visit_time),
        visit_grace_days=settings.visit_grace_days,
        first_service_day=settings.first_service_day,
        first_service_time=parse_hhmm(settings.first_service_time),
        first_service_deadline_day=settings.first_service_deadline_day,
        service_followup_day=settings.service_followup_day,
        service_followup_time=parse_hhmm(settings.service_followup_time),
        service_followup_deadline_day=settings.service_followup_deadline_day,
        major_repair_followup_days=settings.major_repair_followup_days,
        service_interval_months=settings.service_interval_months,
        service_interval_km=settings.service_interval_km,
        service_due_lead_days=settings.service_due_lead_days,
        service_due_time=parse_hhmm(settings.service_due_time),
        service_due_grace_days=settings.service_due_grace_days,
        second_followup_day=settings.second_followup_day,
        second_followup_time=parse_hhmm(settings.second_followup_time),
        service_intervals=parse_intervals(settings.service_intervals),
        repair_reminder_days=settings.repair_reminder_days,
    )
