"""Booking a visit from a reminder: pick a day and a slot, confirm, the advisor is told, a
reminder the day before, cancel; and what a booking does to the reminders it replaces."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from bot import bookings
from bot.bookings import booking_rules
from bot.intake import import_deliveries_file
from bot.journeys.plans import (
    BIRTHDAY,
    BOOKING_REMINDER,
    FIRST_SERVICE,
    SERVICE_DUE,
    journey_rules,
)
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    Customer,
    Staff,
    StaffRole,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)
from tests.conftest import BotEnv
from tests.test_journeys import custom_env  # noqa: F401 - fixture
from tests.test_walking_skeleton import (
    VIN_A,
    VIN_B,
    delivery_row,
    link_by_contact,
    local,
    write_csv,
)


async def delivered_and_linked(env: BotEnv, tmp_path: Path) -> Any:
    env.clock.set(local(2026, 11, 3, 10, 30))
    path = write_csv(tmp_path / "d.csv", [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")])
    await import_deliveries_file(path, rules=journey_rules(env.settings), now=env.clock.now())
    return await link_by_contact(env, 5001, "13800138000")


def buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b["text"] for row in rows for b in row]


async def test_book_confirm_remind_and_cancel(env: BotEnv, tmp_path: Path) -> None:
    owner = await delivered_and_linked(env, tmp_path)
    await Staff.create(name="李娜", role=StaffRole.ADVISOR, telegram_id=7001)
    advisor = env.emu.user(7001, first_name="娜")
    env.clock.set(local(2026, 11, 21, 10, 0))  # a Saturday: the first-service reminder
    await env.tick()
    assert "快满三周" in owner.bot_texts()[-1]

    owner.press("📅 预约保养")
    await env.poll()
    picker = owner.last_bot_message()
    assert picker["text"] == "请选择到店日期："
    days = buttons(picker)
    assert days[0] == "11月22日 周日" and "12月5日 周六" in days and days[-1] == "暂不预约"
    assert len(days) == 14 + 1
    owner.press("11月24日 周二")
    await env.poll()
    assert owner.last_bot_message()["text"] == "11月24日 周二，请选择时间段："
    owner.press("上午 9:00-12:00")
    await env.poll()
    ask = owner.last_bot_message()
    assert "11月24日 周二" in ask["text"] and "首次保养（走合保养）" in ask["text"]
    assert "星辰 S7 粤A12345" in ask["text"]
    assert await Booking.all().count() == 0  # nothing is stored before the owner confirms
    owner.press("✅ 确认预约")
    await env.poll()
    confirmed = owner.last_bot_message()
    assert "预约成功" in confirmed["text"] and "张伟" in confirmed["text"]
    assert buttons(confirmed) == ["🔁 改约", "取消预约"]
    booking = await Booking.get()
    assert (booking.day, booking.slot, booking.kind, booking.status) == (
        date(2026, 11, 24), "09:00", BookingKind.FIRST_SERVICE, BookingStatus.BOOKED)
    notice = advisor.bot_texts()[-1]
    assert "新预约" in notice and "张伟" in notice and "+8613800138000" in notice
    assert "11月24日 周二 上午 9:00-12:00" in notice

    # going through the picker again does not book twice
    owner.press("📅 预约保养")
    await env.poll()
    owner.press("11月25日 周三")
    await env.poll()
    owner.press("下午 13:30-17:30")
    await env.poll()
    owner.press("✅ 确认预约")
    await env.poll()
    assert "您已经预约了 11月24日 周二 上午 9:00-12:00" in owner.bot_texts()[-1]
    assert await Booking.all().count() == 1
    reminder = await Touchpoint.get(kind=BOOKING_REMINDER)
    assert reminder.due_at == local(2026, 11, 23, 18, 0)

    env.clock.set(local(2026, 11, 23, 17, 59))
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 23, 18, 0))
    assert (await env.tick()).sent == 1
    text = owner.bot_texts()[-1]
    assert "明天（2026-11-24）09:00-12:00" in text and "首次保养" in text
    assert buttons(owner.last_bot_message()) == ["🔁 改约", "取消预约"]

    owner.press("取消预约")
    await env.poll()
    assert "已为您取消 11月24日 周二 上午 9:00-12:00 的预约" in owner.bot_texts()[-1]
    assert (await Booking.get()).status == BookingStatus.CANCELLED
    assert "预约已取消" in advisor.bot_texts()[-1]
    owner.press("取消预约")  # the confirmation's cancel button: already cancelled
    await env.poll()
    assert any("这个预约已经取消了" in t for t in owner.bot_texts())
    assert sum("预约已取消" in t for t in advisor.bot_texts()) == 1


async def test_cancelling_before_the_reminder_cancels_it_and_staff_chat_hears(
    custom_env: Any, tmp_path: Path  # noqa: F811
) -> None:
    env = await custom_env(staff_chat_id=-1001234, booking_weekdays="1-5")
    staff = env.emu.group(-1001234, "客服部", is_forum=False)
    owner = await delivered_and_linked(env, tmp_path)
    env.clock.set(local(2026, 11, 21, 10, 0))
    await env.tick()
    owner.press("📅 预约保养")
    await env.poll()
    days = buttons(owner.last_bot_message())
    assert days[0] == "11月23日 周一" and not any("周六" in d or "周日" in d for d in days)
    owner.press("11月25日 周三")
    await env.poll()
    owner.press("下午 13:30-17:30")
    await env.poll()
    owner.press("✅ 确认预约")
    await env.poll()
    assert any("新预约" in t for t in staff.bot_texts())  # no advisor on Telegram: staff chat
    owner.press("取消预约")
    await env.poll()
    reminder = await Touchpoint.get(kind=BOOKING_REMINDER)
    assert (
        reminder.status == TouchpointStatus.SKIPPED
        and reminder.status_reason == "booking cancelled"
    )
    env.clock.set(local(2026, 11, 24, 18, 0))
    assert (await env.tick()).sent == 0


async def test_a_stale_day_button_asks_again(env: BotEnv, tmp_path: Path) -> None:
    owner = await delivered_and_linked(env, tmp_path)
    env.clock.set(local(2026, 11, 21, 10, 0))
    await env.tick()
    owner.press("📅 预约保养")
    await env.poll()
    env.clock.set(local(2026, 11, 23, 10, 0))  # two days later, the picker still on screen
    owner.press("11月22日 周日")
    await env.poll()
    message = owner.last_bot_message()
    assert message["text"] == "抱歉，这个时间已不能预约，请重新选择日期："
    assert buttons(message)[0] == "11月24日 周二"
    owner.press("暂不预约")
    await env.poll()
    assert "随时发送 /book 再预约" in owner.bot_texts()[-1]
    assert await Booking.all().count() == 0


async def test_forged_booking_data_cannot_book_for_someone_else(env: BotEnv,
                                                                 tmp_path: Path) -> None:
    await delivered_and_linked(env, tmp_path)
    env.clock.set(local(2026, 11, 21, 10, 0))
    await env.tick()
    tp = await Touchpoint.get(kind=FIRST_SERVICE)
    other = await another_owner(env, tmp_path)
    # another linked owner sends callback data naming the first owner's reminder
    chat = env.emu.chats[other.chat_id]
    stored = next(m for m in reversed(chat.messages) if m.from_bot)
    forged = f"bk:c:{tp.id}:0:f:20261124:0900"
    _show_button(stored, forged)  # (a button no keyboard shows is refused before this)
    env.emu._queue_callback(chat, other.user_id, stored, forged, "x")
    await env.poll()
    assert "预约按钮已失效" in other.bot_texts()[-1]
    assert await Booking.all().count() == 0


async def test_a_booking_cannot_start_from_a_birthday_greeting(env: BotEnv,
                                                                tmp_path: Path) -> None:
    owner = await delivered_and_linked(env, tmp_path)
    customer = await Customer.get(phone="+8613800138000")
    env.clock.set(local(2026, 11, 21, 10, 0))
    await env.tick()
    greeting = await Touchpoint.create(customer_id=customer.id, kind=BIRTHDAY,
                                       occasion_key="birthday:20261121", due_at=env.clock.now(),
                                       status=TouchpointStatus.SENT, sent_at=env.clock.now())
    chat = env.emu.chats[owner.chat_id]
    stored = next(m for m in reversed(chat.messages) if m.from_bot)
    _show_button(stored, f"bk:s:{greeting.id}")
    env.emu._queue_callback(chat, owner.user_id, stored, f"bk:s:{greeting.id}", "x")
    await env.poll()
    assert "预约按钮已失效" in owner.bot_texts()[-1]
    assert "请选择到店日期" not in owner.bot_texts()[-1]
    assert await Booking.all().count() == 0


def _show_button(stored: Any, data: str) -> None:
    """Put a button with ``data`` on a stored message's keyboard (forged data must meet
    the domain's checks; a button its message does not show is answered as stale)."""
    stored.message["reply_markup"] = {"inline_keyboard": [[{"text": "x",
                                                            "callback_data": data}]]}


