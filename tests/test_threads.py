"""Conversations: every owner's message outside a dialogue reaches a person (issue 14).

Owner and staff on the emulated Telegram (strict limits), a forum staff group, a fake clock:
what the owner writes opens a conversation with its own topic, staff answer in the topic,
a reply to the insurance reminder is an insurance lead routed by the settings, media goes
both ways as media, and nothing is kept or relayed twice when an update is handled twice.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot import threads
from bot.handlers import staff as staff_side
from db.models import (
    Customer,
    InboxStatus,
    InboxUpdate,
    Staff,
    Thread,
    ThreadKind,
    ThreadMessage,
    ThreadState,
    Ticket,
    Touchpoint,
)
from tests.conftest import BotEnv
from tests.test_complaints import (
    AGENT,
    SUPERVISOR,
    group,
    owner_with_car,
    tenv,  # noqa: F401 (a fixture)
)
from tests.test_walking_skeleton import local

SIGNATURE = "—— 王客服，星辰汽车"
TOPIC = "咨询 · 张伟 · 粤A12345"


async def test_a_question_reaches_the_topic_and_the_answer_reaches_the_owner(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    env.clock.set(local(2026, 11, 3, 10, 0))
    owner.send_text("我的车蓝牙连不上手机，怎么办？")
    await env.poll()
    ack = owner.bot_texts()[-1]
    assert ack.startswith("已收到，张伟。我们的客服将在今天 12:00 前回复您")  # 2 business hours

    staff = group(env)
    topic = staff.topic_id(TOPIC)
    posts = staff.bot_texts(topic)
    assert "张伟" in posts[0] and "13800138000" in posts[0] and "粤A12345" in posts[0]
    assert posts[1] == "💬 张伟：\n我的车蓝牙连不上手机，怎么办？"

    env.clock.advance(minutes=30)
    staff.send_text(AGENT, "您好，请在手机上删除旧的配对后重新搜索“星辰S7”。", topic)
    await env.poll()
    assert (
        owner.bot_texts()[-1] == f"您好，请在手机上删除旧的配对后重新搜索“星辰S7”。\n\n{SIGNATURE}"
    )
    thread = await Thread.get(customer__telegram_user_id=5001)
    agent = await Staff.get(telegram_id=AGENT)
    assert thread.assignee_id == agent.id  # answering takes it
    assert thread.first_answered_at == env.clock.now()

    # the owner answers back: same conversation, same topic, no second acknowledgement
    acks = len(owner.bot_texts())
    owner.send_text("好了，谢谢！")
    await env.poll()
    assert len(owner.bot_texts()) == acks
    assert staff.bot_texts(topic)[-1] == "💬 张伟：\n好了，谢谢！"
    assert await Thread.all().count() == 1

    staff.send_text(AGENT, "/done", topic)
    await env.poll()
    thread = await Thread.get(id=thread.id)
    assert thread.state == ThreadState.DONE and thread.outcome == "answered"
    assert staff.topics[topic]["closed"]
    owner.send_text("还有一个问题")  # a new conversation, a new topic
    await env.poll()
    assert await Thread.filter(state=ThreadState.OPEN).count() == 1
    assert len([t for t in staff.topics.values() if t["name"] == TOPIC]) == 2


async def _insurance_reminder(env: BotEnv, customer: Customer) -> Touchpoint:
    now = env.clock.now()
    tp = await Touchpoint.create(customer=customer, kind="insurance_expiry", occasion_key="i1",
                                 due_at=now, expires_at=now + timedelta(days=3),
                                 payload={"expiry": "2026-12-01", "days_left": 28})
    report = await env.tick()
    assert report.sent == 1, report
    return tp


async def test_a_reply_to_the_insurance_reminder_is_a_lead_for_the_configured_role(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    object.__setattr__(env.carebot.services.settings, "route_insurance_lead", "supervisor")
    owner = await owner_with_car(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    tp = await _insurance_reminder(env, customer)
    env.clock.advance(hours=3)
    owner.send_text("麻烦给我报个续保的价")
    await env.poll()
    thread = await Thread.get(customer_id=customer.id)
    assert (thread.kind, thread.touchpoint_id) == (ThreadKind.INSURANCE_LEAD, tp.id)
    assert (thread.queue, thread.assignee_id) == ("supervisor", None)
    staff = group(env)
    assert "续保线索" in staff.bot_texts(staff.topic_id("续保线索 · 张伟 · 粤A12345"))[0]

    supervisor = await Staff.get(telegram_id=SUPERVISOR)
    with pytest.raises(threads.ThreadError):  # a lead ends with one of its outcomes
        await threads.mark_done(thread, supervisor, now=env.clock.now(), outcome="won")
    await threads.mark_done(thread, supervisor, now=env.clock.now(), outcome="renewed_here",
                            premium=Decimal("4980.00"))
    thread = await Thread.get(id=thread.id)
    assert (thread.outcome, thread.premium) == ("renewed_here", Decimal("4980.00"))

    # three days later the reminder is old news: a question is an inquiry
    env.clock.advance(days=3)
    owner.send_text("保养要多久？")
    await env.poll()
    latest = await Thread.filter(customer_id=customer.id).order_by("-id").first()
    assert latest is not None and latest.kind == ThreadKind.INQUIRY


async def test_photo_and_voice_go_both_ways_as_media(tenv: BotEnv,  # noqa: F811 (the fixture)
                                                     tmp_path: Path) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    owner.send_photo(caption="仪表盘这个灯是什么意思？")
    await env.poll()
    owner.send_voice()
    await env.poll()
    staff = group(env)
    topic = staff.topic_id(TOPIC)
    kinds = [kind for kind, _, _ in staff.bot_media(topic)]
    assert kinds[-2:] == ["photo", "voice"]
    assert staff.bot_texts(topic)[-1] == "仪表盘这个灯是什么意思？"  # the caption, copied

    staff.send_voice(AGENT, message_thread_id=topic)
    await env.poll()
    staff.send_photo(AGENT, "这是胎压灯，请到店检查。", topic)
    await env.poll()
    media = owner.bot_media()
    assert [kind for kind, _, _ in media[-2:]] == ["voice", "photo"]
    assert media[-1][2] == f"这是胎压灯，请到店检查。\n\n{SIGNATURE}"
    assert owner.bot_texts()[-2] == SIGNATURE  # a voice note has no caption: signed below it
    rows = await ThreadMessage.filter(direction="in").order_by("id")
    assert [m.media_kind for m in rows] == ["photo", "voice"]
    assert all(m.relayed_at is not None for m in await ThreadMessage.all())


async def test_a_message_handled_twice_is_kept_and_relayed_once(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("请问周六营业吗？")
    await env.poll()
    update = await InboxUpdate.filter(chat_key=5001).order_by("-id").first()
    assert update is not None
    await InboxUpdate.filter(id=update.id).update(status=InboxStatus.PENDING)
    await env.poll()
    staff = group(env)
    relayed = [t for t in staff.bot_texts(staff.topic_id(TOPIC)) if "周六" in t]
    assert len(relayed) == 1
    assert await ThreadMessage.filter(direction="in").count() == 1
    assert sum(t.startswith("已收到，张伟") for t in owner.bot_texts()) == 1


async def test_a_busy_group_gets_the_owners_words_batched_not_lost(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    side = env.carebot.services.threads.side
    for _ in range(15):  # the group's minute is nearly used up by others
        side._sent.append(env.clock.now())
    for text in ("第一句", "第二句", "第三句"):
        owner.send_text(text)
        await env.poll()
    staff = group(env)
    assert not any("第一句" in t for t in staff.bot_texts())  # waiting, not dropped
    env.clock.advance(minutes=1)
    await staff_side.relay_tick(env.carebot.services)
    topic = staff.topic_id(TOPIC)
    batch = staff.bot_texts(topic)[-1]
    assert batch.startswith("💬 张伟：") and all(w in batch for w in ("第一句", "第二句", "第三句"))
    assert await ThreadMessage.filter(direction="in", relayed_at__isnull=True).count() == 0


async def test_turned_into_a_ticket_it_keeps_the_owners_words(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("上次保养后发动机有异响")
    await env.poll()
    owner.send_text("而且油耗也高了")
    await env.poll()
    staff = group(env)
    topic = staff.topic_id(TOPIC)
    staff.press(AGENT, "🎫 转投诉", topic)
    await env.poll()
    thread = await Thread.get(customer__telegram_user_id=5001)
    assert thread.state == ThreadState.DONE and thread.ticket_id is not None
    ticket = await Ticket.get_or_none(id=thread.ticket_id)
    assert ticket is not None
    assert ticket.description == "上次保养后发动机有异响\n而且油耗也高了"
    assert ticket.first_answer_due == env.clock.now() + timedelta(hours=2)  # 211 from now
    assert "T-0001" in staff.bot_texts(topic)[-1]
    assert staff.topic_id("T-0001 · 张伟 · 粤A12345 · 其他")  # the ticket's own topic


async def test_an_unanswered_conversation_reminds_its_people_then_tells_the_supervisor(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    env.clock.set(local(2026, 11, 3, 10, 0))
    owner.send_text("请问下次保养要多少钱？")
    await env.poll()  # due 12:00 (2 business hours); nobody takes it
    staff = group(env)
    topic = staff.topic_id(TOPIC)
    svc = env.carebot.services

    def mentioned(user_id: int) -> bool:
        entities = staff.messages(topic)[-1].get("entities") or []
        return any(e.get("url") == f"tg://user?id={user_id}"
                   or e.get("user", {}).get("id") == user_id for e in entities)

    env.clock.set(local(2026, 11, 3, 11, 29))
    await staff_side.relay_tick(svc)
    assert not staff.bot_texts(topic)[-1].startswith("⏰")
    env.clock.set(local(2026, 11, 3, 11, 31))  # 30 minutes before: the agents' queue
    await staff_side.relay_tick(svc)
    assert staff.bot_texts(topic)[-1].startswith("⏰") and mentioned(AGENT)
    await staff_side.relay_tick(svc)
    assert sum(t.startswith("⏰") for t in staff.bot_texts(topic)) == 1  # once

    env.clock.set(local(2026, 11, 3, 12, 0, 30))  # due and still unanswered: supervisors
    await staff_side.relay_tick(svc)
    assert staff.bot_texts(topic)[-1].startswith("⚠️") and mentioned(SUPERVISOR)
    thread = await Thread.get(customer__telegram_user_id=5001)
    assert thread.reminded_at is not None and thread.breached_at is not None
    await staff_side.relay_tick(svc)
    assert sum(t.startswith("⚠️") for t in staff.bot_texts(topic)) == 1


async def test_an_answered_conversation_is_not_chased(tenv: BotEnv,  # noqa: F811 (the fixture)
                                                      tmp_path: Path) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    env.clock.set(local(2026, 11, 3, 10, 0))
    owner.send_text("你们周日开门吗？")
    await env.poll()
    staff = group(env)
    topic = staff.topic_id(TOPIC)
    staff.send_text(AGENT, "周日照常营业，9 点到 18 点。", topic)
    await env.poll()
    env.clock.set(local(2026, 11, 3, 13, 0))
    await staff_side.relay_tick(env.carebot.services)
    assert not any(t.startswith(("⏰", "⚠️")) for t in staff.bot_texts(topic))


async def test_a_booking_request_becomes_a_booking_the_owner_is_told(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    from datetime import date

    from bot.handlers.thread_chat import book_from_thread
    from db.models import Booking

    env = tenv
    owner = await owner_with_car(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    now = env.clock.now()
    await Touchpoint.create(customer=customer, kind="service_due", occasion_key="s1",
                            due_at=now, expires_at=now + timedelta(days=3),
                            payload={"due_date": "2026-11-20"})
    assert (await env.tick()).sent == 1
    owner.send_text("我想这周四上午过来保养")
    await env.poll()
    thread = await Thread.get(customer_id=customer.id)
    assert thread.kind == ThreadKind.BOOKING_REQUEST
    agent = await Staff.get(telegram_id=AGENT)
    booking = await book_from_thread(env.carebot.services, thread, agent, date(2026, 11, 5),
                                     "morning")
    assert (booking.day, booking.slot, booking.customer_id) == \
        (date(2026, 11, 5), "09:00", customer.id)
    assert await Booking.all().count() == 1
    told = owner.bot_texts()[-1]
    assert "预约成功" in told and "11月5日" in told and told.endswith(SIGNATURE)
    thread = await Thread.get(id=thread.id)
    assert (thread.state, thread.outcome) == (ThreadState.DONE, "booked")
    assert await Touchpoint.filter(kind="booking_reminder", customer_id=customer.id).exists()


async def test_a_canned_reply_by_short_name_in_the_owners_language(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    await Customer.filter(telegram_user_id=5001).update(language="en")
    owner.send_text("Can I get an insurance quote?")
    await env.poll()
    staff = group(env)
    topic = staff.topic_id("Inquiry · 张伟 · 粤A12345".replace("Inquiry", "咨询"))
    staff.send_text(AGENT, "/r insurance_quote", topic)
    await env.poll()
    answer = owner.bot_texts()[-1]
    assert answer.startswith("Hello 张伟, the insurance renewal quote for your 星辰 S7 (粤A12345)")
    assert answer.endswith("— 王客服, 星辰汽车")  # signed in the owner's language
    assert staff.bot_texts(topic)[-1].startswith("✉️ 王客服（快捷回复 insurance_quote）")
    staff.send_text(AGENT, "/r nonsense", topic)
    await env.poll()
    assert "insurance_quote" in staff.bot_texts(topic)[-1]  # what there is, said
    assert owner.bot_texts()[-1] == answer  # nothing more sent


def test_each_kind_may_have_its_own_first_answer_deadline() -> None:
    from bot.config import Settings

    settings = Settings(_env_file=None, bot_token="", first_answer_hours_insurance_lead=8,
                        conversation_first_answer_hours=1.5)  # type: ignore[call-arg]
    assert threads.first_answer_hours(ThreadKind.INSURANCE_LEAD, settings) == 8
    assert threads.first_answer_hours(ThreadKind.INQUIRY, settings) == 1.5


async def test_an_acknowledgement_lost_in_a_crash_is_still_owed(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    before = len(owner.bot_texts())
    env.emu.fail_next("sendMessage", error_code=409, description="Conflict")  # the ack
    owner.send_text("请问可以上门取车吗？")
    await env.poll()
    assert len(owner.bot_texts()) == before  # not told yet
    thread = await Thread.get(customer__telegram_user_id=5001)
    assert thread.acknowledged_at is None
    # handled again (as after a crash): kept once, and the owner is told now
    update = await InboxUpdate.filter(chat_key=5001).order_by("-id").first()
    assert update is not None
    await InboxUpdate.filter(id=update.id).update(status=InboxStatus.PENDING)
    await env.poll()
    assert owner.bot_texts()[-1].startswith("已收到，张伟。")
    assert await ThreadMessage.filter(direction="in").count() == 1
    await InboxUpdate.filter(id=update.id).update(status=InboxStatus.PENDING)
    await env.poll()
    assert sum(t.startswith("已收到，张伟。") for t in owner.bot_texts()) == 1  # once told
