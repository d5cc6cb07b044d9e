"""Tact while something is wrong (issue 14, point 7): an owner with an open complaint gets
no marketing and no cheerful care messages until it is over; what matters still goes."""

from __future__ import annotations

from datetime import timedelta

from bot import tickets
from bot.delivery import dispatcher
from db.models import Ticket, TicketState, Touchpoint, TouchpointStatus
from tests.conftest import BotEnv
from tests.test_campaigns import UID, local, make_owners, new_campaign, start_campaign


def test_the_dispatchers_open_complaint_is_the_tickets_active_states() -> None:
    assert set(dispatcher.OPEN_COMPLAINT) == {s.value for s in tickets.ACTIVE_STATES}


async def test_an_open_complaint_holds_tips_and_campaigns_but_not_the_insurance_reminder(
        env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10))
    owner, other = await make_owners(env, 2)
    ticket = await tickets.open_ticket(
        customer_id=owner.id, vehicle_id=None, channel="bot", category="charges",
        description="收费比报价高", now=env.clock.now(), services=env.carebot.services)
    now = env.clock.now()
    tips = await Touchpoint.create(customer=owner, kind="visit_7d", occasion_key="v1",
                                   due_at=now, expires_at=now + timedelta(days=1))
    insurance = await Touchpoint.create(
        customer=owner, kind="insurance_expiry", occasion_key="i1", due_at=now,
        expires_at=now + timedelta(days=5), payload={"expiry": "2026-12-01", "days_left": 28})
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    await env.tick()

    def status(tp_id: int) -> TouchpointStatus:
        return next(t.status for t in rows if t.id == tp_id)

    rows = await Touchpoint.all()
    assert status(insurance.id) == TouchpointStatus.SENT  # service-critical: it goes
    assert status(tips.id) == TouchpointStatus.PENDING  # held, not lost
    by_owner = {t.customer_id: t.status for t in rows if t.kind == "campaign"}
    assert by_owner == {owner.id: TouchpointStatus.PENDING, other.id: TouchpointStatus.SENT}
    texts = env.emu.user(UID).bot_texts()
    assert len(texts) == 2 and "车险" in texts[-1]  # the ticket's acknowledgement, insurance

    # two days later the complaint is closed: the campaign still runs, the tips are stale
    env.clock.advance(days=2)
    await Ticket.filter(id=ticket.id).update(state=TicketState.CLOSED)
    await env.tick()
    rows = await Touchpoint.all()
    assert status(tips.id) == TouchpointStatus.EXPIRED
    assert {t.status for t in rows if t.kind == "campaign"} == {TouchpointStatus.SENT}
