"""Escalation as 003 §2.3.3 describes it (issue 18, point 3): the handler stays on the
ticket and may still resolve it; a level nobody holds is passed over to the next one that
has someone."""

from __future__ import annotations

from pathlib import Path

from bot import tickets
from bot.handlers import staff as staff_side
from db.models import Staff, Ticket, TicketEvent, TicketLevel
from tests.conftest import BotEnv
from tests.test_complaints import (  # noqa: F401
    ADVISOR,
    AGENT,
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
