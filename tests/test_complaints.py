"""Complaint tickets end to end: owner and staff on the emulated Telegram, a fake clock.

The staff chat is a forum supergroup; each ticket is a topic whose first message is the
card. Deadline checks and the relay are the scheduler's jobs, called here directly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.handlers import staff as staff_side
from bot.tickets import FOLLOWUP_KIND, handling_rated, open_ticket
from db.models import (
    Customer,
    FailedSend,
    Staff,
    StaffRole,
    Ticket,
    TicketEvent,
    TicketLevel,
    TicketMessage,
    TicketState,
    Touchpoint,
    Vehicle,
)
from tests.conftest import BotEnv, Env, make_settings
from tests.test_walking_skeleton import (
    VIN_A,
    VIN_B,
    delivery_row,
    import_file,
    link_by_contact,
    local,
    write_csv,
)

STAFF_CHAT = -1001234567890
AGENT, ADVISOR, SUPERVISOR, MANAGER, OUTSIDER = 7001, 7002, 7003, 7004, 7999


@pytest_asyncio.fixture
async def tenv(db: str, emulator: Any, clock: Any) -> AsyncIterator[BotEnv]:
    """carebot with a forum staff group and one of each level registered."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, staff_chat_id=STAFF_CHAT)
    emulator.group(STAFF_CHAT, "售后客服", is_forum=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    for tg, name, role in ((AGENT, "王客服", StaffRole.AGENT),
                           (ADVISOR, "李顾问", StaffRole.ADVISOR),
                           (SUPERVISOR, "赵主管", StaffRole.SUPERVISOR),
                           (MANAGER, "钱经理", StaffRole.MANAGER)):
        await Staff.create(telegram_id=tg, name=name, role=role)
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()


async def owner_with_car(env: Env, tmp_path: Path, user_id: int = 5001,
                         phone: str = "13800138000") -> Any:
    """张伟 with 粤A12345 (user 5001), or 刘洋 with 粤B67890 (any other user)."""
    env.clock.set(local(2026, 11, 3, 10, 0))
    first = user_id == 5001
    row = delivery_row(VIN_A, phone, "2026-10-01 10:00") if first else \
        delivery_row(VIN_B, phone, "2026-10-01 10:00", name="刘洋", plate="粤B67890")
    csv = write_csv(tmp_path / f"d{user_id}.csv", [row])
    await import_file(env, csv)
    return await link_by_contact(env, user_id, phone)


async def complain(env: Env, owner: Any, category: str, *texts: str) -> Ticket:
    owner.send_text("/complain")
    await env.poll()
    owner.press(category)
    await env.poll()
    for text in texts:
        owner.send_text(text)
        await env.poll()
    owner.press("✅ 提交")
    await env.poll()
    return await Ticket.all().order_by("-id").first()  # type: ignore[return-value]


def group(env: BotEnv) -> Any:
    return env.emu.group(STAFF_CHAT, "售后客服")


async def test_owner_complains_agent_claims_and_answers(tenv: BotEnv, tmp_path: Path) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "维修质量", "刹车有异响", "昨天刚保养完")
    assert ticket.number == "T-0001" and ticket.category == "repair_quality"
    assert ticket.description == "刹车有异响\n昨天刚保养完"
    ack = owner.bot_texts()[-1]
    assert "T-0001" in ack and "2 个工作小时" in ack and "12:00" in ack  # due 10:00 + 2h

    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 质量")
    card = staff.bot_texts(thread)[0]
    assert "T-0001" in card and "张伟" in card and "刹车有异响" in card
    assert "LSVAU218" in card and "客服专员" in card

    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    assert "王客服" in owner.bot_texts()[-1] and "正在由" in owner.bot_texts()[-1]
    env.clock.advance(minutes=20)
    staff.send_text(AGENT, "张先生您好，我们明天上午为您安排免费检查。", thread)
    await env.poll()
    reply = owner.bot_texts()[-1]
    assert reply.startswith("张先生您好，我们明天上午为您安排免费检查。")
    assert reply.endswith("—— 王客服，星辰汽车")

    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.ANSWERED
    assert ticket.first_answered_at == env.clock.now()
    assert ticket.handler_id == (await Staff.get(telegram_id=AGENT)).id
    kinds = [e.kind for e in await TicketEvent.filter(ticket_id=ticket.id).order_by("id")]
    assert kinds == ["opened", "claimed", "answered"]

    # the owner writes back: it lands in the topic; another owner never sees it
    owner.send_text("好的，谢谢")
    await env.poll()
    assert any("好的，谢谢" in t for t in staff.bot_texts(thread))