async def another_owner(env: BotEnv, tmp_path: Path) -> Any:
    path = write_csv(tmp_path / "other.csv",
                     [delivery_row(VIN_B, "13900000009", "2026-11-01 10:00", name="路人")])
    await import_deliveries_file(path, rules=journey_rules(env.settings), now=env.clock.now())
    return await link_by_contact(env, 5009, "13900000009")


async def test_first_service_booking_replaces_the_reminder_until_cancelled(
    env: BotEnv, tmp_path: Path
) -> None:
    await delivered_and_linked(env, tmp_path)
    customer = await Customer.get(phone="+8613800138000")
    vehicle = await Vehicle.get(vin=VIN_A)
    now = local(2026, 11, 10, 12, 0)
    rules = booking_rules(env.settings)
    outcome = await bookings.book(customer_id=customer.id, vehicle_id=vehicle.id,
                                  day=date(2026, 11, 16), slot="afternoon",
                                  kind=BookingKind.FIRST_SERVICE, source_touchpoint_id=None,
                                  now=now, rules=rules)
    assert outcome.created
    reminder = await Touchpoint.get(kind=FIRST_SERVICE)
    assert reminder.status == TouchpointStatus.SKIPPED
    assert reminder.status_reason == "first service already booked"
    again = await bookings.book(customer_id=customer.id, vehicle_id=vehicle.id,
                                day=date(2026, 11, 17), slot="morning",
                                kind=BookingKind.FIRST_SERVICE, source_touchpoint_id=None,
                                now=now, rules=rules)
    assert not again.created and again.booking.id == outcome.booking.id
    await bookings.cancel(outcome.booking.id, customer_id=customer.id, now=now,
                          tz=env.settings.tz)
    reminder = await Touchpoint.get(kind=FIRST_SERVICE)
    assert reminder.status == TouchpointStatus.PENDING  # it goes out on day 18 after all
    assert await bookings.cancel(outcome.booking.id, customer_id=customer.id + 1,
                                 now=now, tz=env.settings.tz) is None


