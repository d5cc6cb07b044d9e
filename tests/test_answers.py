"""Staff answers to owners are rows: recorded before they are sent, retried, never dropped.

Through the emulated Telegram (strict limits), a forum staff group and a fake clock: an
answer Telegram refuses is kept and sent later, in order; one it keeps refusing is shown to
the person who wrote it; the same topic message handled twice reaches the owner once.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.handlers import staff as staff_side
from db.models import Customer, InboxStatus, InboxUpdate, TicketEvent, TicketMessage
from tests.conftest import BotEnv
from tests.test_complaints import (
    AGENT,
    complain,
    group,
    owner_with_car,
    tenv,  # noqa: F401 (a fixture)
)

SIGNATURE = "—— 王客服，星辰汽车"


async def _claimed_ticket(env: BotEnv, tmp_path: Path) -> tuple[object, object, int]:
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "维修质量", "刹车有异响")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 质量")
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    assert ticket is not None
    return owner, staff, thread


def _answers(owner: object) -> list[str]:
    return [t for t in owner.bot_texts() if t.endswith(SIGNATURE)]  # type: ignore[attr-defined]


async def test_an_answer_telegram_refuses_is_kept_and_sent_later_in_order(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner, staff, thread = await _claimed_ticket(env, tmp_path)
    env.emu.fail_next("sendMessage", error_code=409, description="Conflict: try later")
    staff.send_text(AGENT, "第一条：明天上午为您检查。", thread)  # type: ignore[attr-defined]
    await env.poll()
    staff.send_text(AGENT, "第二条：请带上保养手册。", thread)  # type: ignore[attr-defined]
    await env.poll()
    assert _answers(owner) == []  # the first was refused, the second waits behind it
    rows = await TicketMessage.filter(direction="out").order_by("id")
    assert [(m.relayed_at, m.attempts) for m in rows] == [(None, 1), (None, 0)]

    await staff_side.relay_tick(env.carebot.services)  # too early: the retry is due in 1 min
    assert _answers(owner) == []
    env.clock.advance(minutes=1)
    await staff_side.relay_tick(env.carebot.services)
    assert [a.partition("\n")[0] for a in _answers(owner)] == [
        "第一条：明天上午为您检查。", "第二条：请带上保养手册。"]
    assert await TicketMessage.filter(direction="out", relayed_at__isnull=True).count() == 0
    env.clock.advance(minutes=30)
    await staff_side.relay_tick(env.carebot.services)
    assert len(_answers(owner)) == 2  # each once


async def test_an_answer_telegram_keeps_refusing_is_shown_to_staff(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner, staff, thread = await _claimed_ticket(env, tmp_path)
    env.emu.fail_next("sendMessage", error_code=409, description="Conflict", count=4)
    staff.send_text(AGENT, "您好，请问方便通话吗？", thread)  # type: ignore[attr-defined]
    await env.poll()
    for minutes in (1, 5, 30):
        env.clock.advance(minutes=minutes)
        await staff_side.relay_tick(env.carebot.services)
    assert _answers(owner) == []
    row = await TicketMessage.get(direction="out")
    assert row.failed_at is not None and row.attempts == 4
    warning = staff.bot_texts(thread)[-1]  # type: ignore[attr-defined]
    assert "未能送达" in warning and "13800138000" in warning
    assert await TicketEvent.filter(kind="undelivered").exists()
    env.clock.advance(hours=3)
    await staff_side.relay_tick(env.carebot.services)
    assert _answers(owner) == []  # given up: not sent hours later out of the blue


async def test_an_owner_who_blocked_the_bot_is_named_to_staff_at_once(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    _, staff, thread = await _claimed_ticket(env, tmp_path)
    env.emu.fail_next("sendMessage", error_code=403,
                      description="Forbidden: bot was blocked by the user")
    staff.send_text(AGENT, "您好，这边跟进一下。", thread)  # type: ignore[attr-defined]
    await env.poll()
    row = await TicketMessage.get(direction="out")
    assert row.failed_at is not None and row.attempts == 1  # one try, refused: not retried
    assert (await Customer.get(telegram_user_id=5001)).unreachable_at is not None
    assert "13800138000" in staff.bot_texts(thread)[-1]  # type: ignore[attr-defined]


async def test_a_topic_message_handled_twice_reaches_the_owner_once(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner, staff, thread = await _claimed_ticket(env, tmp_path)
    staff.send_text(AGENT, "已为您预约明天九点。", thread)  # type: ignore[attr-defined]
    await env.poll()
    assert len(_answers(owner)) == 1
    update = await InboxUpdate.filter(chat_key=group(env).chat_id).order_by("-id").first()
    assert update is not None
    # as after a crash between the handler's work and marking it done
    await InboxUpdate.filter(id=update.id).update(status=InboxStatus.PENDING)
    await env.poll()
    assert len(_answers(owner)) == 1
    assert await TicketMessage.filter(direction="out").count() == 1
    assert await TicketEvent.filter(kind="answered").count() == 1


async def test_an_owner_message_handled_twice_is_relayed_once(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    env = tenv
    owner, staff, thread = await _claimed_ticket(env, tmp_path)
    owner.send_text("我明天上午有空")  # type: ignore[attr-defined]
    await env.poll()
    update = await InboxUpdate.filter(chat_key=5001).order_by("-id").first()
    assert update is not None
    await InboxUpdate.filter(id=update.id).update(status=InboxStatus.PENDING)
    await env.poll()
    env.clock.advance(timedelta(minutes=2))
    await staff_side.relay_tick(env.carebot.services)
    relayed = [t for t in staff.bot_texts(thread) if "我明天上午有空" in t]  # type: ignore[attr-defined]
    assert len(relayed) == 1
    assert await TicketMessage.filter(direction="in", text="我明天上午有空").count() == 1


async def test_console_answers_and_notes_are_mirrored_in_the_topic_once(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    from bot import tickets
    from db.models import Staff, Ticket

    env = tenv
    owner, staff, thread = await _claimed_ticket(env, tmp_path)
    agent = await Staff.get(telegram_id=AGENT)
    ticket = await Ticket.get(number="T-0001")
    svc = env.carebot.services
    # as the console does: no Telegram message behind them
    await tickets.record_staff_answer(ticket, agent, "已为您安排明早检查。", now=env.clock.now(),
                                      services=svc)
    await tickets.add_note(ticket, agent, "车主语气激动，注意安抚", now=env.clock.now())
    await staff_side.relay_tick(svc)
    await staff_side.relay_tick(svc)
    posts = staff.bot_texts(thread)  # type: ignore[attr-defined]
    assert posts.count("✉️ 王客服（控制台）→ 车主：\n已为您安排明早检查。") == 1
    assert posts.count("📝 王客服（控制台，内部备注）：\n车主语气激动，注意安抚") == 1
    assert _answers(owner)[-1].startswith("已为您安排明早检查。")
    assert "车主语气激动" not in " ".join(owner.bot_texts())  # type: ignore[attr-defined]
    # written in the topic: already there, not mirrored again
    staff.send_text(AGENT, "/note 已电话联系", thread)  # type: ignore[attr-defined]
    staff.send_text(AGENT, "稍后再联系您。", thread)  # type: ignore[attr-defined]
    await env.poll()
    await staff_side.relay_tick(svc)
    assert not any("已电话联系" in p and "控制台" in p
                   for p in staff.bot_texts(thread))  # type: ignore[attr-defined]
    assert not any("稍后再联系您" in p and "控制台" in p
                   for p in staff.bot_texts(thread))  # type: ignore[attr-defined]
