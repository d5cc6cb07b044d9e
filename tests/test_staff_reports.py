"""Reports that arrive by themselves (日结周报, issue 17 point 5): when each is due, the weekly
report posted to the staff group on its day with its CSV (and each advisor's own, in
private), once per period however often the tick runs; the daily digest."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.delivery import notices
from bot.periods import Period
from bot.staff_reports import DAILY, MONTHLY, WEEKLY, ReportTimes, due_periods, owe_reports
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    CallReason,
    CallStatus,
    Notice,
    PhoneCall,
    Staff,
    StaffRole,
    Touchpoint,
)
from tests.test_journeys import custom_env  # noqa: F401 - fixture
from tests.test_workshop_kpi import hand_made

SH = ZoneInfo("Asia/Shanghai")
STAFF_CHAT = -1009876
TIMES = ReportTimes(daily=time(8, 30), weekly_day=1, weekly=time(8, 45), monthly_day=1,
                    monthly=time(9, 0))


def L(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
      second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Monday 9 Nov 2026, 08:29: yesterday's digest is the 7th's, the week before W44's
        # report (due last Monday), October's report (due 1 Nov)
        (L(2026, 11, 9, 8, 29), {DAILY: "2026-11-07", WEEKLY: "2026-W44", MONTHLY: "2026-10"}),
        (L(2026, 11, 9, 8, 30), {DAILY: "2026-11-08", WEEKLY: "2026-W44", MONTHLY: "2026-10"}),
        (L(2026, 11, 9, 8, 45), {DAILY: "2026-11-08", WEEKLY: "2026-W45", MONTHLY: "2026-10"}),
        (L(2026, 11, 8, 23, 0), {DAILY: "2026-11-07", WEEKLY: "2026-W44", MONTHLY: "2026-10"}),
        (L(2026, 12, 1, 9, 0), {DAILY: "2026-11-30", WEEKLY: "2026-W48", MONTHLY: "2026-11"}),
        (L(2027, 1, 1, 8, 59), {DAILY: "2026-12-31", WEEKLY: "2026-W52", MONTHLY: "2026-11"}),
        (L(2027, 1, 4, 9, 0), {DAILY: "2027-01-03", WEEKLY: "2026-W53", MONTHLY: "2026-12"}),
    ],
)
def test_which_period_each_report_covers(now: datetime, expected: dict[str, str]) -> None:
    assert {kind: p.label for kind, p in due_periods(now, TIMES, SH)} == expected


def test_a_report_turned_off_is_not_due() -> None:
    off = ReportTimes(daily=None, weekly_day=0, weekly=time(8, 45), monthly_day=0,
                      monthly=time(9, 0))
    assert due_periods(L(2026, 11, 9, 9, 0), off, SH) == []
    daily = dict(due_periods(L(2026, 11, 9, 9, 0), TIMES, SH))[DAILY]
    assert daily == Period(date(2026, 11, 8), date(2026, 11, 9), "2026-11-08")


def _bot(group: Any) -> list[dict[str, Any]]:
    return [m for m in group.messages() if m["from_bot"]]


async def _tick(env: Any) -> int:
    await owe_reports(env.clock.now(), env.settings, env.carebot.services.scripts,
                      env.carebot.services.rules.workshop)
    return await notices.send_owed(env.carebot.services.sender, env.clock.now())


async def test_the_weekly_report_goes_to_the_staff_group_on_its_day_with_its_csv(
    custom_env: Any  # noqa: F811
) -> None:
    env = await custom_env(staff_chat_id=STAFF_CHAT, report_daily_time="", report_monthly_day=0,
                           kpi_targets="repeat_repair_rate:<=10")
    group = env.emu.group(STAFF_CHAT, "售后客服", is_forum=False)
    await hand_made()
    advisor = env.emu.user(7001, first_name="娜")
    await Staff.create(name="李娜", role=StaffRole.ADVISOR, telegram_id=7001)
    env.clock.set(L(2026, 11, 8, 20, 0))  # Sunday: the W44 report (an empty week) is owed
    await _tick(env)
    assert any("2026-W44" in t for t in group.bot_texts())
    env.clock.set(L(2026, 11, 9, 8, 44))  # Monday, a minute early: nothing new
    before = len(_bot(group))
    assert await _tick(env) == 0
    env.clock.set(L(2026, 11, 9, 8, 45))
    await _tick(env)
    texts = group.bot_texts()[before:]
    # W45 (2-8 Nov): D's maintenance on the 2nd and A's on the 5th; A came back for a repair
    # 15 days later: 返修率 1/2 = 50 %, missing the 10 % target
    summary = next(t for t in texts if "周报 2026-W45" in t)
    assert "返修率：50.0%（目标 ≤10.0%，未达成" in summary, summary
    assert "预约率：" in summary and "续保率：无续保结果记录" in summary
    docs = [m for m in _bot(group)[before:] if "document" in m]
    assert [d["document"]["file_name"] for d in docs] == ["carebot-weekly-2026-W45.csv"]
    data = env.emu.files[docs[0]["document"]["file_id"]].data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data)))
    dealer = dict(zip(rows[0], rows[1], strict=True))
    assert (dealer["period"], dealer["scope"], dealer["jobs"], dealer["comebacks"]) == (
        "2026-W45", "dealership", "2", "1")
    assert any(r[1:2] == ["repeat_repair_rate"] and "missed" in r for r in rows)
    # 李娜 gets her own in private: her two jobs, one came back
    mine = [t for t in advisor.bot_texts() if "李娜" in t and "2026-W45" in t]
    assert mine and "返修率：50.0%" in mine[0], advisor.bot_texts()
    assert any(m.get("document", {}).get("file_name", "").startswith("carebot-weekly-2026-W45")
               for m in advisor.bot_messages())
    # once per period: the tick runs again (another instance, a restart): nothing more
    env.clock.set(L(2026, 11, 9, 10, 0))
    after = len(_bot(group))
    assert await _tick(env) == 0
    assert len(_bot(group)) == after
    assert await Notice.filter(key__startswith="report:weekly:2026-W45:group").count() == 2


async def test_the_daily_digest(custom_env: Any) -> None:  # noqa: F811
    env = await custom_env(staff_chat_id=STAFF_CHAT, report_weekly_day=0, report_monthly_day=0)
    group = env.emu.group(STAFF_CHAT, "售后客服", is_forum=False)
    cars = await hand_made()
    owner = cars["A"].customer_id
    for day, slot in ((date(2026, 11, 10), "morning"), (date(2026, 11, 10), "afternoon"),
                      (date(2026, 11, 11), "morning")):
        await Booking.create(customer_id=owner, vehicle=cars["A"], day=day, slot=slot,
                             kind=BookingKind.MAINTENANCE, status=BookingStatus.BOOKED,
                             created_at=L(2026, 11, 9, 15, 0))
    # the call list: one call due today (2 pm), one tomorrow, one done
    for n, due, status in ((1, L(2026, 11, 10, 14, 0), CallStatus.OPEN),
                           (2, L(2026, 11, 11, 10, 0), CallStatus.OPEN),
                           (3, L(2026, 11, 10, 9, 0), CallStatus.REACHED)):
        tp = await Touchpoint.create(customer_id=owner, kind="followup_3d", occasion_key=f"c{n}",
                                     due_at=L(2026, 11, 8, 10, 0))
        await PhoneCall.create(touchpoint=tp, customer_id=owner, kind="followup_3d",
                               reason=CallReason.NOT_LINKED, status=status, due_at=due,
                               created_at=L(2026, 11, 8, 10, 0))
    env.clock.set(L(2026, 11, 10, 8, 30))
    await _tick(env)
    digest = next(t for t in group.bot_texts() if "日报 2026-11-09" in t)
    assert "昨日新预约：3 个" in digest and "今日预约：2 个 (afternoon 1, morning 1)" in digest
    assert "今日待打回访电话：1 个" in digest and "昨日回访：应回访 0" in digest, digest