async def test_missed_deadlines_escalate_and_major_goes_to_manager(
    tenv: BotEnv, tmp_path: Path
) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    svc = env.carebot.services

    env.clock.set(local(2026, 11, 3, 11, 59))
    await staff_side.deadline_tick(svc)
    assert (await Ticket.get(id=ticket.id)).level == TicketLevel.AGENT

    env.clock.set(local(2026, 11, 3, 12, 0, 30))  # 2 business hours passed, no answer
    await staff_side.deadline_tick(svc)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.level == TicketLevel.ADVISOR and ticket.breaches == 1
    escalation = staff.bot_texts(thread)[-1]
    assert "李顾问" in escalation and "服务顾问" in escalation
    mention = staff.messages(thread)[-1]["entities"]
    assert any(e.get("url") == f"tg://user?id={ADVISOR}" or
               e.get("user", {}).get("id") == ADVISOR for e in mention)
    assert "转交我们的服务顾问" in owner.bot_texts()[-1]

    env.clock.set(local(2026, 11, 3, 14, 1))  # the advisor did not act within 2 hours
    await staff_side.deadline_tick(svc)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.level == TicketLevel.SUPERVISOR
    assert "赵主管" in staff.bot_texts(thread)[-1]
    events = await TicketEvent.filter(ticket_id=ticket.id, kind="escalated").order_by("id")
    assert [e.text for e in events] == ["agent -> advisor", "advisor -> supervisor"]
    assert "no first answer" in events[0].reason and "advisor level" in events[1].reason

    # Major on a fresh ticket: straight to the manager
    owner2 = await owner_with_car(env, tmp_path, 5002, "13900139000")
    env.clock.set(local(2026, 11, 3, 15, 0))
    major = await complain(env, owner2, "维修质量", "发动机故障灯亮了")
    thread2 = staff.topic_id(f"{major.number} · 刘洋 · 粤B67890 · 质量")
    staff.press(AGENT, "🚨 重大", thread2)
    await env.poll()
    major = await Ticket.get(id=major.id)
    assert major.level == TicketLevel.MANAGER and major.major
    assert "钱经理" in staff.bot_texts(thread2)[-1]
    event = await TicketEvent.filter(ticket_id=major.id, kind="escalated").first()
    assert event is not None and event.text == "agent -> manager (major)"
    assert "marked major by 王客服" in event.reason


