"""Recommended repairs (建议维修项目, issue 17 point 3): a visit lists postponed work (import
column and API), each item is reminded after the configured delay with "Book a visit", and
dropped once a later visit records it done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.journeys.occasions import occasion_rules, run_scan
from bot.journeys.repairs import DONE_REASON, REPAIR_REMINDER, parse_items, remind_on
from db.models import RecommendedRepair, Touchpoint, TouchpointStatus
from tests.conftest import BotEnv
from tests.test_visits import AUTH, deliver, import_visits
from tests.test_walking_skeleton import VIN_A, delivery_row, link_by_contact, local

HEADER = "车架号,维修类型,出厂时间,进厂里程,建议维修项目,已完成建议项目\n"


def visits(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_items_are_split_and_checked() -> None:
    assert parse_items("前刹车片；轮胎、 雨刮 ;轮胎") == ("前刹车片", "轮胎", "雨刮")
    assert parse_items(["Brake pads", "brake  pads", "Tyres"]) == ("Brake pads", "Tyres")
    assert parse_items(None) == parse_items("") == ()
    with pytest.raises(ValueError, match="at most 100"):
        parse_items("x" * 101)
    with pytest.raises(ValueError, match="at most 20"):
        parse_items("；".join(f"item{i}" for i in range(21)))


@pytest.mark.parametrize(
    ("left_on", "today", "expected"),
    [
        (date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 31)),   # 30 days after
        (date(2026, 9, 1), date(2026, 10, 5), date(2026, 10, 6)),     # imported late: tomorrow
        (date(2025, 1, 1), date(2026, 10, 5), date(2025, 1, 31)),     # history: never
    ],
)
def test_reminder_day(left_on: date, today: date, expected: date) -> None:
    assert remind_on(left_on, today, 30) == expected


async def _scan(env: BotEnv) -> int:
    return (await run_scan(env.clock.now(), occasion_rules(env.settings))).repairs


async def test_a_recommended_repair_is_reminded_after_its_delay_with_a_booking_button(
    env: BotEnv, tmp_path: Path
) -> None:
    env.clock.set(local(2026, 10, 1, 17, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-01-03 10:00"))
    result = await import_visits(env, visits(
        tmp_path / "v.csv", f"{VIN_A},保养,2026-10-01 16:00,15000,前刹车片更换；左前轮胎,"))
    assert result.errors == []
    assert await RecommendedRepair.filter(remind_on=date(2026, 10, 31)).count() == 2
    owner = await link_by_contact(env, 5001, "13800138000")
    await Touchpoint.all().delete()  # the visit's follow-up: not what this test is about
    env.clock.set(local(2026, 10, 30, 9, 30))
    assert await _scan(env) == 0
    env.clock.set(local(2026, 10, 31, 9, 30))
    assert await _scan(env) == 2
    assert await _scan(env) == 0  # once
    assert (await env.tick()).sent == 2
    texts = owner.bot_texts()
    assert any("前刹车片更换" in t and "2026-10-01" in t and "稍后再做" in t for t in texts), texts
    owner.press("📅 预约保养")  # the booking starts from the reminder
    await env.poll()
    assert "哪一天" in owner.bot_texts()[-1] or "日期" in owner.bot_texts()[-1], owner.bot_texts()


async def test_a_repair_a_later_visit_did_is_not_reminded(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 10, 1, 17, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-01-03 10:00"))
    await import_visits(env, visits(
        tmp_path / "v.csv", f"{VIN_A},保养,2026-10-01 16:00,15000,前刹车片更换；左前轮胎,"))
    # two weeks later the owner came back and had the brake pads done
    env.clock.set(local(2026, 10, 15, 17, 0))
    await import_visits(env, visits(
        tmp_path / "w.csv", f"{VIN_A},维修,2026-10-15 16:00,15600,,前刹车片 更换"))
    done = await RecommendedRepair.get(item="前刹车片更换")
    assert done.done_on == date(2026, 10, 15)
    env.clock.set(local(2026, 10, 31, 9, 30))
    assert await _scan(env) == 1  # the tyre only
    tp = await Touchpoint.get(kind=REPAIR_REMINDER)
    assert tp.payload["item"] == "左前轮胎"
    # the tyre's reminder is written but not sent yet: a visit that does it drops it
    env.clock.set(local(2026, 10, 31, 9, 40))
    await import_visits(env, visits(
        tmp_path / "x.csv", f"{VIN_A},维修,2026-10-31 09:00,16000,,左前轮胎"))
    tp = await Touchpoint.get(kind=REPAIR_REMINDER)
    assert (tp.status, tp.status_reason) == (TouchpointStatus.SKIPPED, DONE_REASON)


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


async def test_the_api_takes_recommended_repairs_as_a_list(
    env: BotEnv, client: TestClient, tmp_path: Path  # type: ignore[type-arg]
) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-05-03 10:00"))
    visit = {"vin": VIN_A, "kind": "maintenance", "left_at": "2026-11-02T15:00:00+08:00",
             "mileage": 12000, "recommended_repairs": ["空调滤芯", "电瓶"]}
    r = await client.post("/api/v1/visits", headers=AUTH, json=[visit])
    assert r.status == 200, await r.text()
    assert sorted(await RecommendedRepair.all().values_list("item", flat=True)) == [
        "电瓶",
        "空调滤芯",
    ]
    bad = {**visit, "left_at": "2026-11-03T09:00:00+08:00", "recommended_repairs": "x" * 120}
    r = await client.post("/api/v1/visits", headers=AUTH, json=[bad])
    body = await r.json()
    assert r.status == 422 and "at most 100" in str(body), body
