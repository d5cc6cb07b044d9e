"""Escalation as 003 §2.3.3 describes it (issue 18, point 3): the handler stays on the
ticket and may still resolve it; a level nobody holds is passed over to the next one that
has someone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot import tickets
from bot.handlers import staff as staff_side
from db.models import Staff, Ticket, TicketEvent, TicketLevel
from tests.conftest import BotEnv
from tests.test_complaints import (  # noqa: F401
    ADVISOR,
    AGENT,
    MANAGER,
    SUPERVISOR,
    complain,
    group,
    owner_with_car,
    tenv,
)
from tests.test_walking_skeleton import local


async def test_a_level_without_staff_is_passed_over(tenv: BotEnv,  # noqa: F811
                                                    tmp_path: Path) -> None:
    env = tenv
    await Staff.filter(telegram_id=ADVISOR).update(active=False)  # nobody at 服务顾问
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    env.clock.set(local(2026, 11, 3, 12, 0, 30))  # 2 business hours, no answer
    await staff_side.deadline_tick(env.carebot.services)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.level == TicketLevel.SUPERVISOR  # not the empty advisor level
    event = await TicketEvent.get(ticket_id=ticket.id, kind="escalated")
    assert event.text == "agent -> supervisor"
    assert "no staff at advisor, passed over" in event.reason
    assert "接待主管" in owner.bot_texts()[-1]


async def test_when_no_level_above_has_staff_the_manager_level_gets_it(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811
    env = tenv
    await Staff.filter(role__in=("advisor", "supervisor", "manager", "admin")).update(
        active=False)
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    env.clock.set(local(2026, 11, 3, 12, 0, 30))
    await staff_side.deadline_tick(env.carebot.services)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.level == TicketLevel.MANAGER
    event = await TicketEvent.get(ticket_id=ticket.id, kind="escalated")
    assert "no staff at advisor, supervisor, passed over" in event.reason


async def test_the_handler_keeps_an_escalated_ticket_and_may_still_resolve_it(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    agent = await Staff.get(telegram_id=AGENT)
    svc = env.carebot.services
    outcome, _ = await tickets.escalate(ticket.id, now=env.clock.now(), services=svc,
                                        actor=agent, reason="车主要求经理回电")
    assert outcome == tickets.Outcome.DONE
    ticket = await Ticket.get(id=ticket.id)
    # the next level takes charge; the agent stays on the ticket
    assert ticket.level == TicketLevel.ADVISOR and ticket.handler_id is None
    assert ticket.previous_handler_id == agent.id
    assert tickets.may_resolve(agent, ticket)
    outcome, resolved = await tickets.resolve(ticket.id, agent, resolution="已退还多收的费用",
                                              improvement="报价复核", now=env.clock.now(),
                                              services=svc)
    assert outcome == tickets.Outcome.DONE and resolved is not None
    assert resolved.state == "resolved"
    # another agent, who never handled it, may not
    other = await Staff.create(telegram_id=7555, name="孙客服", role="agent")
    assert not tickets.may_resolve(other, resolved)


# --------------------------------------------------------------------------- what the owner
# hears (one progress message per level change, naming the person) and the managers' notice


async def _since(owner: Any, before: int) -> list[str]:
    return owner.bot_texts()[before:]


async def test_escalation_past_an_empty_level_tells_owner_once_and_the_managers(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811
    env = tenv
    await Staff.filter(telegram_id=ADVISOR).update(active=False)  # nobody at 服务顾问
    manager_chat = env.emu.user(MANAGER)
    await Staff.create(telegram_id=7005, name="Ops Admin", role="admin", language="en")
    admin_chat = env.emu.user(7005)
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    assert "王客服" in owner.bot_texts()[-1]  # the first level keeps ticket_claimed
    before = len(owner.bot_texts())

    env.clock.advance(minutes=10)
    staff.press(AGENT, "⬆️ 升级", thread)
    await env.poll()
    ticket = await Ticket.get(id=ticket.id)
    agent = await Staff.get(telegram_id=AGENT)
    assert ticket.level == TicketLevel.SUPERVISOR and ticket.previous_handler_id == agent.id
    # the owner: exactly one message for the level change, naming the person in charge
    told = await _since(owner, before)
    assert len(told) == 1
    assert "接待主管" in told[0] and "赵主管亲自跟进" in told[0] and "T-0001" in told[0]
    assert "服务顾问" not in told[0]  # the skipped level is internal
    # the managers: the empty level named, each in their own language
    assert len(manager_chat.bot_texts()) == 1
    assert "T-0001" in manager_chat.bot_texts()[0]
    assert "服务顾问无人在岗" in manager_chat.bot_texts()[0]
    assert "接待主管" in manager_chat.bot_texts()[0]
    assert len(admin_chat.bot_texts()) == 1
    assert "nobody holds the service advisor level" in admin_chat.bot_texts()[0]
    # the staff group: the escalation says the level was passed over, in its language
    assert "服务顾问无人在岗，已跳过" in staff.bot_texts(thread)[-1]

    # the supervisor claims: the owner was told about them already, nothing more
    staff.press(SUPERVISOR, "🙋 认领", thread)
    await env.poll()
    assert (await Ticket.get(id=ticket.id)).handler_id == \
        (await Staff.get(telegram_id=SUPERVISOR)).id
    assert len(owner.bot_texts()) == before + 1
    # the previous handler still answers and resolves
    staff.send_text(AGENT, "张先生，多收的费用今天退还。", thread)
    await env.poll()
    assert owner.bot_texts()[-1].startswith("张先生，多收的费用今天退还。")
    staff.press(AGENT, "✅ 解决", thread)
    await env.poll()
    staff.send_text(AGENT, "已退还多收的费用。", thread)
    await env.poll()
    staff.send_text(AGENT, "报价复核", thread)
    await env.poll()
    resolved = await Ticket.get(id=ticket.id)
    assert resolved.state == "resolved" and resolved.resolution == "已退还多收的费用。"
    # carrying the escalation's effects out again owes nobody anything more
    side = staff_side.side_of(env.carebot.services)
    event = await TicketEvent.get(ticket_id=ticket.id, kind="escalated")
    await TicketEvent.filter(id=event.id).update(effects_done_at=None)
    await side.carry_out(await TicketEvent.get(id=event.id))
    assert len(manager_chat.bot_texts()) == 1
    assert sum("赵主管亲自跟进" in t for t in owner.bot_texts()) == 1


async def test_major_names_the_manager(tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    await complain(env, owner, "维修质量", "发动机故障灯亮了")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 质量")
    before = len(owner.bot_texts())
    staff.press(AGENT, "🚨 重大", thread)
    await env.poll()
    told = await _since(owner, before)
    assert len(told) == 1 and "服务经理" in told[0] and "钱经理亲自跟进" in told[0]
    staff.press(MANAGER, "🙋 认领", thread)
    await env.poll()
    assert len(owner.bot_texts()) == before + 1


async def test_several_at_a_level_the_first_to_claim_is_named(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811
    env = tenv
    await Staff.create(telegram_id=7006, name="孙丽", role="advisor")
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    before = len(owner.bot_texts())
    env.clock.set(local(2026, 11, 3, 12, 0, 30))  # no first answer in 2 business hours
    await staff_side.deadline_tick(env.carebot.services)
    assert (await Ticket.get(id=ticket.id)).level == TicketLevel.ADVISOR
    # two advisors: who takes charge is not known yet, the owner hears nothing of the move
    assert len(owner.bot_texts()) == before
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    staff.press(7006, "🙋 认领", thread)
    await env.poll()
    told = await _since(owner, before)
    assert len(told) == 1 and "服务顾问" in told[0] and "孙顾问亲自跟进" in told[0]
    # a colleague taking over within the level is internal
    staff.press(ADVISOR, "🙋 认领", thread)
    await env.poll()
    assert len(owner.bot_texts()) == before + 1


async def test_a_missed_deadline_at_the_top_tells_the_owner_the_level_once(
        tenv: BotEnv, tmp_path: Path) -> None:  # noqa: F811
    env = tenv
    await Staff.create(telegram_id=7007, name="周经理", role="manager")  # two managers
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 收费")
    before = len(owner.bot_texts())
    staff.press(AGENT, "🚨 重大", thread)
    await env.poll()
    assert len(owner.bot_texts()) == before  # nobody named yet
    for hours in (3, 6):  # nobody acts: breaches at the top
        env.clock.advance(hours=hours)
        await staff_side.deadline_tick(env.carebot.services)
    assert await TicketEvent.filter(ticket_id=ticket.id, kind="breach").count() >= 1
    told = await _since(owner, before)
    assert len(told) == 1 and "转交我们的服务经理跟进" in told[0]
