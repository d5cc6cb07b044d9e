"""Service due by time or mileage, whichever first (issue 17, point 2): the pure rules on
tables, then end to end through the visits import, the daily scan, the reminder's mileage
button and the owner's typed reading."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.journeys.mileage import (
    BY_DATE,
    BY_KM,
    Interval,
    Reading,
    check_reported,
    daily_km,
    forecast,
    parse_intervals,
)
from bot.journeys.occasions import occasion_rules, run_scan
from bot.journeys.plans import SERVICE_DUE
from db.models import MileageReading, ServiceForecast, Touchpoint, TouchpointStatus, Vehicle
from tests.conftest import BotEnv
from tests.test_journeys import custom_env  # noqa: F401 - fixture
from tests.test_visits import deliver, import_visits, visits_csv
from tests.test_walking_skeleton import VIN_A, VIN_B, delivery_row, link_by_contact, local

D = date
SIX_MONTHS = Interval(6, 10000)


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        ([], None),
        ([Reading(D(2026, 1, 1), 0)], None),
        ([Reading(D(2026, 1, 1), 0), Reading(D(2026, 1, 11), 600)], 60.0),  # 600 km / 10 days
        ([Reading(D(2026, 1, 1), 1000), Reading(D(2026, 2, 1), 1155)], 5.0),  # 155 / 31
        # the newest two are 3 days apart: the estimate reaches back to the older one
        ([Reading(D(2026, 1, 1), 0), Reading(D(2026, 3, 2), 3000), Reading(D(2026, 3, 5), 3150)],
         3150 / 63),
        # the newer pair is what counts (the car is driven more now)
        ([Reading(D(2025, 1, 1), 0), Reading(D(2026, 1, 1), 3650), Reading(D(2026, 2, 1), 4890)],
         40.0),
        ([Reading(D(2026, 1, 1), 5000), Reading(D(2026, 2, 1), 4000)], None),  # backwards: typo
        ([Reading(D(2026, 1, 1), 0), Reading(D(2026, 2, 1), 900_000)], None),  # not driving
    ],
)
def test_daily_distance(readings: list[Reading], expected: float | None) -> None:
    assert daily_km(readings) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("readings", "by", "due_on"),
    [
        # 60 km a day since the service at 20,000 km on 1 March: 10,000 km more in 167 days
        # (ceil 166.7) = 15 Aug, before 6 months (1 Sep): by km
        ([Reading(D(2026, 3, 1), 20000), Reading(D(2026, 3, 31), 21800)], BY_KM, D(2026, 8, 15)),
        # 5 km a day would need 2,000 days: by date, 6 months after the service
        ([Reading(D(2026, 3, 1), 20000), Reading(D(2026, 3, 31), 20150)], BY_DATE, D(2026, 9, 1)),
        # no estimate (one reading): the date
        ([Reading(D(2026, 3, 1), 20000)], BY_DATE, D(2026, 9, 1)),
        # already past the km at the newest reading: due that day
        ([Reading(D(2026, 3, 1), 20000), Reading(D(2026, 4, 1), 30500)], BY_KM, D(2026, 4, 1)),
    ],
)
def test_forecast_whichever_comes_first(readings: list[Reading], by: str, due_on: date) -> None:
    found = forecast(last_service_on=D(2026, 3, 1), last_service_km=20000, interval=SIX_MONTHS,
                     readings=readings)
    assert found is not None and (found.by, found.due_on, found.due_km) == (by, due_on, 30000)


def test_the_workshops_own_next_service_wins_and_no_measure_means_no_forecast() -> None:
    found = forecast(last_service_on=D(2026, 3, 1), last_service_km=None, interval=Interval(0, 0),
                     readings=[], due_by_date=D(2026, 7, 1))
    assert found is not None and (found.by, found.due_on) == (BY_DATE, D(2026, 7, 1))
    assert forecast(last_service_on=D(2026, 3, 1), last_service_km=None,
                    interval=Interval(0, 10000), readings=[]) is None


def test_intervals_per_model() -> None:
    assert parse_intervals("CS75:6:5000; 逸动 Plus:12:10000\n") == {
        "cs75": Interval(6, 5000), "逸动 plus": Interval(12, 10000)}
    for bad in ("CS75:6", "CS75:x:5000", ":6:5000", "CS75:0:0", "CS75:6:500000"):
        with pytest.raises(ValueError, match=r"CS75|6:5000"):
            parse_intervals(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345", 12345), ("12,345 km", 12345), ("12 345公里", 12345),
        ("about twelve", "km_not_a_number"), ("0", "km_not_a_number"), ("-5", "km_not_a_number"),
        ("9000", "km_below_last"),        # below the 10,000 on file
        ("40000", "km_too_far"),          # 30,000 km in 10 days
        ("12000", 12000),
    ],
)
def test_what_an_owner_types_is_checked(text: str, expected: int | str) -> None:
    assert check_reported(text, Reading(D(2026, 3, 1), 10000), D(2026, 3, 11)) == expected


# --- end to end -------------------------------------------------------------------------


async def _scan(env: BotEnv) -> int:
    return (await run_scan(env.clock.now(), occasion_rules(env.settings))).service_due


async def test_a_car_driven_60_km_a_day_is_reminded_by_mileage_5_km_a_day_by_date(
    env: BotEnv, tmp_path: Path
) -> None:
    env.clock.set(local(2026, 4, 1, 17, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2025-09-01 10:00"),
                  delivery_row(VIN_B, "13800138001", "2025-09-01 10:00", name="王芳"))
    # A: 60 km a day between its two visits (1,800 km in 30 days); B: 5 km a day (150 km)
    path = visits_csv(tmp_path / "v.csv", [
        f"{VIN_A},保养,2026-03-01 16:00,李娜,20000,否,,",
        f"{VIN_A},维修,2026-03-31 16:00,李娜,21800,否,,",
        f"{VIN_B},保养,2026-03-01 16:00,李娜,20000,否,,",
        f"{VIN_B},维修,2026-03-31 16:00,李娜,20150,否,,",
    ])
    assert (await import_visits(env, path)).created == 4
    a = await ServiceForecast.get(vehicle__vin=VIN_A)
    b = await ServiceForecast.get(vehicle__vin=VIN_B)
    # A reaches 30,000 km 137 days after 31 Mar (8,200 / 60 = 136.7): 15 Aug, before the
    # 6 months (1 Sep); B: 9,850 / 5 = 1,970 days, so 6 months after the service, 1 Sep
    assert (a.by, a.due_on, a.remind_on, a.due_km) == ("km", D(2026, 8, 15), D(2026, 8, 8), 30000)
    assert (b.by, b.due_on, b.remind_on) == ("date", D(2026, 9, 1), D(2026, 8, 25))
    owner_a = await link_by_contact(env, 5001, "13800138000")
    await link_by_contact(env, 5002, "13800138001")
    await Touchpoint.filter(kind__not=SERVICE_DUE).delete()  # the old journeys
    env.clock.set(local(2026, 8, 7, 9, 30))
    assert await _scan(env) == 0
    env.clock.set(local(2026, 8, 8, 9, 30))
    assert await _scan(env) == 1  # A only, by mileage, a week before 15 Aug
    assert await _scan(env) == 0  # idempotent
    env.clock.set(local(2026, 8, 8, 10, 0))
    assert (await env.tick()).sent == 1
    text = owner_a.bot_texts()[-1]
    assert "距上次保养约 10000 公里" in text and "2026-08-15" in text, text
    assert "告诉我们当前里程" in str(owner_a.last_bot_message().get("reply_markup"))
    tp = await Touchpoint.get(kind=SERVICE_DUE, vehicle__vin=VIN_A)
    assert tp.expires_at == local(2026, 8, 30, 0, 0)  # 14 days of grace after the due day
    env.clock.set(local(2026, 8, 25, 9, 30))
    assert await _scan(env) == 1  # B, by date
    b_tp = await Touchpoint.get(kind=SERVICE_DUE, vehicle__vin=VIN_B)
    assert b_tp.payload["by"] == "date" and b_tp.payload["next_service_on"] == "2026-09-01"


async def test_an_owners_reported_mileage_moves_the_reminder(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 4, 1, 17, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2025-09-01 10:00"))
    path = visits_csv(tmp_path / "v.csv", [
        f"{VIN_A},保养,2026-03-01 16:00,李娜,20000,否,,",
        f"{VIN_A},维修,2026-03-31 16:00,李娜,20150,否,,",  # 5 km a day: by date, 1 Sep
    ])
    await import_visits(env, path)
    owner = await link_by_contact(env, 5001, "13800138000")
    await Touchpoint.filter(kind__not=SERVICE_DUE).delete()
    # a reminder that went out (say, sent early by staff): its mileage button
    env.clock.set(local(2026, 5, 1, 10, 0))
    car = await Vehicle.get(vin=VIN_A)
    reminder = await Touchpoint.create(customer_id=car.customer_id, vehicle_id=car.id,
                                       kind=SERVICE_DUE, occasion_key="service_due:x",
                                       due_at=env.clock.now(),
                                       payload={"next_service_on": "2026-09-01", "by": "date"})
    assert (await env.tick()).sent == 1
    pressed = owner.press("🚗 告诉我们当前里程")
    await env.poll()
    assert "当前总里程" in owner.bot_texts()[-1]
    owner.send_text("一万二")  # not a number: why, and the question stays open
    await env.poll()
    assert "只回复数字" in owner.bot_texts()[-1]
    owner.send_text("19000")  # below the 20,150 on file
    await env.poll()
    assert "20150" in owner.bot_texts()[-1]
    owner.send_text("26,150 km")  # 6,000 km in the 31 days since 31 Mar: ~194 km a day
    await env.poll()
    reply = owner.bot_texts()[-1]
    # 3,850 km to go at 6,000 / 31 = 193.5 km a day: 20 days, 21 May, long before 1 Sep
    assert "26150" in reply and "2026-05-21" in reply and "30000" in reply, reply
    # the reading is in: the reminder keeps "Book a visit", its mileage button is gone, and
    # pressing it again (an old screen) is answered kindly and asks nothing
    reminder_msg = next(m for m in owner.bot_messages()
                        if m["message_id"] == pressed["message"]["message_id"])
    shown = [b["text"] for row in reminder_msg["reply_markup"]["inline_keyboard"] for b in row]
    assert "🚗 告诉我们当前里程" not in shown and any("预约" in b for b in shown)
    said = len(owner.bot_texts())
    owner.press_again(pressed)
    await env.poll()
    assert owner.callback_answers[-1]["text"].startswith("这一步已经完成了")
    assert len(owner.bot_texts()) == said
    assert await MileageReading.filter(vehicle_id=car.id, km=26150).exists()
    assert (await Vehicle.get(id=car.id)).mileage == 26150
    fc = await ServiceForecast.get(vehicle_id=car.id)
    assert (fc.by, fc.due_on, fc.remind_on) == ("km", D(2026, 5, 21), D(2026, 5, 14))
    # the unsent old-forecast reminder was not touched (it is sent); the new one goes on 14 May
    assert (await Touchpoint.get(id=reminder.id)).status is TouchpointStatus.SENT
    env.clock.set(local(2026, 5, 14, 9, 30))
    assert await _scan(env) == 1
    new = await Touchpoint.get(kind=SERVICE_DUE, occasion_key__not="service_due:x")
    assert new.payload["by"] == "km" and new.payload["next_service_on"] == "2026-05-21"


async def test_a_moved_forecast_drops_its_unsent_reminder_and_a_late_one_goes_at_once(
    env: BotEnv, tmp_path: Path
) -> None:
    env.clock.set(local(2026, 8, 26, 9, 30))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2025-09-01 10:00"))
    await import_visits(env, visits_csv(tmp_path / "v.csv", [
        f"{VIN_A},保养,2026-03-01 16:00,李娜,5000,否,,"]))
    # 5,000 km in the 181 days since the delivery (27.6 a day) reaches 15,000 km only in 2027:
    # 1 Sep by date; its reminder day (25 Aug) has come: written at once
    due = await Touchpoint.get(kind=SERVICE_DUE)
    assert due.status is TouchpointStatus.PENDING and due.payload["next_service_on"] == "2026-09-01"
    # a new maintenance visit: a new cycle, the unsent reminder is dropped
    env.clock.set(local(2026, 8, 27, 17, 0))
    await import_visits(env, visits_csv(tmp_path / "w.csv", [
        f"{VIN_A},保养,2026-08-27 16:00,李娜,9000,否,,"]))
    assert (await Touchpoint.get(id=due.id)).status is TouchpointStatus.SKIPPED
    fc = await ServiceForecast.get(vehicle__vin=VIN_A)
    assert fc.last_service_on == D(2026, 8, 27) and fc.due_on > D(2026, 8, 27) + timedelta(days=60)


async def test_a_models_own_interval(custom_env: Any, tmp_path: Path) -> None:  # noqa: F811
    """星辰 S7 is serviced every 12 months or 5,000 km: the follow-up names that, and the
    forecast uses it."""
    env = await custom_env(service_intervals="星辰 S7:12:5000, 其他:6:10000")
    env.clock.set(local(2026, 3, 1, 17, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2025-09-01 10:00"))
    await import_visits(env, visits_csv(tmp_path / "v.csv", [
        f"{VIN_A},保养,2026-03-01 16:00,李娜,3620,否,,"]))  # 3,620 km in 181 days: 20 a day
    follow = await Touchpoint.get(kind="service_followup")
    assert (follow.payload["next_service_on"], follow.payload["next_service_km"]) == (
        "2027-03-01", 8620)
    # 5,000 km more at 20 km a day: 250 days, 6 Nov 2026, before the 12 months
    fc = await ServiceForecast.get(vehicle__vin=VIN_A)
    assert (fc.by, fc.due_on, fc.due_km) == ("km", D(2026, 11, 6), 8620)
