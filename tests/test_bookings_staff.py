"""Bookings with capacity, the staff's side (issue 17): a booking entered for a caller takes
a slot (console and ``carebot booking add``), arrived / no-show, the no-show's gentle offer
of a new time, the morning list in the staff group, and 预约率 worked out by hand; on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import booking_desk, bookings
from bot.booking_digest import post_digest
from bot.bookings import Job, booking_rate, booking_rules
from bot.cli import main
from bot.rules import parse_rules
from db.models import (
    AuditLog,
    Booking,
    BookingChannel,
    BookingKind,
    BookingStatus,
    Customer,
    Notice,
    NoticeStatus,
    Staff,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
    VisitKind,
)
from tests.browser.conftest import ConsoleEnv, add_staff
from tests.test_booking import buttons
from tests.test_console_access import csrf, signed_in
from tests.test_console_conversations import STAFF_CHAT, env, get, owner  # noqa: F401
from tests.test_walking_skeleton import VIN_A, VIN_B, delivery_row, local, write_csv


async def post(http: Any, url: str, data: dict[str, str], token: str) -> tuple[int, str, str]:
    async with http.post(url, data={**data, "_csrf": token}, allow_redirects=False) as r:
        if r.status == 303:
            location = r.headers["Location"]
            async with http.get(url.split("/bookings")[0] + location) as page:
                return 303, location, await page.text()
        return r.status, "", await r.text()


async def test_a_staff_booking_for_a_caller_takes_a_slot(env: ConsoleEnv,  # noqa: F811
                                                          tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)  # 张伟, 粤A12345, 2026-11-03 (Tuesday) 10:00
    await owner(env, tmp_path, user_id=5002, phone="13900000002", name="刘洋", plate="粤B67890")
    env.carebot.services.settings = env.settings.model_copy(
        update={"booking_capacity": "repair:1,maintenance:2"})
    env.carebot.services.rules = parse_rules(env.carebot.services.settings)
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(env.base, "wang")
    async with http:
        token = await csrf(http, f"{env.base}/bookings")
        status, where, body = await post(http, f"{env.base}/bookings", {
            "who": "138 0013 8000", "kind": "repair", "day": "2026-11-05", "slot": "09:00",
            "channel": "phone", "note": "空调不制冷"}, token)
        assert status == 303 and where.startswith("/bookings?day=2026-11-05&done=added")
        assert "张伟" in body and "空调不制冷" in body and "Repair" in body
        booking = await Booking.get(customer__phone="+8613800138000")
        assert (booking.day, booking.slot, booking.kind, booking.channel, booking.note) == (
            date(2026, 11, 5), "09:00", BookingKind.REPAIR, BookingChannel.PHONE, "空调不制冷")
        assert booking.created_by_id == (await Staff.get(login="wang")).id
        # the caller's booking took the slot's one repair place: the next one is refused
        status, _, body = await post(http, f"{env.base}/bookings", {
            "who": "粤B67890", "kind": "repair", "day": "2026-11-05", "slot": "09:00",
            "channel": "walk_in"}, token)
        assert status == 409 and "no place left" in body
        assert 'value="粤B67890"' in body  # what was typed stays
        # ...while the owner in Telegram is no longer offered that slot for a repair
        rules = booking_rules(env.carebot.services.settings)
        assert [s.code for s in await bookings.free_slots(
            date(2026, 11, 5), BookingKind.REPAIR, rules)] == ["13:30"]
        status, _, body = await post(http, f"{env.base}/bookings", {
            "who": "13700000000", "kind": "repair", "day": "2026-11-05", "slot": "13:30",
            "channel": "phone"}, token)
        assert status == 422 and "No owner file" in body
        _, page = await get(http, f"{env.base}/bookings?day=2026-11-05")
        assert "Repair 1/1" in page and "By phone" in page
    assert await AuditLog.filter(action="booking.add").count() == 1
    told = driver.bot_texts()[-1]  # linked: the confirmation now, the reminder the day before
    assert "已为您登记预约" in told and "日期：11月5日 周四\n时间：上午 9:00-12:00" in told
    assert "说明：空调不制冷" in told
    reminder = await Touchpoint.get(kind="booking_reminder", customer_id=booking.customer_id)
    assert reminder.due_at == local(2026, 11, 4, 18, 0), reminder.due_at


def test_carebot_booking_add_takes_a_slot_and_refuses_when_full(
        tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"sqlite://{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("CAREBOT_BOT_TOKEN", "")
    monkeypatch.setenv("CAREBOT_BOOKING_CAPACITY", "inspection:1")
    monkeypatch.setenv("CAREBOT_HOLIDAYS", "")
    rows = [delivery_row(VIN_A, "13800138000", "2026-10-01 10:00"),
            delivery_row(VIN_B, "13900000009", "2026-10-01 10:00", name="路人",
                         plate="粤B67890")]
    assert main(["import", "deliveries", str(write_csv(tmp_path / "d.csv", rows))]) == 0
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert main(["booking", "add", "粤A12345", "--kind", "inspection", "--day", tomorrow,
                 "--slot", "13:30", "--channel", "walk_in", "--note", "年检"]) == 0
    assert "booked #1" in capsys.readouterr().out
    # the one inspection place of that slot is taken: the next caller is refused
    assert main(["booking", "add", "13900000009", "--kind", "inspection", "--day", tomorrow,
                 "--slot", "13:30"]) == 1
    assert "no place left for inspection" in capsys.readouterr().err
    assert main(["booking", "add", "13900000009", "--kind", "inspection", "--day", tomorrow,
                 "--slot", "9:00"]) == 0
    assert main(["booking", "add", "13700000000", "--day", tomorrow, "--slot", "09:00"]) == 1
    assert "no owner file" in capsys.readouterr().err
    assert main(["booking", "list", "--day", tomorrow]) == 0
    out = capsys.readouterr().out
    assert f"bookings {tomorrow}: 2" in out
    assert out.index("09:00-12:00") < out.index("#2") < out.index("13:30-17:30") \
        < out.index("#1")
    assert "walk_in" in out and "粤A12345" in out


async def test_a_no_show_gets_the_gentle_rebooking_message(env: ConsoleEnv,  # noqa: F811
                                                            tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    vehicle = await Vehicle.get(customer_id=customer.id)
    rules = booking_rules(env.settings)
    outcome = await bookings.book_job(Job(customer.id, vehicle.id, BookingKind.MAINTENANCE),
                                      day=date(2026, 11, 5), slot="09:00",
                                      now=env.clock.now(), rules=rules)
    assert outcome.booking is not None
    await add_staff("wang", "agent", name="王客服")
    assert await booking_desk.mark(outcome.booking.id, BookingStatus.NO_SHOW, staff_id=None,
                                   now=env.clock.now(), rules=rules) is None  # day ahead
    env.clock.set(local(2026, 11, 5, 12, 30))
    http = await signed_in(env.base, "wang")
    async with http:
        token = await csrf(http, f"{env.base}/bookings")
        url = f"{env.base}/bookings/{outcome.booking.id}/mark"
        status, where, body = await post(http, url, {"status": "no_show"}, token)
        assert (status, where) == (
            303, f"/bookings?day=2026-11-05&done=no_show#b{outcome.booking.id}")
        assert "offered a new time" in body
    assert (await Booking.get(id=outcome.booking.id)).status == BookingStatus.NO_SHOW
    assert (await env.tick()).sent == 1
    message = driver.last_bot_message()
    assert "没有见到您" in message["text"] and "2026-11-05 09:00-12:00" in message["text"]
    assert buttons(message) == ["📅 预约保养"]
    driver.press("📅 预约保养")  # the job it missed, the same car: straight to the days
    await env.poll()
    assert driver.last_bot_message()["text"] == "请选择到店日期："
    assert "11月6日 周五" in buttons(driver.last_bot_message())
    # marked again (a mistake corrected) owes nothing more; arrived takes back an unsent one
    assert await booking_desk.mark(outcome.booking.id, BookingStatus.NO_SHOW, staff_id=None,
                                   now=env.clock.now(), rules=rules) is not None
    assert await Touchpoint.filter(kind="booking_no_show").count() == 1


async def test_marking_arrived_after_a_no_show_takes_the_offer_back(
        env: ConsoleEnv, tmp_path: Path) -> None:  # noqa: F811
    await owner(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    rules = booking_rules(env.settings)
    env.clock.set(local(2026, 11, 3, 21, 30))  # quiet hours: the offer waits for the morning
    outcome = await bookings.book_job(Job(customer.id, None, BookingKind.INSPECTION),
                                      day=date(2026, 11, 3), slot="13:30",
                                      now=local(2026, 11, 2, 10, 0), rules=rules)
    assert outcome.booking is not None
    await booking_desk.mark(outcome.booking.id, BookingStatus.NO_SHOW, staff_id=None,
                            now=env.clock.now(), rules=rules)
    offer = await Touchpoint.get(kind="booking_no_show")
    assert offer.due_at == local(2026, 11, 4, 9, 0)  # quiet hours end
    await booking_desk.mark(outcome.booking.id, BookingStatus.ARRIVED, staff_id=None,
                            now=env.clock.now(), rules=rules)
    offer = await Touchpoint.get(id=offer.id)
    assert (offer.status, offer.status_reason) == (TouchpointStatus.SKIPPED,
                                                   "marked arrived after all")


async def test_the_morning_list_goes_to_the_staff_group_once(env: ConsoleEnv,  # noqa: F811
                                                            tmp_path: Path) -> None:
    await owner(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    vehicle = await Vehicle.get(customer_id=customer.id)
    rules = booking_rules(env.settings)
    await bookings.book_job(Job(customer.id, vehicle.id, BookingKind.REPAIR, note="异响"),
                            day=date(2026, 11, 4), slot="13:30", now=env.clock.now(),
                            rules=rules)
    services = env.carebot.services
    env.clock.set(local(2026, 11, 4, 7, 59))
    assert not await post_digest(services)
    env.clock.set(local(2026, 11, 4, 8, 0))
    assert await post_digest(services)
    assert not await post_digest(services)  # once a day, whoever gets there first
    notice = await Notice.get(key="booking_digest:2026-11-04")
    assert "今日预约 2026-11-04：共 1 个" in notice.text
    assert "13:30-17:30（1）" in notice.text and "张伟 星辰 S7 粤A12345 维修" in notice.text
    assert "异响" in notice.text and "13800138000" not in notice.text
    assert notice.status == NoticeStatus.SENT and notice.chats == [STAFF_CHAT]


async def test_booking_rate_on_hand_made_data(db: str) -> None:
    """Five visits in November: two booked (one by a booking 3 days before a repair left),
    one whose booking was cancelled, one a no-show then a walk-in, one of another advisor."""
    tz = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
    c = await Customer.create(name="甲", phone="+8613000000001", link_token="a")
    cars = [await Vehicle.create(vin=f"LSVAU2180N218{i:04d}", customer=c) for i in range(5)]

    async def visit(car: Vehicle, day: date, advisor: str = "李娜") -> None:
        left = datetime.combine(day, datetime.min.time().replace(hour=16), tz).astimezone(UTC)
        await Visit.create(vehicle=car, kind=VisitKind.MAINTENANCE, advisor=advisor,
                           left_at=left)

    async def booked(car: Vehicle, day: date, status: BookingStatus) -> None:
        await Booking.create(customer=c, vehicle=car, day=day, slot="09:00",
                             kind=BookingKind.MAINTENANCE, status=status,
                             created_at=datetime(2026, 10, 1, tzinfo=UTC))

    await visit(cars[0], date(2026, 11, 5))
    await booked(cars[0], date(2026, 11, 5), BookingStatus.ARRIVED)
    await visit(cars[1], date(2026, 11, 9))
    await booked(cars[1], date(2026, 11, 6), BookingStatus.BOOKED)  # a repair over days
    await visit(cars[2], date(2026, 11, 12))
    await booked(cars[2], date(2026, 11, 12), BookingStatus.CANCELLED)
    await visit(cars[3], date(2026, 11, 20))
    await booked(cars[3], date(2026, 11, 19), BookingStatus.NO_SHOW)
    await visit(cars[4], date(2026, 11, 21), advisor="王强")
    await booked(cars[4], date(2026, 11, 21), BookingStatus.ARRIVED)
    await visit(cars[0], date(2026, 11, 7))  # back two days later: that booking is used up
    await visit(cars[1], date(2026, 10, 31))  # October: not counted

    month = await booking_rate(date(2026, 11, 1), date(2026, 12, 1), tz)
    assert (month.booked, month.visits) == (3, 6) and month.rate == 0.5
    li = await booking_rate(date(2026, 11, 1), date(2026, 12, 1), tz, advisor="李娜")
    assert (li.booked, li.visits) == (2, 5)
    strict = await booking_rate(date(2026, 11, 1), date(2026, 12, 1), tz, visit_days=0)
    assert (strict.booked, strict.visits) == (2, 6)
    empty = await booking_rate(date(2026, 12, 1), date(2027, 1, 1), tz)
    assert (empty.booked, empty.visits, empty.rate) == (0, 0, None)


def test_the_bookings_page_strings_exist_in_both_languages() -> None:
    import re

    from bot.web.console.render import load_strings

    strings = load_strings()
    template = (Path(__file__).parent.parent / "bot" / "web" / "console" / "templates"
                / "bookings.html").read_text(encoding="utf-8")
    used = set(re.findall(r"""\bt\(['"]([a-z_]+\.[a-z_.]+)['"]\s*[,)]""", template))
    made = {f"bookings.kind.{k.value}" for k in BookingKind}
    made |= {f"bookings.channel.{c.value}" for c in BookingChannel}
    made |= {f"bookings.status.{s.value}" for s in BookingStatus}
    made |= {f"bookings.{group}.{key}" for group, keys in (
        ("mark", ("arrived", "no_show")), ("done", ("added", "arrived", "no_show")),
        ("refused", ("not_found", "several_cars", "kind", "too_long", "day", "full", "exists",
                     "mark"))) for key in keys}
    made |= {"nav.bookings"} | {f"customers.booking_kind.{k.value}" for k in BookingKind}
    made |= {f"customers.booking_status.{s.value}" for s in BookingStatus}
    for lang in ("zh_CN", "en"):
        assert used | made <= set(strings[lang]), (used | made) - set(strings[lang])