async def test_a_booking_for_a_past_day_does_not_skip_a_new_service_due_reminder(
    env: BotEnv, tmp_path: Path
) -> None:
    await delivered_and_linked(env, tmp_path)
    customer = await Customer.get(phone="+8613800138000")
    vehicle = await Vehicle.get(vin=VIN_A)
    now = local(2027, 5, 10, 10, 0)
    # booked (and never cancelled) for a day long gone
    await Booking.create(customer_id=customer.id, vehicle_id=vehicle.id, day=date(2026, 11, 24),
                         slot="morning", kind=BookingKind.MAINTENANCE, created_at=now)
    reminder = await Touchpoint.create(customer_id=customer.id, vehicle_id=vehicle.id,
                                       kind=SERVICE_DUE, occasion_key="visit:1", due_at=now)
    assert await bookings.skip_superseded_reminders(now, env.settings.tz) == 0
    reminder = await Touchpoint.get(id=reminder.id)
    assert reminder.status == TouchpointStatus.PENDING
    # a booking for today still stands in for it
    await Booking.create(customer_id=customer.id, vehicle_id=vehicle.id, day=date(2027, 5, 10),
                         slot="afternoon", kind=BookingKind.MAINTENANCE, created_at=now)
    assert await bookings.skip_superseded_reminders(now, env.settings.tz) == 1
    reminder = await Touchpoint.get(id=reminder.id)
    assert reminder.status == TouchpointStatus.SKIPPED
