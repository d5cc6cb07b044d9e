"""The daily occasions scan end to end: insurance and licence reminders, birthdays (Gregorian
and lunar), holidays; idempotent re-scans and catch-up after an outage."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from bot.intake import import_deliveries_file
from bot.journeys.occasions import ScanReport, occasion_rules, run_scan
from bot.journeys.plans import BIRTHDAY, HOLIDAY, INSURANCE, LICENCE, journey_rules
from db.models import Customer, ScanState, Touchpoint, TouchpointStatus, Vehicle
from tests.conftest import BotEnv
from tests.test_journeys import custom_env  # noqa: F401 - fixture
from tests.test_walking_skeleton import VIN_A, VIN_B, link_by_contact, local, vin

HEADER = ("vin,model,plate,owner_name,phone,birthday,生日类型,licence_expiry,insurance_expiry,"
          "delivered_at,language\n")


def owner_row(vin_: str, phone: str, *, name: str = "张伟", birthday: str = "1985-06-01",
              calendar: str = "", licence: str = "", insurance: str = "",
              lang: str = "zh_CN") -> str:
    return (f"{vin_},星辰 S7,粤A12345,{name},{phone},{birthday},{calendar},{licence},{insurance},"
            f"2025-01-10 10:00,{lang}")


async def load(env: BotEnv, tmp_path: Path, *rows: str) -> None:
    path = tmp_path / "owners.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    result = await import_deliveries_file(path, rules=journey_rules(env.settings),
                                          now=env.clock.now())
    assert result.errors == [], result.errors
    # these tests are about occasions: the old deliveries' journeys are long expired
    await Touchpoint.filter(kind__not_in=[BIRTHDAY, INSURANCE, LICENCE, HOLIDAY]).delete()


async def scan(env: BotEnv) -> ScanReport:
    return await run_scan(env.clock.now(), occasion_rules(env.settings))


async def test_insurance_reminders_at_30_and_7_days(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 9, 30))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", insurance="2026-12-03"),
               owner_row(VIN_B, "13800138001", name="王芳", insurance="2026-12-04"))
    owner = await link_by_contact(env, 5001, "13800138000")
    report = await scan(env)
    assert report.insurance == 1
    assert (await env.tick()).sent == 1
    text = owner.bot_texts()[-1]
    assert "车险" in text and "2026-12-03" in text and "还有 30 天" in text and "粤A12345" in text
    assert (await scan(env)).written == 0  # a re-scan the same day writes nothing
    assert (await env.tick()).sent == 0
    written = {}
    for day in range(4, 27):  # the process runs its daily scan every day
        env.clock.set(local(2026, 11, day, 9, 30))
        written[day] = (await scan(env)).insurance
        await env.tick()
    # 11-04: the other owner's 30-day reminder; 11-26: our 7-day one
    assert {d: n for d, n in written.items() if n} == {4: 1, 26: 1}
    assert "还有 7 天" in owner.bot_texts()[-1]
    assert sum("车险" in t for t in owner.bot_texts()) == 2
    tps = await Touchpoint.filter(kind=INSURANCE, vehicle__vin=VIN_A).order_by("due_at")
    assert [tp.payload["lead_days"] for tp in tps] == [30, 7]
    assert tps[0].expires_at == local(2026, 12, 4, 0, 0)  # valid until the policy ends


async def test_birthday_greeted_on_the_day_gregorian_and_lunar(env: BotEnv,
                                                               tmp_path: Path) -> None:
    env.clock.set(local(2026, 9, 25, 9, 0))
    await load(env, tmp_path,
               owner_row(VIN_A, "13800138000", birthday="1985-09-25"),
               # born 1990-10-03 = lunar 8/15; in 2026 lunar 8/15 is 25 September
               owner_row(VIN_B, "13800138001", name="王芳", birthday="1990-10-03",
                         calendar="农历"),
               owner_row(vin("2183296"), "13800138002", name="赵六", birthday="1990-09-25",
                         calendar="农历"))
    solar = await link_by_contact(env, 5001, "13800138000")
    lunar = await link_by_contact(env, 5002, "13800138001")
    other = await link_by_contact(env, 5003, "13800138002")
    assert (await Customer.get(phone="+8613800138001")).birthday_md == "L0815"
    env.clock.set(local(2026, 9, 25, 9, 30))
    report = await scan(env)
    assert report.birthdays == 2
    assert report.holidays == 3  # and it is 中秋节 (lunar 8/15), a default holiday
    assert (await env.tick()).sent == 5
    assert any("生日快乐" in t and "张伟" in t for t in solar.bot_texts())
    assert any("农历生日" in t and "王芳" in t for t in lunar.bot_texts())
    assert not any("生日快乐" in t for t in other.bot_texts())
    assert all(any("值此中秋节之际" in t for t in o.bot_texts()) for o in (solar, lunar, other))
    assert (await scan(env)).birthdays == 0
    env.clock.advance(hours=3)
    await env.tick()
    assert sum("生日快乐" in t for t in solar.bot_texts()) == 1


async def test_a_birthday_is_never_greeted_late(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 9, 30))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", birthday="1985-11-03"))
    assert (await scan(env)).birthdays == 1
    env.clock.set(local(2026, 11, 4, 0, 1))  # linked only after the day ended
    owner = await link_by_contact(env, 5001, "13800138000")
    assert not any("生日快乐" in t for t in owner.bot_texts())
    tp = await Touchpoint.get(kind=BIRTHDAY)
    assert tp.status == TouchpointStatus.EXPIRED and tp.sent_at is None


async def test_two_day_outage_catches_up_reminders_but_not_birthdays(env: BotEnv,
                                                                     tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 1, 9, 30))
    await load(
        env, tmp_path,
        # 30-day reminder day was 11-02 (missed), policy still valid: goes out on 11-03
        owner_row(VIN_A, "13800138000", birthday="1985-11-02", insurance="2026-12-02",
                  licence="2026-12-03"),
        # birthday today: greeted
        owner_row(VIN_B, "13800138001", name="王芳", birthday="1988-11-03"),
    )
    first = await scan(env)
    assert first.days == [date(2026, 11, 1)] and first.written == 0
    # the process is down on 11-02; back on 11-03 at 15:00
    env.clock.set(local(2026, 11, 3, 15, 0))
    a = await link_by_contact(env, 5001, "13800138000")
    b = await link_by_contact(env, 5002, "13800138001")
    report = await scan(env)
    assert report.days == [date(2026, 11, 2), date(2026, 11, 3)]
    assert (report.insurance, report.licence, report.birthdays) == (1, 1, 1)
    await env.tick()
    texts_a = a.bot_texts()
    assert any("车险" in t and "2026-12-02" in t and "还有 29 天" in t for t in texts_a)
    assert any("驾驶证" in t and "2026-12-03" in t for t in texts_a)
    assert not any("生日快乐" in t for t in texts_a)  # 11-02's birthday: not greeted late
    assert any("生日快乐" in t for t in b.bot_texts())
    assert (await ScanState.get(name="occasions")).last_day == date(2026, 11, 3)
    # the next day: only that day is scanned, nothing is written twice
    env.clock.set(local(2026, 11, 4, 9, 30))
    again = await scan(env)
    assert again.days == [date(2026, 11, 4)] and again.written == 0


async def test_licence_reminder_and_english(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 9, 30))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", name="Tom Lee",
                                        licence="2026-12-03", lang="en"))
    owner = await link_by_contact(env, 5001, "13800138000")
    assert (await scan(env)).licence == 1
    await env.tick()
    text = owner.bot_texts()[-1]
    assert "Hello Tom Lee" in text and "driving licence expires on 2026-12-03" in text


async def test_holiday_greeting_goes_to_linked_owners_who_accept_follow_ups(
    custom_env: Any, tmp_path: Path  # noqa: F811
) -> None:
    env = await custom_env(holidays="11-03:开业纪念日,L08-15:中秋节")
    env.clock.set(local(2026, 11, 3, 9, 0))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000"),
               owner_row(VIN_B, "13800138001", name="王芳"),
               owner_row(vin("2183296"), "13800138002", name="赵六"))
    owner = await link_by_contact(env, 5001, "13800138000")
    declined = await link_by_contact(env, 5002, "13800138001")
    await Customer.filter(phone="+8613800138001").update(followups_refused=True)
    report = await scan(env)
    assert report.holidays == 1  # the unlinked and the declined get no row at all
    env.clock.set(local(2026, 11, 3, 9, 30))
    await env.tick()
    assert "值此开业纪念日之际" in owner.bot_texts()[-1]
    assert not any("开业纪念日" in t for t in declined.bot_texts())


async def test_two_holidays_on_one_day_are_two_greetings(
    custom_env: Any, tmp_path: Path  # noqa: F811
) -> None:
    # 2026-09-25 is 中秋 (lunar 08-15); the dealership also marks its own day then
    env = await custom_env(holidays="09-25:开业纪念日,L08-15:中秋节")
    env.clock.set(local(2026, 9, 25, 9, 0))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000"))
    owner = await link_by_contact(env, 5001, "13800138000")
    assert (await scan(env)).holidays == 2
    assert (await scan(env)).holidays == 0  # a re-run writes nothing new
    names = sorted(tp.payload["name"] for tp in await Touchpoint.filter(kind=HOLIDAY))
    assert names == ["中秋节", "开业纪念日"]
    env.clock.set(local(2026, 9, 25, 9, 30))
    await env.tick()
    texts = owner.bot_texts()
    assert any("开业纪念日" in t for t in texts) and any("中秋节" in t for t in texts)


async def test_scan_time_in_quiet_hours_is_shifted(custom_env: Any,  # noqa: F811
                                                   tmp_path: Path) -> None:
    env = await custom_env(quiet_hours="21:00-10:00")
    env.clock.set(local(2026, 11, 3, 9, 30))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", birthday="1985-11-03"))
    owner = await link_by_contact(env, 5001, "13800138000")
    await scan(env)
    assert (await Touchpoint.get(kind=BIRTHDAY)).due_at == local(2026, 11, 3, 10, 0)
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 3, 10, 0))
    await env.tick()
    assert "生日快乐" in owner.bot_texts()[-1]


async def test_scrapped_cars_get_no_insurance_reminder(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 9, 30))
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", insurance="2026-12-03"))
    await Vehicle.filter(vin=VIN_A).update(status="scrapped")
    assert (await scan(env)).insurance == 0


async def test_scheduler_jobs(env: BotEnv) -> None:
    from bot import touchpoints

    jobs: list[tuple[Any, ...]] = []

    class Recorder:
        def add_job(self, fn: Any, trigger: str, **kw: Any) -> None:
            jobs.append((trigger, kw.get("hour"), kw.get("minute"), kw.get("id")))

    touchpoints.schedule(Recorder(), env.carebot.services)
    assert ("cron", 9, 30, "occasions_scan") in jobs
    assert any(j[0] == "date" for j in jobs)  # one scan at start-up: catch-up
    env.clock.set(local(2026, 11, 3, 9, 30))
    await touchpoints.scan_now(env.carebot.services)
    assert (await ScanState.get(name="occasions")).last_day == date(2026, 11, 3)


async def test_birthday_calendar_from_the_file_sets_the_scan_key(env: BotEnv,
                                                                 tmp_path: Path) -> None:
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", birthday="1990-10-03"))
    assert (await Customer.get(phone="+8613800138000")).birthday_md == "G1003"
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", birthday="1990-10-03",
                                        calendar="农历"))
    customer = await Customer.get(phone="+8613800138000")
    assert (customer.birthday_lunar, customer.birthday_md) == (True, "L0815")
    await load(env, tmp_path, owner_row(VIN_A, "13800138000", birthday="1990-10-03"))
    assert (await Customer.get(phone="+8613800138000")).birthday_md == "L0815"  # blank keeps
