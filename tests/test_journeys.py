"""The delivery journey end to end: check-in, 3-day follow-up, 7-day visit, first-service
reminder, through the emulator on the fake clock; and consent, reachability and quiet hours
for every kind of touchpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.intake import import_deliveries_file
from bot.journeys.plans import (
    CHECKIN,
    FIRST_SERVICE,
    FOLLOWUP_3D,
    VISIT_7D,
    journey_rules,
)
from bot.script_check import SAMPLE_PAYLOADS
from db.models import Customer, Touchpoint, TouchpointStatus, Vehicle
from tests.conftest import BotEnv, make_settings
from tests.test_walking_skeleton import (
    VIN_A,
    delivery_row,
    link_by_contact,
    local,
    write_csv,
)

ALL_KINDS = sorted(set(SAMPLE_PAYLOADS))


async def _import(env: BotEnv, path: Path) -> Any:
    return await import_deliveries_file(path, rules=journey_rules(env.settings),
                                        now=env.clock.now())


@pytest_asyncio.fixture
async def custom_env(db: str, emulator: Any, clock: Any) -> AsyncIterator[Any]:
    """Build a BotEnv with settings overrides: ``env = await custom_env(followup_time=...)``."""
    from bot.app import create_app

    made: list[Any] = []

    async def build(**overrides: Any) -> BotEnv:
        settings = make_settings(emulator, database_url=db, **overrides)
        carebot = create_app(settings, clock, pace=emulator.pace)
        await carebot.initialize()
        made.append(carebot)
        return BotEnv(emulator, carebot, clock, settings)

    try:
        yield build
    finally:
        for carebot in made:
            await carebot.stop()


async def test_one_delivery_walks_through_the_whole_journey(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    csv = write_csv(tmp_path / "d.csv", [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")])
    await _import(env, csv)
    owner = await link_by_contact(env, 5001, "13800138000")
    plan = {tp.kind: tp for tp in await Touchpoint.all()}
    assert set(plan) == {CHECKIN, FOLLOWUP_3D, VISIT_7D, FIRST_SERVICE}
    assert plan[FOLLOWUP_3D].due_at == local(2026, 11, 6, 10, 0)
    assert plan[FOLLOWUP_3D].payload["delivered_on"] == "2026-11-03"
    assert plan[VISIT_7D].due_at == local(2026, 11, 10, 10, 0)
    assert plan[FIRST_SERVICE].due_at == local(2026, 11, 21, 10, 0)
    assert plan[FIRST_SERVICE].expires_at == local(2026, 11, 25, 0, 0)

    steps = [
        (local(2026, 11, 3, 12, 0), "两个小时"),
        (local(2026, 11, 6, 10, 0), "已经三天了"),
        (local(2026, 11, 10, 10, 0), "陪伴您一周"),
        (local(2026, 11, 21, 10, 0), "快满三周"),
    ]
    for when, marker in steps:
        env.clock.set(when - timedelta(minutes=1))
        assert (await env.tick()).sent == 0, f"nothing is due just before {when}"
        env.clock.set(when)
        assert (await env.tick()).sent == 1, marker
        assert marker in owner.bot_texts()[-1]
        await _import(env, csv)  # re-importing the delivery on the way changes nothing
    texts = owner.bot_texts()
    followup = next(t for t in texts if "已经三天了" in t)
    assert "张伟" in followup and "星辰汽车" in followup and "020-88886666" in followup
    assert "1 分表示非常不满意" in followup and "10 分表示非常满意" in followup
    assert "点击下方的数字按钮" in followup and "回复一个 1 到 10 的数字" in followup
    visit = next(t for t in texts if "陪伴您一周" in t)
    assert "磨合" in visit and "1 分" not in visit  # different content from the follow-up
    # the reminder offers booking
    reminder = owner.last_bot_message()
    labels = [b["text"] for row in reminder["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["📅 预约保养", "☎️ 联系客服"]
    env.clock.set(local(2026, 12, 30, 10, 0))
    await env.tick()
    for marker in ("两个小时", "已经三天了", "陪伴您一周", "快满三周"):
        assert sum(marker in t for t in owner.bot_texts()) == 1, marker
    sent = await Touchpoint.filter(status=TouchpointStatus.SENT).order_by("sent_at")
    assert [tp.kind for tp in sent] == [CHECKIN, FOLLOWUP_3D, VISIT_7D, FIRST_SERVICE]


async def test_late_import_sends_only_what_is_still_in_its_window(env: BotEnv,
                                                                  tmp_path: Path) -> None:
    # Delivered 5 days ago: the check-in and 3-day follow-up are stale, the rest still due.
    env.clock.set(local(2026, 11, 8, 11, 0))
    await _import(env, write_csv(tmp_path / "d.csv",
                                 [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    report = await env.tick()
    assert report.expired == 2 and report.sent == 0
    owner = await link_by_contact(env, 5001, "13800138000")
    assert not any("两个小时" in t or "已经三天了" in t for t in owner.bot_texts())
    env.clock.set(local(2026, 11, 10, 10, 0))
    assert (await env.tick()).sent == 1
    assert "陪伴您一周" in owner.bot_texts()[-1]
    statuses = {tp.kind: tp.status for tp in await Touchpoint.all()}
    assert statuses[CHECKIN] == statuses[FOLLOWUP_3D] == TouchpointStatus.EXPIRED


async def test_three_day_follow_up_is_never_sent_after_its_window(env: BotEnv,
                                                                  tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await _import(env, write_csv(tmp_path / "d.csv",
                                 [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    env.clock.set(local(2026, 11, 8, 0, 1))  # end of day 3 + 1 day of grace: too late
    await env.tick()
    owner = await link_by_contact(env, 5001, "13800138000")
    assert not any("已经三天了" in t for t in owner.bot_texts())
    tp = await Touchpoint.get(kind=FOLLOWUP_3D)
    assert tp.status == TouchpointStatus.EXPIRED and "not linked" in tp.status_reason


async def test_english_owner_gets_english_journey(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await _import(env, write_csv(tmp_path / "d.csv", [
        delivery_row(VIN_A, "13800138000", "2026-11-03 10:00", name="Tom Lee",
                     model="Star S7", lang="en")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 6, 10, 0))
    await env.tick()
    text = owner.bot_texts()[-1]
    assert "Hello Tom Lee" in text and "three days" in text
    assert "1 (very dissatisfied) to 10 (very satisfied)" in text


async def test_followup_time_in_quiet_hours_waits_for_them_to_end(custom_env: Any,
                                                                  tmp_path: Path) -> None:
    env = await custom_env(followup_time="07:30")
    env.clock.set(local(2026, 11, 3, 10, 30))
    await _import(env, write_csv(tmp_path / "d.csv",
                                 [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    tp = await Touchpoint.get(kind=FOLLOWUP_3D)
    assert tp.due_at == local(2026, 11, 6, 9, 0)
    env.clock.set(local(2026, 11, 6, 8, 59))
    await env.tick()
    assert not any("已经三天了" in t for t in owner.bot_texts())
    env.clock.set(local(2026, 11, 6, 9, 0))
    await env.tick()
    assert "已经三天了" in owner.bot_texts()[-1]


async def test_checkin_after_hours_setting_moves_the_checkin(custom_env: Any,
                                                             tmp_path: Path) -> None:
    env = await custom_env(checkin_after_hours=3.0)
    env.clock.set(local(2026, 11, 3, 10, 30))
    await _import(env, write_csv(tmp_path / "d.csv",
                                 [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.due_at == local(2026, 11, 3, 13, 0)
    assert tp.expires_at == local(2026, 11, 4, 1, 0)  # still 12 h after its due time


# --- every kind: consent, reachability, quiet hours ----------------------------------------


async def _owner_with_every_kind(env: BotEnv, user_id: int, phone: str, *, due: datetime,
                                 link: bool = True) -> tuple[Customer, Any]:
    """An owner with a car and one pending touchpoint of every kind, due at ``due``."""
    owner = None
    customer = await Customer.create(name="李雷", phone=phone, link_token=f"tok{user_id}")
    vehicle = await Vehicle.create(vin=f"LSVAU2180N{user_id:07d}", model="星辰 S7",
                                   plate="粤A00001", customer=customer)
    if link:
        owner = await link_by_contact(env, user_id, phone)
    for kind in ALL_KINDS:
        await Touchpoint.create(
            customer=customer, vehicle=vehicle, kind=kind, occasion_key=f"test:{kind}",
            due_at=due, expires_at=due + timedelta(days=2), payload=SAMPLE_PAYLOADS[kind],
        )
    return customer, owner


async def test_every_kind_goes_out_to_a_linked_owner_and_renders(env: BotEnv) -> None:
    now = env.clock.set(local(2026, 11, 3, 10, 0))
    _, owner = await _owner_with_every_kind(env, 5101, "+8613800138101", due=now)
    report = await env.tick()
    assert report.sent == len(ALL_KINDS) and report.failed == 0
    assert len([t for t in owner.bot_texts() if "李雷您好！" in t]) == len(ALL_KINDS)


async def test_every_kind_is_skipped_for_an_owner_who_declined_follow_ups(env: BotEnv) -> None:
    now = env.clock.set(local(2026, 11, 3, 10, 0))
    customer, owner = await _owner_with_every_kind(env, 5102, "+8613800138102", due=now)
    await Customer.filter(id=customer.id).update(followups_refused=True)
    before = len(owner.bot_texts())
    report = await env.tick()
    assert report.sent == 0 and report.skipped == len(ALL_KINDS)
    assert len(owner.bot_texts()) == before
    reasons = {tp.status_reason for tp in await Touchpoint.filter(customer_id=customer.id)}
    assert reasons == {"owner declined follow-ups"}


async def test_every_kind_is_skipped_and_counted_for_an_unreachable_owner(env: BotEnv) -> None:
    now = env.clock.set(local(2026, 11, 3, 10, 0))
    customer, owner = await _owner_with_every_kind(env, 5103, "+8613800138103", due=now)
    owner.block()
    await env.poll()
    calls = env.emu.stats["calls"].get("sendMessage", 0)
    report = await env.tick()
    assert report.sent == 0 and report.skipped == len(ALL_KINDS)
    assert env.emu.stats["calls"].get("sendMessage", 0) == calls
    rows = await Touchpoint.filter(customer_id=customer.id)
    assert all(tp.status == TouchpointStatus.SKIPPED and "unreachable" in tp.status_reason
               for tp in rows)


async def test_every_kind_waits_out_quiet_hours(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    night = local(2026, 11, 3, 22, 0)
    _, owner = await _owner_with_every_kind(env, 5104, "+8613800138104", due=night)
    before = len(owner.bot_texts())
    env.clock.set(night)
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 8, 59))
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 9, 0))
    assert (await env.tick()).sent == len(ALL_KINDS)
    assert len(owner.bot_texts()) == before + len(ALL_KINDS)
    sent = await Touchpoint.filter(status=TouchpointStatus.SENT)
    assert {tp.sent_at for tp in sent} == {local(2026, 11, 4, 9, 0).astimezone(UTC)}
