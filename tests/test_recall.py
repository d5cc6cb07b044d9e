"""Lost-owner recall (流失客户, issue 16 point 4): a care message to owners whose car has not
been to the workshop for 9 months, the reason pressed, "sold the car", the monthly reasons,
and the phone for owners not on Telegram."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from bot import calls, recall
from bot.calls import Answers
from bot.followup import scan_recalls
from bot.journeys.plans import INSURANCE
from db.models import (
    CallOutcome,
    Customer,
    PhoneCall,
    RecallAnswer,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    VehicleStatus,
    Visit,
    VisitKind,
)
from tests.conftest import BotEnv
from tests.test_walking_skeleton import local


async def owner(env: BotEnv, n: int, *, delivered: Any, linked: bool = True
                ) -> tuple[Customer, Vehicle, Any]:
    c = await Customer.create(name=f"车主{n}", phone=f"+86138001300{n:02d}", advisor="李娜",
                              link_token=secrets.token_urlsafe(8),
                              telegram_user_id=5000 + n if linked else None,
                              telegram_chat_id=5000 + n if linked else None)
    v = await Vehicle.create(vin=f"LSVAU2180N00000{n:02d}", customer=c, model="星辰 S7",
                             plate=f"粤A0000{n}", delivered_at=delivered)
    return c, v, env.emu.user(5000 + n, first_name=f"车主{n}") if linked else None


async def test_lost_owner_gets_the_recall_and_sold_stops_the_cars_reminders(
        env: BotEnv) -> None:
    env.clock.set(local(2026, 9, 2, 9, 30))
    lost, car, driver = await owner(env, 1, delivered=local(2025, 6, 1, 10))
    await Visit.create(vehicle=car, kind=VisitKind.MAINTENANCE, left_at=local(2025, 12, 1, 16))
    recent, recent_car, _ = await owner(env, 2, delivered=local(2025, 1, 1, 10))
    await Visit.create(vehicle=recent_car, kind=VisitKind.MAINTENANCE,
                       left_at=local(2026, 7, 1, 16))
    fresh, _, _ = await owner(env, 3, delivered=local(2026, 3, 1, 10))  # bought 6 months ago
    refused, _, _ = await owner(env, 4, delivered=local(2025, 1, 1, 10))
    await Customer.filter(id=refused.id).update(followups_refused=True)
    # an insurance reminder still owed about the lost car
    await Touchpoint.create(customer=lost, vehicle=car, kind=INSURANCE, occasion_key="ins",
                            due_at=local(2026, 9, 5, 10), expires_at=local(2026, 9, 30))

    assert await scan_recalls(env.carebot.services) == 1  # only the lost car (9 months)
    assert await scan_recalls(env.carebot.services) == 0  # once per lapse
    tp = await Touchpoint.get(kind=recall.RECALL)
    assert (tp.customer_id, tp.vehicle_id, tp.priority) == (lost.id, car.id, 0)
    assert tp.payload["last_seen_on"] == "2025-12-01"

    env.clock.set(local(2026, 9, 2, 10, 0))
    report = await env.tick()
    assert report.sent == 1
    message = driver.last_bot_message()
    assert "车主1您好" in message["text"] and "没有回店保养" in message["text"]
    labels = [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert {"搬家了", "在别的店保养", "价格原因", "以往的服务体验", "车已经卖了",
            "暂时不需要", "📅 预约保养"} <= set(labels), labels

    driver.press("车已经卖了")
    await env.poll()
    answer = await RecallAnswer.get(touchpoint_id=tp.id)
    assert (answer.reason, answer.channel) == ("sold", "telegram")
    assert (await Vehicle.get(id=car.id)).status == VehicleStatus.TRANSFERRED
    assert "已转让" in driver.bot_texts()[-1]
    env.clock.set(local(2026, 9, 5, 10, 0))
    await env.tick()
    insurance = await Touchpoint.get(kind=INSURANCE)
    assert (insurance.status, insurance.status_reason) == (TouchpointStatus.SKIPPED,
                                                          recall.TRANSFERRED_REASON)
    # a transferred car is never recalled again
    env.clock.set(local(2027, 9, 2, 9, 30))
    assert await scan_recalls(env.carebot.services) == 2  # the other two are lost by now
    assert not await Touchpoint.filter(kind=recall.RECALL, vehicle_id=car.id,
                                       due_at__gte=local(2027, 1, 1)).exists()

    start, end = local(2026, 9, 1), local(2026, 10, 1)
    reasons = await recall.reasons(start, end)
    assert reasons["sold"] == {"telegram": 1, "phone": 0}
    assert sum(sum(v.values()) for v in reasons.values()) == 1
    assert fresh.id and recent.id  # (never recalled in 2026)


async def test_owner_not_on_telegram_is_asked_on_the_phone(env: BotEnv) -> None:
    env.clock.set(local(2026, 9, 2, 9, 30))
    offline, car, _ = await owner(env, 5, delivered=local(2025, 10, 1, 10), linked=False)
    assert await scan_recalls(env.carebot.services) == 1
    env.clock.set(local(2026, 9, 2, 10, 0))
    await env.tick()
    rules = calls.call_rules(env.settings)
    assert await calls.scan(env.clock.now(), rules) == 1
    call = await PhoneCall.get(customer_id=offline.id)
    assert call.kind == recall.RECALL
    await calls.record(call.id, CallOutcome.REACHED, staff=None, now=env.clock.now(),
                       rules=rules, answers=Answers(reason="price", comment="太贵"))
    answer = await RecallAnswer.get(customer_id=offline.id)
    assert (answer.reason, answer.channel) == ("price", "phone")
    assert (await Vehicle.get(id=car.id)).status == VehicleStatus.ACTIVE
    reasons = await recall.reasons(env.clock.now() - timedelta(days=1),
                                   env.clock.now() + timedelta(days=1))
    assert reasons["price"] == {"telegram": 0, "phone": 1}


async def test_recall_off_writes_nothing(env: BotEnv) -> None:
    env.clock.set(local(2026, 9, 2, 9, 30))
    await owner(env, 6, delivered=local(2024, 1, 1, 10))
    rules = recall.recall_rules(env.settings.model_copy(update={"recall_after_months": 0}))
    assert await recall.scan(env.clock.now(), rules) == 0
    assert not await Touchpoint.filter(kind=recall.RECALL).exists()
