"""第二次跟踪 (issue 16 point 5, 000 篇四 §5): a second care contact about a week after a
workshop visit, when configured; none by default."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.config import Settings
from bot.journeys.plans import (
    SECOND_FOLLOWUP,
    SERVICE_FOLLOWUP,
    journey_rules,
    plan_visit,
    write_touchpoints,
)
from db.models import Touchpoint, TouchpointStatus
from tests.conftest import BotEnv
from tests.test_survey import linked_owner
from tests.test_walking_skeleton import local


def plans(settings: Settings, left_at: datetime) -> dict[str, Any]:
    return {p.kind: p for p in plan_visit(
        visit_id=7, customer_id=1, vehicle_id=2, kind="repair", left_at=left_at,
        major_repair=False, mileage=5000, next_on=None, next_km=None, advisor="李娜",
        rules=journey_rules(settings))}


def test_off_by_default_and_a_week_after_when_configured() -> None:
    left = local(2026, 11, 3, 16, 0)
    assert SECOND_FOLLOWUP not in plans(Settings(_env_file=None), left)
    on = plans(Settings(_env_file=None, second_followup_day=9,
                        second_followup_time="15:30"), left)
    second = on[SECOND_FOLLOWUP]
    assert second.due_at == local(2026, 11, 12, 15, 30)
    assert second.expires_at == local(2026, 11, 15, 0, 0)
    assert second.occasion_key == on[SERVICE_FOLLOWUP].occasion_key  # one per visit
    assert second.payload["visit_kind"] == "repair"


async def test_the_second_follow_up_reaches_the_owner(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 17, 0))
    driver, customer, vehicle = await linked_owner(env)
    settings = env.settings.model_copy(update={"second_followup_day": 9})
    plan = plans(settings, local(2026, 11, 3, 16, 0))[SECOND_FOLLOWUP]
    await write_touchpoints([plan.__class__(**{**plan.__dict__, "customer_id": customer.id,
                                               "vehicle_id": vehicle.id})])
    await write_touchpoints([plan.__class__(**{**plan.__dict__, "customer_id": customer.id,
                                               "vehicle_id": vehicle.id})])  # idempotent
    env.clock.set(local(2026, 11, 12, 10, 0))
    report = await env.tick()
    assert report.sent == 1
    text = driver.bot_texts()[-1]
    assert "张伟您好" in text and "一周多" in text and "星辰 S7" in text
    tp = await Touchpoint.get(kind=SECOND_FOLLOWUP)
    assert tp.status == TouchpointStatus.SENT