async def test_resolve_followup_rating_reopens_then_closes(tenv: BotEnv, tmp_path: Path) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "服务流程", "等了三个小时没人理")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 流程")

    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    staff.press(AGENT, "✅ 解决", thread)
    await env.poll()
    assert "处理结果" in staff.bot_texts(thread)[-1]
    staff.send_text(AGENT, "已向您致歉并赠送一次免费保养。", thread)
    await env.poll()
    assert "改进措施" in staff.bot_texts(thread)[-1]
    staff.send_text(AGENT, "高峰期增加接待人员", thread)
    await env.poll()
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.RESOLVED
    assert ticket.resolution == "已向您致歉并赠送一次免费保养。"
    assert ticket.improvement == "高峰期增加接待人员"
    assert "赠送一次免费保养" in owner.bot_texts()[-1]  # resolution summary
    assert not any("高峰期增加接待人员" in t for t in owner.bot_texts())  # internal

    tp = await Touchpoint.get(kind=FOLLOWUP_KIND)
    assert tp.due_at == env.clock.now() + timedelta(days=1)
    assert tp.payload["ticket_id"] == ticket.id and tp.payload["number"] == "T-0001"
    before = len(owner.bot_texts())
    env.clock.advance(hours=23)
    assert (await env.tick()).sent == 0
    env.clock.advance(hours=1)
    assert (await env.tick()).sent == 1
    followup = owner.bot_texts()[before]
    assert "T-0001" in followup and "1-10" in followup and "致歉" in followup

    await _rate(env, owner, ticket, 3)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.REOPENED and ticket.level == TicketLevel.ADVISOR
    assert ticket.handling_score == 3 and ticket.reopen_count == 1
    assert "李顾问" in staff.bot_texts(thread)[-1]
    assert any("重新打开" in t for t in owner.bot_texts()[-2:])  # (the survey may thank too)
    reopened = await TicketEvent.get(ticket_id=ticket.id, kind="reopened")
    assert reopened.text == "agent -> advisor" and "3/10" in reopened.reason

    # the advisor takes it, resolves again; this time the owner is satisfied
    staff.press(ADVISOR, "🙋 认领", thread)
    await env.poll()
    staff.press(ADVISOR, "✅ 解决", thread)
    await env.poll()
    staff.send_text(ADVISOR, "已全额退还本次工时费。", thread)
    await env.poll()
    staff.send_text(ADVISOR, "接待流程培训", thread)
    await env.poll()
    env.clock.advance(days=1)
    assert (await env.tick()).sent == 1
    await _rate(env, owner, ticket, 9)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.CLOSED and ticket.closed_at == env.clock.now()
    assert any("已关闭" in t for t in owner.bot_texts()[-2:])
    assert staff.topics[thread]["closed"]
    # a second rating of a closed ticket changes nothing
    await handling_rated(ticket.id, 1, now=env.clock.now(), services=env.carebot.services)
    assert (await Ticket.get(id=ticket.id)).state == TicketState.CLOSED


async def _rate(env: BotEnv, owner: Any, ticket: Ticket, score: int) -> None:
    """Through the follow-up's score button when the survey feature offers one."""
    last = owner.bot_messages()[-1]
    labels = [b.get("text") for row in (last.get("reply_markup") or {}).get("inline_keyboard", [])
              for b in row]
    if str(score) in labels:
        owner.press(str(score))
        await env.poll()
    else:
        await handling_rated(ticket.id, score, now=env.clock.now(),
                             services=env.carebot.services)
    assert (await Ticket.get(id=ticket.id)).handling_score == score


async def test_low_survey_score_opens_ticket_with_category_and_comment(
    tenv: BotEnv, tmp_path: Path
) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    customer = await Customer.get(phone="+8613800138000")
    vehicle = await Vehicle.get(vin=VIN_A)
    ticket = await open_ticket(
        customer_id=customer.id, vehicle_id=vehicle.id, channel="survey",
        category="timeliness", description="交车拖了一周", now=env.clock.now(),
        services=env.carebot.services, score_id=None)
    assert (ticket.channel, ticket.category, ticket.description) == \
        ("survey", "timeliness", "交车拖了一周")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 及时")
    assert "交车拖了一周" in staff.bot_texts(thread)[0]
    assert "满意度回访" in staff.bot_texts(thread)[0]
    assert "T-0001" in owner.bot_texts()[-1]


