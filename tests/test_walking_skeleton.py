"""The first slice end to end: import -> link -> the 2-hour check-in, through the emulator.

Everything goes over real HTTP: PTB talks to the Telegram emulator; time is a FakeClock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.intake import import_deliveries_file
from bot.journeys.plans import CHECKIN, journey_rules
from bot.vin import check_digit
from db.models import Customer, MessageLog, Touchpoint, TouchpointStatus
from tests.conftest import BotEnv, Env

SH = ZoneInfo("Asia/Shanghai")
HEADER = "vin,plate,model,owner_name,phone,birthday,licence_expiry,insurance_expiry," \
         "delivered_at,sales_advisor,language\n"


def vin(serial: str, wmi: str = "LSV", vds: str = "AU218") -> str:
    """A Chinese VIN with a correct check digit."""
    body = f"{wmi}{vds}0N{serial}"
    assert len(body) == 17
    return body[:8] + check_digit(body) + body[9:]


VIN_A = vin("2183294")
VIN_B = vin("2183295")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
          second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


async def import_file(env: Env, path: Path):  # type: ignore[no-untyped-def]
    return await import_deliveries_file(path, rules=journey_rules(env.settings),
                                        now=env.clock.now())


def delivery_row(vin_: str, phone: str, delivered: str, name: str = "张伟",
                 model: str = "星辰 S7", plate: str = "粤A12345", lang: str = "zh_CN") -> str:
    return f"{vin_},{plate},{model},{name},{phone},1985-06-01,2030-01-01,2027-10-01," \
           f"{delivered},李娜,{lang}"


async def link_by_contact(env: Env, user_id: int, phone: str):  # type: ignore[no-untyped-def]
    owner = env.emu.user(user_id, first_name="伟")
    owner.send_text("/start")
    await env.poll()
    owner.share_contact(phone)
    await env.poll()
    return owner


async def test_checkin_reaches_linked_owner_once(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    csv = write_csv(tmp_path / "d.csv", [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")])
    result = await import_file(env, csv)
    assert (result.created, result.errors) == (1, [])

    owner = await link_by_contact(env, 5001, "+8613800138000")
    assert any("成功绑定" in t for t in owner.bot_texts())

    await env.tick()  # 10:30: not due yet
    assert not any("两个小时" in t for t in owner.bot_texts())

    env.clock.set(local(2026, 11, 3, 12, 0))
    report = await env.tick()
    assert report.sent == 1
    checkins = [t for t in owner.bot_texts() if "两个小时" in t]
    assert len(checkins) == 1
    assert "张伟" in checkins[0] and "星辰 S7" in checkins[0] and "星辰汽车" in checkins[0]
    # every follow-up carries the way to reach a person
    markup = owner.last_bot_message()["reply_markup"]
    assert any("联系客服" in b["text"] for row in markup["inline_keyboard"] for b in row)

    # the same file again, and more ticks: nothing new
    again = await import_file(env, csv)
    assert again.created == 0 and again.unchanged == 1
    env.clock.advance(hours=1)
    await env.tick()
    await env.tick()
    assert len([t for t in owner.bot_texts() if "两个小时" in t]) == 1
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.status == TouchpointStatus.SENT and tp.telegram_message_id is not None
    logged = await MessageLog.filter(touchpoint_id=tp.id).count()
    assert logged == 1


async def test_evening_delivery_waits_for_quiet_hours_to_end(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 20, 5))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 20:00")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 3, 22, 0))
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 8, 59))
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 9, 0))
    assert (await env.tick()).sent == 1
    assert any("两个小时" in t for t in owner.bot_texts())
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.sent_at == local(2026, 11, 4, 9, 0).astimezone(UTC)


async def test_late_import_expires_the_checkin(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 6, 11, 0))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    report = await env.tick()
    assert report.sent == 0 and report.expired == 1
    owner = await link_by_contact(env, 5001, "13800138000")
    assert (await env.tick()).sent == 0
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.status == TouchpointStatus.EXPIRED
    assert not any("两个小时" in t for t in owner.bot_texts())


async def test_owner_who_blocked_the_bot_is_marked_unreachable(env: BotEnv,
                                                                tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv", [
        delivery_row(VIN_A, "13800138000", "2026-11-03 10:00"),
        delivery_row(VIN_B, "13800138000", "2026-11-03 10:20", model="星辰 X3",
                     plate="粤A54321"),
    ]))
    owner = await link_by_contact(env, 5001, "13800138000")
    owner.block()
    calls_before = env.emu.stats["calls"].get("sendMessage", 0)
    env.clock.set(local(2026, 11, 3, 12, 10))  # only the first check-in is due
    report = await env.tick()
    assert report.unreachable == 1
    customer = await Customer.get(phone="+8613800138000")
    assert customer.unreachable_at == env.clock.now()
    env.clock.set(local(2026, 11, 3, 13, 0))  # the second is due: no new attempt
    report = await env.tick()
    assert report.skipped == 1 and report.sent == 0
    assert env.emu.stats["calls"].get("sendMessage", 0) == calls_before + 1
    statuses = sorted(tp.status for tp in await Touchpoint.filter(kind=CHECKIN))
    assert statuses == [TouchpointStatus.SKIPPED, TouchpointStatus.UNREACHABLE]


async def test_429_is_waited_out_then_sent(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 3, 12, 0))
    env.emu.fail_next("sendMessage", error_code=429, retry_after=1)
    report = await env.tick()
    assert (report.sent, report.retried) == (0, 1)
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.status == TouchpointStatus.PENDING
    assert tp.due_at == env.clock.now() + timedelta(seconds=1)
    env.clock.advance(seconds=0.5)
    assert (await env.tick()).sent == 0  # retry_after not over yet
    env.clock.advance(seconds=0.5)
    assert (await env.tick()).sent == 1
    assert len([t for t in owner.bot_texts() if "两个小时" in t]) == 1
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.attempts == 1  # a 429 is pacing, not a failed attempt


async def test_network_errors_back_off_then_give_up(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 3, 12, 0))
    env.emu.fail_next("sendMessage", error_code=500, description="Internal Server Error",
                      count=100)
    for _ in range(env.settings.max_attempts):
        await env.tick()
        env.clock.advance(hours=1)
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.status == TouchpointStatus.FAILED
    assert tp.attempts == env.settings.max_attempts
    assert "gave up" in tp.last_error


async def test_touchpoint_stuck_in_sending_is_sent_once_after_restart(
    env: BotEnv, tmp_path: Path
) -> None:
    from bot.app import create_app

    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 3, 12, 0))
    # a dispatcher claimed it and died before sending
    lease_end = env.clock.now() + timedelta(seconds=env.settings.lease_seconds)
    await Touchpoint.filter(kind=CHECKIN).update(status=TouchpointStatus.SENDING,
                                                 lease_until=lease_end, attempts=1)
    await env.carebot.stop()
    env.carebot = create_app(env.settings, env.clock, pace=env.emu.pace)  # "restart"
    await env.carebot.initialize()
    assert (await env.tick()).sent == 0  # still leased
    env.clock.set(lease_end + timedelta(seconds=1))
    report = await env.tick()
    assert report.reclaimed == 1 and report.sent == 1
    await env.tick()
    assert len([t for t in owner.bot_texts() if "两个小时" in t]) == 1


async def test_forwarded_contact_of_someone_else_does_not_link(env: BotEnv,
                                                               tmp_path: Path) -> None:
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 09:00")]))
    stranger = env.emu.user(6002, first_name="Mallory")
    stranger.send_text("/start")
    await env.poll()
    stranger.share_contact("+8613800138000", user_id=5001)  # the owner's card, forwarded
    await env.poll()
    stranger.share_contact("+8613800138000", user_id=None)  # a contact without a user
    await env.poll()
    customer = await Customer.get(phone="+8613800138000")
    assert customer.telegram_user_id is None
    assert sum("只能使用您本人的手机号码" in t for t in stranger.bot_texts()) == 2


async def test_unknown_number_gets_the_dealers_phone(env: BotEnv) -> None:
    stranger = env.emu.user(6003, first_name="Sam", language_code="en")
    stranger.send_text("/start")
    await env.poll()
    stranger.share_contact("+8613900000000")
    await env.poll()
    assert "020-88886666" in stranger.bot_texts()[-1]
    assert "could not find" in stranger.bot_texts()[-1]


async def test_deep_link_links_and_sends_what_is_owed(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 14, 0))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    customer = await Customer.get(phone="+8613800138000")
    owner = env.emu.user(5001)
    owner.send_text(f"/start {customer.link_token}")
    await env.poll()  # linking sends the check-in owed since 12:00 right away
    texts = owner.bot_texts()
    assert any("成功绑定" in t for t in texts)
    assert len([t for t in texts if "两个小时" in t]) == 1
    bad = env.emu.user(5002)
    bad.send_text("/start not-a-real-token")
    await env.poll()
    assert "无效" in bad.bot_texts()[-1]


async def test_unlinked_owner_past_expiry_gets_nothing(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    env.clock.set(local(2026, 11, 4, 9, 0))  # 12 h after 12:00 + quiet hours: expired
    report = await env.tick()
    assert report.expired == 1
    tp = await Touchpoint.get(kind=CHECKIN)
    assert "not linked" in tp.status_reason
    owner = await link_by_contact(env, 5001, "13800138000")
    assert not any("两个小时" in t for t in owner.bot_texts())


async def test_stop_and_language(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    owner.send_text("/language")
    await env.poll()
    owner.press("English")
    await env.poll()
    customer = await Customer.get(phone="+8613800138000")
    assert customer.language == "en"
    owner.send_text("/stop")
    await env.poll()
    owner.press("All follow-ups and marketing")
    await env.poll()
    customer = await Customer.get(phone="+8613800138000")
    assert customer.followups_refused and not customer.marketing_consent
    env.clock.set(local(2026, 11, 3, 12, 0))
    report = await env.tick()
    assert report.sent == 0 and report.skipped == 1
    assert "declined" in (await Touchpoint.get(kind=CHECKIN)).status_reason


async def test_english_owner_gets_english_checkin(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv", [
        delivery_row(VIN_A, "13800138000", "2026-11-03 10:00", name="Tom <b>Lee</b>",
                     model="Star S7", lang="en")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 3, 12, 0))
    assert (await env.tick()).sent == 1
    text = owner.bot_texts()[-1]
    assert "Hello Tom <b>Lee</b>" in text  # escaped in HTML, shown literally to the owner
    assert "Star S7" in text and "two hours" in text


async def test_blocking_is_noticed_before_any_send(env: BotEnv, tmp_path: Path) -> None:
    """Telegram tells the bot when an owner blocks it (my_chat_member): no 403 needed."""
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    owner = await link_by_contact(env, 5001, "13800138000")
    owner.block()
    await env.poll()
    assert (await Customer.get(phone="+8613800138000")).unreachable_at == env.clock.now()
    owner.unblock()
    await env.poll()
    assert (await Customer.get(phone="+8613800138000")).unreachable_at is None


async def test_a_used_or_forwarded_link_cannot_take_over_the_file(env: BotEnv,
                                                                  tmp_path: Path) -> None:
    await import_file(env, write_csv(tmp_path / "d.csv",
                                     [delivery_row(VIN_A, "13800138000", "2026-11-03 09:00")]))
    token = (await Customer.get(phone="+8613800138000")).link_token
    owner = env.emu.user(5001)
    owner.send_text(f"/start {token}")
    await env.poll()
    linked = await Customer.get(phone="+8613800138000")
    assert linked.telegram_user_id == 5001
    assert linked.link_token != token  # links work once
    other = env.emu.user(6001)
    other.send_text(f"/start {token}")  # the old, forwarded link
    await env.poll()
    other.send_text(f"/start {linked.link_token}")  # even the current one
    await env.poll()
    assert (await Customer.get(phone="+8613800138000")).telegram_user_id == 5001
    assert all("成功绑定" not in t for t in other.bot_texts())
