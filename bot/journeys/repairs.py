"""Recommended repairs (建议维修项目, 003 §3.2 用户维修项目提醒; issue 17, point 3).

A visit may list work the workshop recommended and the owner postponed (the visits import's
``recommended_repairs`` column, or the API's); each item is reminded ``repair_reminder_days``
after the visit (by the daily scan, with "Book a visit") and dropped once a later visit
lists it in ``repairs_done``: its unsent reminder is skipped and no new one is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.transactions import in_transaction

from db.models import RecommendedRepair, Touchpoint, TouchpointStatus, Visit

REPAIR_REMINDER = "repair_reminder"
DONE_REASON = "a later visit did the recommended work"
MAX_ITEMS = 20
MAX_ITEM_LENGTH = 100
# A visit imported late still gets its reminders while they are this recent; older
# recommendations (a history import) are kept but not reminded.
LATE_DAYS = 30
_SPLIT = re.compile(r"[;；、\n|]+")


def parse_items(value: object) -> tuple[str, ...]:
    """``"刹车片；轮胎"`` or ``["刹车片", "轮胎"]`` -> ("刹车片", "轮胎"): distinct, in order.

    A ValueError says what is wrong (too many, too long)."""
    if value is None:
        return ()
    parts = [str(v) for v in value] if isinstance(value, list) else _SPLIT.split(str(value))
    items: list[str] = []
    for part in (p.strip() for p in parts):
        if not part or any(same(part, i) for i in items):
            continue
        if len(part) > MAX_ITEM_LENGTH:
            raise ValueError(f"{part[:20]!r}… is {len(part)} characters; at most "
                             f"{MAX_ITEM_LENGTH} an item")
        items.append(part)
    if len(items) > MAX_ITEMS:
        raise ValueError(f"{len(items)} items; at most {MAX_ITEMS} (separate them with ；)")
    return tuple(items)


def same(a: str, b: str) -> bool:
    """Two items name the same work (letter case and spaces aside)."""
    return _norm(a) == _norm(b)


def _norm(item: str) -> str:
    return re.sub(r"\s+", "", item).casefold()


def remind_on(left_on: date, today: date, delay_days: int) -> date:
    """``delay_days`` after the visit; a late-imported visit's reminder that is due already
    goes tomorrow (the day's scan may have run), an old one's never (it stays in the past)."""
    day = left_on + timedelta(days=delay_days)
    if today - timedelta(days=LATE_DAYS) <= day <= today:
        return today + timedelta(days=1)
    return day


@dataclass(frozen=True)
class VisitRepairs:
    """One stored visit's recommended and done items, as plain values."""

    visit_id: int
    vehicle_id: int
    customer_id: int
    left_on: date
    recommended: tuple[str, ...]
    done: tuple[str, ...]


async def record_repairs(visits: Sequence[VisitRepairs], *, today: date, now: datetime,
                         delay_days: int) -> int:
    """Store the visits' recommendations (once: unique per visit and item) and mark done the
    earlier open ones a visit lists as done; returns how many were marked done."""
    wanted = [v for v in visits if v.recommended or v.done]
    if not wanted:
        return 0
    marked = 0
    async with in_transaction():
        await RecommendedRepair.bulk_create([
            RecommendedRepair(visit_id=v.visit_id, vehicle_id=v.vehicle_id,
                              customer_id=v.customer_id, item=item, recommended_on=v.left_on,
                              remind_on=remind_on(v.left_on, today, delay_days),
                              created_at=now)
            for v in wanted for item in v.recommended
        ], ignore_conflicts=True)
        for v in sorted((v for v in wanted if v.done), key=lambda v: v.left_on):
            marked += await _mark_done(v, now)
    return marked


async def _mark_done(v: VisitRepairs, now: datetime) -> int:
    """Open items of the car recommended at a visit before ``v`` that ``v`` did."""
    earlier = await Visit.filter(vehicle_id=v.vehicle_id).values_list("id", "left_at")
    before = {vid for vid, _ in earlier if vid != v.visit_id}
    left = {vid: at for vid, at in earlier}
    mine = left.get(v.visit_id)
    if mine is not None:
        before = {vid for vid in before if left[vid] <= mine}
    open_items = await RecommendedRepair.filter(
        vehicle_id=v.vehicle_id, done_on__isnull=True, visit_id__in=list(before)
    ).values_list("id", "item")
    ids = [rid for rid, item in open_items if any(same(item, d) for d in v.done)]
    if not ids:
        return 0
    await RecommendedRepair.filter(id__in=ids).update(done_visit_id=v.visit_id,
                                                      done_on=v.left_on)
    await Touchpoint.filter(
        kind=REPAIR_REMINDER, status=TouchpointStatus.PENDING,
        occasion_key__in=[repair_key(i) for i in ids],
    ).update(status=TouchpointStatus.SKIPPED, status_reason=DONE_REASON, updated_at=now)
    return len(ids)


def repair_key(repair_id: int) -> str:
    return f"repair:{repair_id}"