async def test_safety_strangers_notes_html_and_flood(tenv: BotEnv, tmp_path: Path) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    other = await owner_with_car(env, tmp_path, 5002, "13900139000")
    ticket = await complain(env, owner, "其他", "<b>bold</b> & <i>x</i>")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 其他")
    assert "<b>bold</b> & <i>x</i>" in staff.bot_texts(thread)[0]  # literal, not markup

    # a stranger pressing Claim is refused with an alert; nothing changes
    staff.press(OUTSIDER, "🙋 认领", thread)
    await env.poll()
    answer = [q for q in env.emu.callbacks.values() if q.user_id == OUTSIDER][-1]
    assert answer.show_alert and "登记" in (answer.text or "")
    assert (await Ticket.get(id=ticket.id)).handler_id is None
    # ... and what a stranger writes in the topic never reaches the owner
    staff.send_text(OUTSIDER, "I am the manager, send me your password", thread)
    await env.poll()
    assert not any("password" in t for t in owner.bot_texts())

    # /note stays internal
    staff.send_text(AGENT, "/note 车主情绪激动，注意措辞", thread)
    await env.poll()
    assert not any("情绪激动" in t for t in owner.bot_texts() + other.bot_texts())
    note = await TicketEvent.get(ticket_id=ticket.id, kind="note")
    assert note.text == "车主情绪激动，注意措辞"

    # staff text with <b> and & reaches the owner intact and harmless
    staff.send_text(AGENT, "费用 <b>0</b> 元 & 免费", thread)
    await env.poll()
    last = owner.bot_messages()[-1]
    assert last["text"].startswith("费用 <b>0</b> 元 & 免费")
    assert not last.get("entities")
    assert not any("费用" in t for t in other.bot_texts())  # never another owner's ticket

    # 30 owner messages in a minute all reach the topic, within 20 group messages a minute
    env.emu.group_per_minute = 20
    env.emu._group_sends.clear()  # count from here, like a fresh minute
    staff_side.side_of(env.carebot.services)._sent.clear()
    before = len(staff.bot_texts(thread))
    for i in range(30):
        owner.send_text(f"补充说明 {i:02d}")
    await env.poll()
    await staff_side.relay_tick(env.carebot.services)
    texts = staff.bot_texts(thread)[before:]
    joined = "\n".join(texts)
    assert all(f"补充说明 {i:02d}" in joined for i in range(30))
    assert len(texts) <= 20
    assert env.emu.stats["429"] == 0
    assert await TicketMessage.filter(direction="in", relayed_at__isnull=True).count() == 0


async def test_ticket_command_opens_for_a_phone_caller(tenv: BotEnv, tmp_path: Path) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    staff = group(env)
    staff.send_text(AGENT, "/ticket 粤A12345 电话投诉：洗车没洗干净")
    await env.poll()
    ticket = await Ticket.get(channel="staff")
    assert ticket.description == "电话投诉：洗车没洗干净"
    assert ticket.vehicle_id == (await Vehicle.get(vin=VIN_A)).id
    assert "T-0001" in staff.bot_texts()[-1] or any("T-0001" in t for t in staff.bot_texts())
    assert "T-0001" in owner.bot_texts()[-1]
    opened = await TicketEvent.get(ticket_id=ticket.id, kind="opened")
    assert opened.actor_id == (await Staff.get(telegram_id=AGENT)).id
    staff.send_text(OUTSIDER, "/ticket 13800138000 fake")
    await env.poll()
    assert await Ticket.all().count() == 1
    staff.send_text(AGENT, "/ticket 13000000000 nobody")
    await env.poll()
    assert "没有找到" in staff.bot_texts()[-1]


async def test_help_has_contact_button_and_non_forum_fallback(
    db: str, emulator: Any, clock: Any, tmp_path: Path
) -> None:
    """A plain group: the card is a message and the ticket lives in its reply thread."""
    from bot.app import create_app

    chat_id = -4001
    settings = make_settings(emulator, database_url=db, staff_chat_id=chat_id)
    staff = emulator.group(chat_id, "客服群", is_forum=False)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    env = BotEnv(emulator, carebot, clock, settings)
    try:
        await Staff.create(telegram_id=AGENT, name="王客服", role=StaffRole.AGENT)
        owner = await owner_with_car(env, tmp_path)
        owner.send_text("/help")
        await env.poll()
        owner.press("☎️ 联系客服")
        await env.poll()
        owner.press("环境")
        await env.poll()
        owner.send_photo(caption="休息区很脏")
        await env.poll()
        owner.press("✅ 提交")
        await env.poll()
        ticket = await Ticket.get(number="T-0001")
        assert ticket.topic_thread_id is None and ticket.card_message_id is not None
        texts = staff.bot_texts()
        assert texts[0].startswith("T-0001") and "休息区很脏" in texts[0]
        photos = [m for m in staff.messages() if m.get("photo")]
        assert photos and photos[0]["reply_to_message"]["message_id"] == ticket.card_message_id
        # a staff reply to the card goes to the owner
        card = staff.chat.find(ticket.card_message_id)
        env.emu.user_message(chat_id, AGENT, {
            "text": "我们马上安排清洁", "reply_to_message": card.message})
        await env.poll()
        assert owner.bot_texts()[-1].startswith("我们马上安排清洁")
    finally:
        await carebot.stop()


