"""Lost-owner recall (流失客户, 003 §2.2 备注, 000 前台2): a care message, not marketing.

An active car with no workshop visit (nor delivery) for ``recall_after_months`` gets a
``lost_recall`` touchpoint: a caring question with the reasons as buttons and a booking
offer. It is a service message (priority 0, follow-up consent), so owners who declined
follow-ups get none. Each lapse is recalled once: a car recalled within the last
``recall_after_months`` is not recalled again. The owner's reason is kept (``recall_answer``)
and reported monthly; "sold the car" marks the car transferred, and the dispatcher then
skips everything still owed about that car. Owners not on Telegram are called (the call list
asks the same question).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Q, Subquery
from tortoise.functions import Count, Max

from bot.config import QuietHours, Settings
from bot.journeys.plans import TouchpointPlan, write_touchpoints
from bot.journeys.timing import add_months, at_local, local_date, parse_hhmm
from bot.schedule import shift_out_of_quiet_hours
from db.models import (
    RecallAnswer,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    VehicleStatus,
    Visit,
)

log = logging.getLogger(__name__)

RECALL = "lost_recall"
SOLD = "sold"
# The reasons of 003 §2.2 备注, in the order the owner sees them (keys of the labels).
REASONS: tuple[str, ...] = ("moved", "other_workshop", "price", "experience", SOLD, "no_need")
CHANNELS = ("telegram", "phone")
PLAN_LIMIT = 20000  # cars recalled per scan at most; the next day's scan takes the rest
TRANSFERRED_REASON = "the car was sold or scrapped"


@dataclass(frozen=True)
class RecallRules:
    tz: ZoneInfo
    quiet: QuietHours | None
    after_months: int = 9
    at: time = time(10, 0)
    valid: timedelta = timedelta(days=14)


def recall_rules(settings: Settings) -> RecallRules:
    return RecallRules(tz=settings.tz, quiet=settings.quiet,
                       after_months=settings.recall_after_months,
                       at=parse_hhmm(settings.recall_time),
                       valid=timedelta(days=settings.recall_valid_days))


def cutoff(today: date, rules: RecallRules) -> date:
    """A car last seen before this local date is lost."""
    return add_months(today, -rules.after_months)


async def lost_cars(now: datetime, rules: RecallRules) -> list[tuple[int, int, datetime]]:
    """(vehicle id, owner id, last seen) of active cars with no visit nor delivery since the
    cutoff, whose owner takes follow-ups and that were not recalled within the period."""
    today = local_date(now, rules.tz)
    since = at_local(cutoff(today, rules), time(0, 0), rules.tz)
    recent_visits = Subquery(Visit.filter(left_at__gte=since).values("vehicle_id"))
    recalled = Subquery(Touchpoint.filter(kind=RECALL, due_at__gte=since,
                                          vehicle_id__not_isnull=True).values("vehicle_id"))
    seen_before = Subquery(Visit.filter(left_at__lt=since).values("vehicle_id"))
    cars = await Vehicle.filter(
        Q(delivered_at__lt=since) | Q(delivered_at__isnull=True, id__in=seen_before),
        status=VehicleStatus.ACTIVE, customer__followups_refused=False,
    ).exclude(id__in=recent_visits).exclude(id__in=recalled).order_by("id") \
        .limit(PLAN_LIMIT).values_list("id", "customer_id", "delivered_at")
    if not cars:
        return []
    last_visit = dict(await Visit.filter(vehicle_id__in=[c[0] for c in cars]).group_by(
        "vehicle_id").annotate(last=Max("left_at")).values_list("vehicle_id", "last"))
    out = []
    for vid, cid, delivered in cars:
        seen = [d for d in (delivered, last_visit.get(vid)) if isinstance(d, datetime)]
        out.append((vid, cid, max(seen) if seen else since))
    return out


def plan(vehicle_id: int, customer_id: int, last_seen: datetime, now: datetime,
         rules: RecallRules) -> TouchpointPlan:
    """Today's recall of one car (due at ``rules.at``, or now when that has passed)."""
    today = local_date(now, rules.tz)
    due = max(at_local(today, rules.at, rules.tz), now)
    due = shift_out_of_quiet_hours(due, rules.tz, rules.quiet)
    months = (today.year - last_seen.year) * 12 + today.month - last_seen.month
    return TouchpointPlan(
        customer_id=customer_id, vehicle_id=vehicle_id, kind=RECALL,
        occasion_key=f"recall:{vehicle_id}:{today:%Y%m}", due_at=due,
        expires_at=due + rules.valid,
        payload={"last_seen_on": local_date(last_seen, rules.tz).isoformat(),
                 "months": months})


