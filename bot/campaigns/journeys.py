"""Delivery and service journeys: turn a recorded cause into touchpoint rows.

Planning is pure (``plan_*`` functions return :class:`TouchpointPlan`); writing is one bulk
insert that ignores rows already present, so re-recording a cause writes nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import QuietHours, Settings
from bot.schedule import shift_out_of_quiet_hours
from db.models import Touchpoint

CHECKIN = "delivery_checkin"
SERVICE_PRIORITY = 0
MARKETING_PRIORITY = 10


@dataclass(frozen=True)
class JourneyRules:
    """The timing rules a journey needs, taken from Settings by the caller."""

    tz: ZoneInfo
    quiet: QuietHours | None
    checkin_after: timedelta = timedelta(hours=2)
    checkin_expiry: timedelta = timedelta(hours=12)


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
    return f"{vin}:{delivered_at.astimezone(timezone.utc):%Y%m%dT%H%M}"


def plan_delivery(
    *, customer_id: int, vehicle_id: int, vin: str, delivered_at: datetime, rules: JourneyRules
) -> list[TouchpointPlan]:
    """Touchpoints owed for a delivery: the check-in 2 hours after it (003 §2.1).

    The check-in is held until quiet hours end, and expires ``checkin_expiry`` after the time
    it would have gone out: a delivery imported days late gets no stale "how is the car?".
    """
    due = shift_out_of_quiet_hours(delivered_at + rules.checkin_after, rules.tz, rules.quiet)
    return [
        TouchpointPlan(
            customer_id=customer_id,
            vehicle_id=vehicle_id,
            kind=CHECKIN,
            occasion_key=delivery_key(vin, delivered_at),
            due_at=due,
            expires_at=due + rules.checkin_expiry,
        )
    ]


async def write_touchpoints(plans: Iterable[TouchpointPlan], *, batch_size: int = 1000) -> None:
    """Insert the planned rows; rows whose (customer, kind, occasion_key) exist are left alone."""
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


def journey_rules(settings: Settings) -> JourneyRules:
    return JourneyRules(
        tz=settings.tz,
        quiet=settings.quiet,
        checkin_expiry=timedelta(hours=settings.checkin_expiry_hours),
    )