async def test_cli_staff_ticket_show_and_report(db: str, clock: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`carebot staff add|list|remove`, `ticket show`, `complaints report` on one database."""
    from bot.cli import build_parser
    from bot.config import Settings
    from db.setup import close_database, open_database

    settings = Settings(_env_file=None, database_url=db)
    customer = await Customer.create(name="张伟", phone="+8613800138000", link_token="tok-1")
    ticket = await Ticket.create(
        number="T-0001", customer_id=customer.id, channel="bot", category="charges",
        description="收费比报价高", created_at=clock.now(),
        first_answer_due=clock.now() + timedelta(hours=2),
        first_answered_at=clock.now() + timedelta(minutes=30),
        resolved_at=clock.now() + timedelta(hours=4), breaches=1, reopen_count=1,
        state=TicketState.CLOSED)
    await TicketEvent.create(ticket_id=ticket.id, kind="opened", text="收费比报价高",
                             reason="channel bot", created_at=clock.now())
    await close_database()
    try:
        async def run(*argv: str) -> int:
            args = build_parser().parse_args(list(argv))
            return int(await args.run(settings, args))

        assert await run("staff", "add", "--telegram-id", "7001", "--name", "王客服",
                         "--role", "agent") == 0
        assert await run("staff", "list") == 0
        assert await run("staff", "remove", "--telegram-id", "7001") == 0
        assert await run("staff", "remove", "--telegram-id", "9") == 1
        assert await run("ticket", "show", "T-0001") == 0
        assert await run("ticket", "show", "T-0099") == 1
        assert await run("complaints", "report", "--month", "2026-11") == 0
        out = capsys.readouterr().out
        assert "added: 王客服 (CS agent)" in out and "7001" in out
        assert "T-0001  Closed  Agent" in out and "收费比报价高" in out
        assert "Opened" in out and "[channel bot]" in out
        assert "complaints opened in 2026-11: 1" in out and "Charges 1" in out
        assert "median time to first answer: 0h30m" in out
        assert "median time to resolution:   4h00m" in out
        assert "deadline breaches: 1" in out and "reopened: 1 (100%)" in out
        with pytest.raises(SystemExit):
            build_parser().parse_args(["complaints", "report", "--month", "2026-13"])

        # the spelling, `carebot report complaints`, prints the same report
        assert await run("report", "complaints", "--month", "2026-11") == 0
        same = capsys.readouterr().out
        assert "complaints opened in 2026-11: 1" in same and "Charges 1" in same
        assert "median time to resolution:   4h00m" in same
        assert await run("report", "complaints", "--from", "2026-11-01", "--to",
                         "2026-11-30", "--format", "json") == 0
        data = json.loads(capsys.readouterr().out)
        assert data["period"] == "2026-11-01..2026-11-30" and data["opened"] == 1
        assert data["category_charges"] == 1 and data["median_first_answer_minutes"] == 30
        assert await run("report", "complaints", "--month", "2026-10") == 0
        assert "complaints opened in 2026-10: 0" in capsys.readouterr().out
        assert await run("complaints", "report", "--month", "2026-11", "--format", "csv") == 0
        assert capsys.readouterr().out.splitlines()[1].startswith("2026-11,1,")
        assert await run("report", "complaints", "--week", "2026-W45",
                         "--format", "csv") == 0
        assert capsys.readouterr().out.startswith("period,opened,")
        # `carebot report --month` stays the KPI report
        args = build_parser().parse_args(["report", "--month", "2026-11"])
        assert args.what == "kpi"
        assert await run("report", "--month", "2026-11") == 0
        assert "complaints opened in" not in capsys.readouterr().out
        with pytest.raises(SystemExit):
            build_parser().parse_args(["report", "nonsense", "--month", "2026-11"])
    finally:
        await open_database(db, apply_migrations=False)
    staff = await Staff.get(telegram_id=7001)
    assert not staff.active


async def test_second_claim_keeps_the_handler_clock(tenv: BotEnv, tmp_path: Path) -> None:
    """Another staff member taking over keeps the business day; a new level restarts it."""
    from bot.tickets import escalate

    env = tenv
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    first = await Ticket.get(id=ticket.id)
    assert first.handler_answer_due is not None

    env.clock.advance(hours=1)
    staff.press(ADVISOR, "🙋 认领", thread)
    await env.poll()
    second = await Ticket.get(id=ticket.id)
    assert second.handler_id == (await Staff.get(telegram_id=ADVISOR)).id
    assert second.handler_answer_due == first.handler_answer_due

    env.clock.advance(minutes=30)
    manager = await Staff.get(telegram_id=MANAGER)
    outcome, _ = await escalate(ticket.id, now=env.clock.now(), services=env.carebot.services,
                                actor=manager, reason="test")
    assert outcome.value == "done"
    escalated = await Ticket.get(id=ticket.id)
    assert escalated.handler_id is None and escalated.handler_answer_due is None
    staff.press(SUPERVISOR, "🙋 认领", thread)
    await env.poll()
    third = await Ticket.get(id=ticket.id)
    assert third.handler_answer_due is not None
    assert third.handler_answer_due > first.handler_answer_due


async def test_long_complaint_with_entities_still_gets_its_card(
    tenv: BotEnv, tmp_path: Path
) -> None:
    """5,000 characters with & and <: shortened before escaping, the HTML never cut."""
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    part = ("刹车 & 异响 <很> 严重 " * 200)[:2500]
    ticket = await complain(env, owner, "维修质量", part, part)
    assert len(ticket.description) >= 5000  # stored in full
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.card_message_id is not None
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 质量")
    card = staff.bot_texts(thread)[0]
    assert "刹车 & 异响 <很>" in card and "…" in card and len(card) <= 4096
    assert "T-0001" in owner.bot_texts()[-1]  # the acknowledgement arrived

    # the owner's later messages reach the topic (the card exists)
    owner.send_text("补充一下")
    await env.poll()
    await staff_side.relay_tick(env.carebot.services)
    assert any("补充一下" in t for t in staff.bot_texts(thread))

    # a long resolution: the card is refreshed and the owner's notice arrives, shortened
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    staff.press(AGENT, "✅ 解决", thread)
    await env.poll()
    staff.send_text(AGENT, ("已处理 & <免费> " * 400)[:3000], thread)
    await env.poll()
    staff.send_text(AGENT, "改进 & 措施", thread)
    await env.poll()
    assert (await Ticket.get(id=ticket.id)).state == TicketState.RESOLVED
    notice = owner.bot_texts()[-1]
    assert "已处理 & <免费>" in notice and "…" in notice and len(notice) <= 4096
    card = staff.chat.find(ticket.card_message_id)
    assert "改进 &amp; 措施" not in card.message.get("text", "")


async def test_acknowledgement_names_the_configured_first_answer_time(
    db: str, emulator: Any, clock: Any, tmp_path: Path
) -> None:
    """Plain hours when the business calendar is off, and the configured duration."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, staff_chat_id=STAFF_CHAT,
                             ticket_business_hours="off", ticket_first_answer_hours=3)
    emulator.group(STAFF_CHAT, "售后客服", is_forum=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    env = BotEnv(emulator, carebot, clock, settings)
    try:
        owner = await owner_with_car(env, tmp_path)
        await complain(env, owner, "收费", "收费比报价高")
        ack = owner.bot_texts()[-1]
        assert "3 个小时" in ack and "工作小时" not in ack and "13:00" in ack
        text = carebot.services.scripts.render(
            "ticket_opened", "en", customer={"name": "Wei"}, vehicle=None,
            dealer={"name": "Star", "phone": "1"}, staff="",
            ticket={"number": "T-1", "category": "x", "level": "", "resolution": "",
                    "due": "13:00", "first_hours": "1.5", "business": True})
        assert "within 1.5 business hours" in text
        text = carebot.services.scripts.render(
            "ticket_opened", "en", customer={"name": "Wei"}, vehicle=None,
            dealer={"name": "Star", "phone": "1"}, staff="",
            ticket={"number": "T-1", "category": "x", "level": "", "resolution": "",
                    "due": "13:00", "first_hours": "1", "business": False})
        assert "within 1 hour " in text
    finally:
        await carebot.stop()


async def test_refused_notices_are_retried_then_logged_and_recorded(
    tenv: BotEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 on an escalation notice is waited out (the sender retries): the notice arrives.
    A notice Telegram refuses for good: WARNING with the number, an event, a failed send."""
    import logging

    env = tenv
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    svc = env.carebot.services
    side = staff_side.side_of(svc)
    before = len(staff.bot_texts(thread))

    env.clock.set(local(2026, 11, 3, 12, 0, 30))
    env.emu.fail_next("sendMessage", error_code=429, retry_after=1)
    await staff_side.deadline_tick(svc)
    assert (await Ticket.get(id=ticket.id)).level == TicketLevel.ADVISOR
    assert any("李顾问" in t for t in staff.bot_texts(thread)[before:])
    assert not await TicketEvent.filter(ticket_id=ticket.id, kind="undelivered").exists()

    env.emu.fail_next("sendMessage", error_code=400)
    with caplog.at_level(logging.WARNING, logger="bot.handlers.staff"):
        assert await side.notice(ticket, "refused for good") is False
    assert not any("refused for good" in t for t in staff.bot_texts(thread))
    assert any("T-0001" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    lost = await TicketEvent.filter(ticket_id=ticket.id, kind="undelivered")
    assert len(lost) == 1 and "notice not delivered" in lost[0].text
    assert await FailedSend.filter(lane="staff", chat_id=STAFF_CHAT).count() == 1
    assert await side.notice(ticket, "after the refusal") is True
    assert "after the refusal" in staff.bot_texts(thread)[-1]

    # an owner notice Telegram refuses is recorded too, and tried again a minute later
    env.emu.fail_next("sendMessage", error_code=400)
    owner_texts = len(owner.bot_texts())
    assert await side.notify_owner(ticket, "ticket_escalated", event_id=999) is False
    assert await TicketEvent.filter(ticket_id=ticket.id, kind="undelivered",
                                    text__contains="owner").count() == 1
    assert len(owner.bot_texts()) == owner_texts
    env.clock.advance(minutes=1)
    await staff_side.relay_tick(env.carebot.services)
    assert len(owner.bot_texts()) == owner_texts + 1 and "转交" in owner.bot_texts()[-1]
    assert await side.notify_owner(ticket, "ticket_escalated", event_id=999) is True
    assert len(owner.bot_texts()) == owner_texts + 1  # owed once per event


async def test_effects_are_owed_until_done_and_carried_out_by_the_staff_sides_job(
        tenv: BotEnv, tmp_path: Path) -> None:
    """A change records its effects as owed (the event row); a change recorded where no staff
    side runs (a CLI, another instance) is carried out by the staff side's job, once; a topic
    Telegram would not create (down past every retry) is created by a later run."""
    from bot import tickets
    from bot.handlers.staff import relay_tick, side_of

    env = tenv
    await owner_with_car(env, tmp_path)
    customer = await Customer.get(phone="+8613800138000")
    side = side_of(env.carebot.services)
    env.carebot.services.ticket_effects = None  # as in `carebot ticket open`
    try:
        ticket = await tickets.open_ticket(
            customer_id=customer.id, vehicle_id=None, channel="staff", category="charges",
            description="电话投诉：收费不透明", now=env.clock.now(), services=env.carebot.services)
    finally:
        env.carebot.services.ticket_effects = side
    event = await TicketEvent.get(ticket_id=ticket.id, kind="opened")
    assert event.effects_done_at is None  # owed
    assert not group(env).topics

    env.emu.fail_next("createForumTopic", error_code=500, count=1000)  # no topics for now
    await relay_tick(env.carebot.services)
    assert (await TicketEvent.get(id=event.id)).effects_done_at is not None
    assert (await Ticket.get(id=ticket.id)).card_message_id is None  # not shown yet
    assert not group(env).topics
    env.emu._injected.clear()  # Telegram is back
    await relay_tick(env.carebot.services)
    assert (await Ticket.get(id=ticket.id)).card_message_id is not None
    assert len([t for t in group(env).topics.values() if ticket.number in t["name"]]) == 1
    owner_texts = env.emu.user(5001).bot_texts()
    assert sum(ticket.number in t for t in owner_texts) == 1  # acknowledged once
    await relay_tick(env.carebot.services)  # done is done
    assert len([t for t in group(env).topics.values() if ticket.number in t["name"]]) == 1
    assert sum(ticket.number in t for t in env.emu.user(5001).bot_texts()) == 1