async def scan(now: datetime, rules: RecallRules) -> int:
    """Write today's recalls (idempotent: one per car and month); 0 when switched off."""
    if rules.after_months <= 0:
        return 0
    cars = await lost_cars(now, rules)
    await write_touchpoints([plan(v, c, seen, now, rules) for v, c, seen in cars])
    if cars:
        log.info("recall: %d lost car(s) recalled", len(cars))
    return len(cars)


# --------------------------------------------------------------------------- answers


def parse_callback(data: str) -> tuple[int, str] | None:
    """``rc:<touchpoint>:<reason>`` as (touchpoint id, reason); None when malformed."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != "rc" or not parts[1].isdigit() or parts[2] not in REASONS:
        return None
    return int(parts[1]), parts[2]


def buttons(touchpoint_id: int, labels: dict[str, str]) -> list[list[tuple[str, str]]]:
    """The reasons, two a row, as (label, callback data)."""
    pairs = [(labels[r], f"rc:{touchpoint_id}:{r}") for r in REASONS]
    return [pairs[i:i + 2] for i in range(0, len(pairs), 2)]


async def answer(touchpoint_id: int, customer_id: int, reason: str, *, channel: str,
                 now: datetime) -> RecallAnswer | None:
    """Keep the owner's reason (a later answer replaces it); "sold" marks the car
    transferred. None when the touchpoint is not this owner's recall."""
    if reason not in REASONS or channel not in CHANNELS:
        raise ValueError(f"unknown recall reason or channel {reason!r} {channel!r}")
    tp = await Touchpoint.get_or_none(id=touchpoint_id, customer_id=customer_id, kind=RECALL)
    if tp is None:
        return None
    row = await RecallAnswer.get_or_none(touchpoint_id=tp.id)
    if row is None:
        row = await RecallAnswer.create(touchpoint_id=tp.id, customer_id=customer_id,
                                        vehicle_id=tp.vehicle_id, reason=reason,
                                        channel=channel, answered_at=now)
    elif row.reason != reason:
        row.reason = reason
        await row.save(update_fields=["reason"])
    if reason == SOLD and tp.vehicle_id is not None:
        await mark_transferred(tp.vehicle_id, now)
    return row


async def mark_transferred(vehicle_id: int, now: datetime) -> None:
    """The owner sold the car: the file says so (kept, not deleted) and nothing more is
    owed about it (its reminders are skipped now, and by the dispatcher's rule later)."""
    await Vehicle.filter(id=vehicle_id, status=VehicleStatus.ACTIVE).update(
        status=VehicleStatus.TRANSFERRED)
    await skip_for_inactive_cars(now)


async def skip_for_inactive_cars(now: datetime) -> int:
    """The dispatcher's rule: whatever is still owed about a car that was sold or scrapped
    is skipped, with why (owner-level messages, such as a birthday, are not about a car)."""
    inactive = Subquery(Vehicle.filter(status__not=VehicleStatus.ACTIVE).values("id"))
    return await Touchpoint.filter(status=TouchpointStatus.PENDING,
                                   vehicle_id__in=inactive).update(
        status=TouchpointStatus.SKIPPED, status_reason=TRANSFERRED_REASON)


async def reasons(start: datetime, end: datetime, customers: Subquery | None = None
                  ) -> dict[str, dict[str, int]]:
    """Reasons given in ``[start, end)``: reason -> channel -> count (every reason listed);
    ``customers``: only these owners' (a subquery of ids)."""
    out = {r: dict.fromkeys(CHANNELS, 0) for r in REASONS}
    answers = RecallAnswer.filter(answered_at__gte=start, answered_at__lt=end)
    if customers is not None:
        answers = answers.filter(customer_id__in=customers)
    rows = await answers.group_by(
        "reason", "channel").annotate(n=Count("id")).values_list("reason", "channel", "n")
    for reason, channel, n in rows:
        if reason in out and channel in out[reason]:
            out[reason][channel] += int(n)
    return out


async def recalled(start: datetime, end: datetime, customers: Subquery | None = None) -> int:
    """Recalls due in ``[start, end)`` (sent, called or still owed)."""
    rows = Touchpoint.filter(kind=RECALL, due_at__gte=start, due_at__lt=end)
    if customers is not None:
        rows = rows.filter(customer_id__in=customers)
    return await rows.count()
