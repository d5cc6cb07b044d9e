"""Bookings with capacity, the owner's side (issue 17): /book any time, the job (a repair with
a note or photo), only open days and slots with room, change the time or cancel from the
confirmation; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from bot import bookings
from bot.bookings import Job, booking_rules
from db.models import (
    Booking,
    BookingChannel,
    BookingKind,
    BookingStatus,
    Customer,
    Touchpoint,
    TouchpointStatus,
)
from tests.conftest import BotEnv
from tests.test_booking import buttons
from tests.test_complaints import owner_with_car
from tests.test_journeys import custom_env  # noqa: F401 - fixture
from tests.test_walking_skeleton import local


async def caller(env: BotEnv, day: date, slot: str, kind: BookingKind, n: int = 1) -> None:
    """``n`` other owners (phoned in) take places of ``kind`` in ``slot`` of ``day``."""
    for _ in range(n):
        i = await Customer.all().count()
        other = await Customer.create(name=f"来电{i}", phone=f"+86139000001{i:02d}",
                                      link_token=f"caller-{i}")
        outcome = await bookings.book_job(
            Job(other.id, None, kind, channel=BookingChannel.PHONE), day=day, slot=slot,
            now=env.clock.now(), rules=booking_rules(env.settings))
        assert outcome.created


async def test_a_slot_at_capacity_is_not_offered_and_a_full_day_not_at_all(
        custom_env: Any, tmp_path: Path) -> None:  # noqa: F811
    env = await custom_env(booking_capacity="maintenance:2,repair:1,*:1")
    owner = await owner_with_car(env, tmp_path)  # 2026-11-03, a Tuesday
    await caller(env, date(2026, 11, 5), "09:00", BookingKind.MAINTENANCE, n=2)
    await caller(env, date(2026, 11, 5), "13:30", BookingKind.REPAIR)  # repairs do not count
    owner.send_text("/book")
    await env.poll()
    assert owner.last_bot_message()["text"] == "请问您要预约什么项目？"
    assert buttons(owner.last_bot_message()) == ["保养", "维修", "检测", "首次保养（走合保养）",
                                                 "其他服务", "暂不预约"]
    owner.press("保养")
    await env.poll()
    assert "11月5日 周四" in buttons(owner.last_bot_message())
    owner.press("11月5日 周四")
    await env.poll()
    assert buttons(owner.last_bot_message()) == ["下午 13:30-17:30", "« 重新选择"]

    owner.press("下午 13:30-17:30")
    await env.poll()
    assert "请确认您的预约" in owner.last_bot_message()["text"]
    # meanwhile a caller takes the last afternoon place for a service
    await caller(env, date(2026, 11, 5), "13:30", BookingKind.MAINTENANCE, n=2)
    owner.press("✅ 确认预约")
    await env.poll()
    assert owner.last_bot_message()["text"] == "抱歉，这个时间已不能预约，请重新选择日期："
    days = buttons(owner.last_bot_message())
    assert "11月5日 周四" not in days and "11月4日 周三" in days and "11月6日 周五" in days
    assert not await Booking.filter(customer__telegram_user_id=5001).exists()
    rules = booking_rules(env.settings)
    assert await bookings.free_slots(date(2026, 11, 5), BookingKind.MAINTENANCE, rules) == []
    assert [s.code for s in await bookings.free_slots(
        date(2026, 11, 5), BookingKind.INSPECTION, rules)] == ["09:00", "13:30"]


async def test_a_holiday_and_a_closed_day_are_not_offered(
        custom_env: Any, tmp_path: Path) -> None:  # noqa: F811
    env = await custom_env(booking_closed_days="2026-12-28..2026-12-29",
                           ticket_business_days="1-6")
    owner = await owner_with_car(env, tmp_path)
    env.clock.set(local(2026, 12, 24, 10, 0))
    owner.send_text("/book")
    await env.poll()
    owner.press("保养")
    await env.poll()
    days = buttons(owner.last_bot_message())
    assert "1月1日 周五" not in days  # 元旦, one of CAREBOT_HOLIDAYS
    assert "12月31日 周四" in days and "1月2日 周六" in days
    assert "12月28日 周一" not in days and "12月29日 周二" not in days  # closed for stock-taking
    assert not any("周日" in d for d in days)  # not a business day
    assert days[0] == "12月25日 周五"
    # an old picker's day that has become a holiday cannot be booked either
    rules = booking_rules(env.settings)
    assert date(2027, 1, 1) not in bookings.bookable_days(date(2026, 12, 24), rules)
    open_on_holidays = booking_rules(env.settings.model_copy(
        update={"booking_closed_on_holidays": False}))
    assert date(2027, 1, 1) in bookings.bookable_days(date(2026, 12, 24), open_on_holidays)


async def test_a_repair_is_booked_with_its_note_and_photo(env: BotEnv, tmp_path: Path) -> None:
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("/book")
    await env.poll()
    owner.press("维修")
    await env.poll()
    assert "简单描述故障" in owner.last_bot_message()["text"]
    owner.send_photo(caption="刹车有异响")
    await env.poll()
    assert owner.last_bot_message()["text"] == "收到，已记下。请选择到店日期："
    owner.press("11月4日 周三")
    await env.poll()
    owner.press("上午 9:00-12:00")
    await env.poll()
    assert "说明：刹车有异响" in owner.last_bot_message()["text"]
    owner.press("✅ 确认预约")
    await env.poll()
    assert "预约成功" in owner.bot_texts()[-1]
    booking = await Booking.get()
    assert (booking.kind, booking.note, booking.channel) == (BookingKind.REPAIR, "刹车有异响",
                                                            BookingChannel.BOT)
    assert booking.photo_file_id


async def test_the_owner_changes_the_time_then_cancels_from_the_confirmation(
        custom_env: Any, tmp_path: Path) -> None:  # noqa: F811
    env = await custom_env(staff_chat_id=-1001234)
    staff = env.emu.group(-1001234, "客服部", is_forum=False)
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("/book")
    await env.poll()
    owner.press("保养")
    await env.poll()
    owner.press("11月6日 周五")
    await env.poll()
    owner.press("上午 9:00-12:00")
    await env.poll()
    owner.press("✅ 确认预约")
    await env.poll()
    first = await Touchpoint.get(kind="booking_reminder")
    assert first.due_at == local(2026, 11, 5, 18, 0)

    owner.press("🔁 改约")
    await env.poll()
    assert owner.last_bot_message()["text"] == "请选择新的到店日期："
    owner.press("11月10日 周二")
    await env.poll()
    owner.press("下午 13:30-17:30")
    await env.poll()
    moved = owner.last_bot_message()
    assert "已为您改约" in moved["text"] and "11月10日 周二" in moved["text"]
    assert buttons(moved) == ["🔁 改约", "取消预约"]
    booking = await Booking.get()
    assert (booking.day, booking.slot, booking.status) == (date(2026, 11, 10), "13:30",
                                                           BookingStatus.BOOKED)
    first = await Touchpoint.get(id=first.id)
    assert (first.status, first.status_reason) == (TouchpointStatus.SKIPPED, "booking moved")
    second = await Touchpoint.get(kind="booking_reminder", status=TouchpointStatus.PENDING)
    assert second.due_at == local(2026, 11, 9, 18, 0)
    assert any("预约改约" in t and "11月6日 周五 上午 9:00-12:00 → 11月10日 周二" in t
               for t in staff.bot_texts())

    owner.press("取消预约")
    await env.poll()
    assert "已为您取消 11月10日 周二 下午 13:30-17:30 的预约" in owner.bot_texts()[-1]
    assert (await Booking.get()).status == BookingStatus.CANCELLED
    second = await Touchpoint.get(id=second.id)
    assert second.status == TouchpointStatus.SKIPPED
    assert sum("预约已取消" in t for t in staff.bot_texts()) == 1


async def test_a_skipped_or_late_note_does_not_swallow_what_the_owner_writes(
        env: BotEnv, tmp_path: Path) -> None:
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("/book")
    await env.poll()
    owner.press("维修")
    await env.poll()
    owner.press("跳过")
    await env.poll()
    assert owner.last_bot_message()["text"] == "请选择到店日期："
    owner.send_text("顺便问一下保险什么时候到期？")
    await env.poll()
    assert "收到，已记下" not in owner.bot_texts()[-1]  # not a note: it goes to a person
    owner.send_text("/book")
    await env.poll()
    owner.press("维修")
    await env.poll()
    env.clock.advance(minutes=31)
    owner.send_text("你们周末营业吗？")
    await env.poll()
    assert "收到，已记下" not in owner.bot_texts()[-1]
    owner.press("跳过")  # the old ask's button still books, without a note
    await env.poll()
    owner.press("11月5日 周四")
    await env.poll()
    owner.press("上午 9:00-12:00")
    await env.poll()
    owner.press("✅ 确认预约")
    await env.poll()
    booking = await Booking.get()
    assert (booking.kind, booking.note) == (BookingKind.REPAIR, "")
