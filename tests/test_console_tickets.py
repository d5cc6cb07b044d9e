"""The console's Tickets pages over real HTTP, on SQLite and PostgreSQL.

Tickets are opened with the domain function (``bot.tickets.open_ticket``) for owners linked
to the Telegram emulator; actions go through the console's forms (with the session's CSRF
token) and must behave as the staff chat does: the same rules, the same effects, the
answer in the owner's Telegram chat.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.tickets import FOLLOWUP_KIND, handling_rated, open_ticket
from bot.web.console import access
from bot.web.console.pages.tickets import FORBIDDEN, PAGE_SIZE, refusal
from db.models import (
    AuditLog,
    Customer,
    StaffRole,
    Ticket,
    TicketEvent,
    TicketLevel,
    TicketMessage,
    TicketState,
    Touchpoint,
    Vehicle,
)
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in

ROLES = [r.value for r in StaffRole]
SIGNATURE = "—— {name}，星辰汽车"


@dataclass
class Site:
    base: str
    carebot: Any
    emu: Any
    clock: FakeClock

    @property
    def services(self) -> Any:
        return self.carebot.services


@pytest_asyncio.fixture
async def site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Site]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield Site(f"http://127.0.0.1:{settings.web_port}", carebot, emulator, clock)
    finally:
        await carebot.stop()


async def owner(site: Site, n: int, *, advisor: str = "李娜", linked: bool = True
                ) -> tuple[Customer, Any]:
    """车主n with a car; linked owners have a chat in the emulator (user 5000+n)."""
    uid = 5000 + n
    driver = site.emu.user(uid, first_name=f"车主{n}") if linked else None
    customer = await Customer.create(
        name=f"车主{n}", phone=f"+861380013{n:04d}", advisor=advisor, link_token=f"tok-{n}",
        telegram_user_id=uid if linked else None, telegram_chat_id=uid if linked else None,
        linked_at=site.clock.now() if linked else None)
    await Vehicle.create(vin=f"LSVAU2180N{n:07d}", customer=customer, plate=f"粤A{n:05d}",
                         model="星辰 S7", delivered_at=site.clock.now() - timedelta(days=30))
    return customer, driver


async def complaint(site: Site, customer: Customer, text: str = "收费比报价高",
                    category: str = "charges") -> Ticket:
    return await open_ticket(customer_id=customer.id, vehicle_id=None, channel="bot",
                             category=category, description=text, now=site.clock.now(),
                             services=site.services)


async def post(http: aiohttp.ClientSession, url: str, data: dict[str, str],
               token: str | None) -> tuple[int, str, str]:
    """POST a console form (with the token unless None); (status, final path, body)."""
    if token is not None:
        data = {**data, "_csrf": token}
    async with http.post(url, data=data, allow_redirects=False) as r:
        if r.status == 303:
            location = r.headers["Location"]
            async with http.get(f"{url.split('/tickets')[0]}{location}") as page:
                return 303, location, await page.text()
        return r.status, "", await r.text()


def numbers(body: str) -> list[str]:
    return re.findall(r'data-number="(T-\d+)"', body)


# --------------------------------------------------------------------------- roles, scope


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_opens_the_ticket_pages_it_may(site: Site, role: str) -> None:
    customer, _ = await owner(site, 1)
    ticket = await complaint(site, customer)
    staff = await add_staff(f"user-{role}", role)
    allowed = access.can(staff, access.TICKETS)
    http = await signed_in(site.base, staff.login)
    async with http:
        for path in ("/tickets", f"/tickets/{ticket.id}", "/tickets?state=all&breached=1"):
            async with http.get(f"{site.base}{path}", allow_redirects=False) as r:
                assert r.status == (200 if allowed else 403), (role, path, r.status)
                body = await r.text()
            if allowed and path == "/tickets":
                assert numbers(body) == ["T-0001"]
        token = await csrf(http, f"{site.base}/")
        status, _, _ = await post(http, f"{site.base}/tickets/{ticket.id}/claim", {}, token)
        assert status == (303 if allowed else 403)
    fresh = await Ticket.get(id=ticket.id)
    assert fresh.handler_id == (staff.id if allowed else None)


@pytest.mark.parametrize("path", ["/tickets", "/tickets/1"])
async def test_signed_out_visitors_are_sent_to_sign_in(site: Site, path: str) -> None:
    async with aiohttp.ClientSession() as http, \
            http.get(f"{site.base}{path}", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/login?next=")


async def test_an_agent_cannot_open_another_advisors_customers_claimed_ticket(
        site: Site) -> None:
    li = await add_staff("lina", "advisor", name="李娜")
    await add_staff("wang", "agent", name="王客服")
    await add_staff("zhao", "supervisor", name="赵主管")
    theirs, _ = await owner(site, 1, advisor="李娜")
    mine, _ = await owner(site, 2, advisor="王客服")
    t1 = await complaint(site, theirs)
    t2 = await complaint(site, mine)
    t3 = await complaint(site, theirs, "洗车没洗干净", "environment")  # unclaimed: claimable
    for t in (t1, t2):
        await Ticket.filter(id=t.id).update(handler_id=li.id, state=TicketState.CLAIMED)

    http = await signed_in(site.base, "wang")
    async with http:
        async with http.get(f"{site.base}/tickets?state=all") as r:
            assert sorted(numbers(await r.text())) == [t2.number, t3.number]
        async with http.get(f"{site.base}/tickets/{t1.id}") as r:
            assert r.status == 403 and t1.description not in await r.text()
        async with http.get(f"{site.base}/tickets/{t2.id}") as r:
            assert r.status == 200  # their own customer, though 李娜 handles it
        async with http.get(f"{site.base}/tickets/999") as r:
            assert r.status == 404
        token = await csrf(http, f"{site.base}/tickets")
        for action, data in (("claim", {}), ("answer", {"text": "您好"}),
                             ("note", {"text": "x"}), ("escalate", {"reason": "r"}),
                             ("resolve", {"resolution": "a", "improvement": "b"})):
            status, _, _ = await post(http, f"{site.base}/tickets/{t1.id}/{action}", data, token)
            assert status == 403, action
        async with http.get(f"{site.base}/tickets?q={t1.number}") as r:
            assert numbers(await r.text()) == []
    t1 = await Ticket.get(id=t1.id)
    assert t1.handler_id == li.id and t1.level == TicketLevel.AGENT
    assert t1.state == TicketState.CLAIMED
    assert not await TicketMessage.filter(ticket_id=t1.id).exists()
    assert await TicketEvent.filter(ticket_id=t1.id).count() == 1  # opened, nothing since

    http = await signed_in(site.base, "zhao")
    async with http, http.get(f"{site.base}/tickets/{t1.id}") as r:
        assert r.status == 200 and t1.description in await r.text()


async def test_posts_without_the_csrf_token_change_nothing(site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent", name="王客服")
    before = len(driver.bot_texts())
    http = await signed_in(site.base, "wang")
    async with http:
        for token in (None, "forged"):
            for action, data in (("claim", {}), ("answer", {"text": "您好"})):
                payload = dict(data) if token is None else {**data, "_csrf": token}
                async with http.post(f"{site.base}/tickets/{ticket.id}/{action}",
                                     data=payload, allow_redirects=False) as r:
                    assert r.status == 403 and "CSRF" in await r.text()
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.handler_id is None and ticket.first_answered_at is None
    assert len(driver.bot_texts()) == before
    assert not await AuditLog.filter(action__startswith="ticket.").exists()


# --------------------------------------------------------------------------- claim, answer


async def test_claim_then_answer_reaches_the_owner_in_telegram(site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    assert "T-0001" in driver.bot_texts()[-1]  # the acknowledgement, from the effects
    wang = await add_staff("wang", "agent", name="王客服")
    http = await signed_in(site.base, "wang")
    async with http:
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            body = await r.text()
        assert 'id="claim"' in body and 'id="answer"' in body and "autofocus" in body
        assert 'id="resolve-form"' in body and 'id="escalate"' in body
        assert "收费比报价高" in body and 'class="countdown big"' in body
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")

        status, where, body = await post(http, f"{site.base}/tickets/{ticket.id}/claim", {},
                                         token)
        assert (status, where) == (303, f"/tickets/{ticket.id}?done=claimed")
        assert 'id="notice"' in body and "the owner was told" in body
        assert 'id="claim"' not in body  # claimed by them: no second Claim
        assert "王客服" in driver.bot_texts()[-1] and "正在由" in driver.bot_texts()[-1]

        site.clock.advance(minutes=20)
        answer = "张先生您好，<b>明天</b>上午为您免费检查 & 退还差价。"
        status, where, body = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                         {"text": answer}, token)
        assert (status, where) == (303, f"/tickets/{ticket.id}?done=answered")
        assert "sent to the owner in Telegram" in body
        assert "&lt;b&gt;明天&lt;/b&gt;" in body  # shown escaped in the conversation
    reply = driver.bot_texts()[-1]
    assert reply == f"{answer}\n\n{SIGNATURE.format(name='王客服')}"  # plain text, intact
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.ANSWERED and ticket.handler_id == wang.id
    assert ticket.first_answered_at == site.clock.now()
    kinds = [e.kind for e in await TicketEvent.filter(ticket_id=ticket.id).order_by("id")]
    assert kinds == ["opened", "claimed", "answered"]
    out = await TicketMessage.get(ticket_id=ticket.id, direction="out")
    assert out.text == answer and out.staff_id == wang.id
    audit = [a.action for a in await AuditLog.filter(target=f"ticket:{ticket.id}").order_by("id")]
    assert audit == ["ticket.claim", "ticket.answer"]


async def test_answering_an_unclaimed_ticket_claims_it_first_like_the_staff_chat(
        site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(site.base, "wang")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, _, _ = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                  {"text": "您好，马上处理"}, token)
        assert status == 303
        # a double click sends the same answer again at once: the owner gets it once
        status, _, _ = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                  {"text": "您好，马上处理"}, token)
        assert status == 303
    texts = driver.bot_texts()
    assert "正在由" in texts[-2] and texts[-1].startswith("您好，马上处理")
    assert sum(t.startswith("您好，马上处理") for t in texts) == 1
    kinds = [e.kind for e in await TicketEvent.filter(ticket_id=ticket.id).order_by("id")]
    assert kinds == ["opened", "claimed", "answered"]


async def test_an_answer_telegram_refuses_is_saved_said_and_sent_later(site: Site) -> None:
    from bot.handlers import staff as staff_side

    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(site.base, "wang")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        await post(http, f"{site.base}/tickets/{ticket.id}/claim", {}, token)
        site.emu.fail_next("sendMessage", error_code=409, description="Conflict")
        status, where, body = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                         {"text": "稍后给您回电"}, token)
        assert (status, where) == (303, f"/tickets/{ticket.id}?done=queued")
        assert "has not taken it yet" in body and 'data-status="owed"' in body
        assert not driver.bot_texts()[-1].startswith("稍后给您回电")
        site.clock.advance(minutes=1)
        await staff_side.relay_tick(site.services)
        assert driver.bot_texts()[-1].startswith("稍后给您回电")
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            assert 'data-status="owed"' not in await r.text()


async def test_an_unlinked_owner_is_not_answered_and_the_page_says_call(site: Site) -> None:
    customer, _ = await owner(site, 1, linked=False)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent", name="王客服", language="zh_CN")
    http = await signed_in(site.base, "wang")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                     {"text": "请问您方便接电话吗"}, token)
    assert status == 409
    assert "未能送达车主" in body and customer.phone in body
    assert "请问您方便接电话吗" in body  # what they typed is kept in the box
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.handler_id is None and ticket.first_answered_at is None
    assert not await TicketMessage.filter(ticket_id=ticket.id).exists()


async def test_empty_or_too_long_answers_are_refused_on_the_page(site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent")
    before = len(driver.bot_texts())
    http = await signed_in(site.base, "wang")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                     {"text": "   "}, token)
        assert status == 422 and "Write the answer first" in body
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                     {"text": "长" * 3501}, token)
        assert status == 422 and "at most 3500" in body
    assert len(driver.bot_texts()) == before
    assert (await Ticket.get(id=ticket.id)).handler_id is None


async def test_a_note_stays_internal(site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent", name="王客服")
    before = driver.bot_texts()
    http = await signed_in(site.base, "wang")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, where, body = await post(http, f"{site.base}/tickets/{ticket.id}/note",
                                         {"text": "车主上次也投诉过收费"}, token)
    assert (status, where) == (303, f"/tickets/{ticket.id}?done=noted")
    assert "车主上次也投诉过收费" in body and "Internal note" in body
    assert driver.bot_texts() == before
    note = await TicketMessage.get(ticket_id=ticket.id)
    assert note.direction == "note"
    last = await TicketEvent.filter(ticket_id=ticket.id).order_by("-id").first()
    assert last is not None and last.kind == "note"


# --------------------------------------------------------------------------- escalate, resolve


async def test_escalate_needs_a_reason_and_moves_one_level_up(site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    await add_staff("wang", "agent", name="王客服")
    await add_staff("lina", "advisor", name="李娜")  # the next level has someone
    http = await signed_in(site.base, "wang")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/escalate",
                                     {"reason": " "}, token)
        assert status == 422 and "Say why you escalate" in body
        assert (await Ticket.get(id=ticket.id)).level == TicketLevel.AGENT
        status, where, body = await post(http, f"{site.base}/tickets/{ticket.id}/escalate",
                                         {"reason": "车主要求经理回电"}, token)
        # an advisor-level ticket of 李娜's customer is out of the agent's reach now
        assert status == 303 and where.startswith("/tickets?done=escalated&n=T-0001")
        assert "T-0001 escalated" in body
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            assert r.status == 403
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.level == TicketLevel.ADVISOR and ticket.handler_id is None
    event = await TicketEvent.get(ticket_id=ticket.id, kind="escalated")
    assert event.text == "agent -> advisor"
    assert event.reason == "escalated by 王客服: 车主要求经理回电"
    assert "服务顾问" in driver.bot_texts()[-1]  # the owner is told a senior colleague follows


async def test_major_goes_to_the_manager_and_the_top_refuses_with_a_message(
        site: Site) -> None:
    customer, _ = await owner(site, 1)
    ticket = await complaint(site, customer, "发动机故障灯亮了", "repair_quality")
    await add_staff("qian", "manager", name="钱经理")
    http = await signed_in(site.base, "qian")
    async with http:
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, where, body = await post(http, f"{site.base}/tickets/{ticket.id}/major",
                                         {"reason": "安全问题"}, token)
        assert (status, where) == (303, f"/tickets/{ticket.id}?done=major")
        assert 'id="escalate"' not in body and 'id="major"' not in body  # nobody above
        assert "Major" in body
        for action in ("escalate", "major"):
            status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/{action}",
                                         {"reason": "再升级"}, token)
            assert status == 409 and "nobody above" in body
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.level == TicketLevel.MANAGER and ticket.major
    assert await TicketEvent.filter(ticket_id=ticket.id, kind="escalated").count() == 1


async def test_resolve_needs_the_level_and_both_texts(site: Site) -> None:
    customer, driver = await owner(site, 1, advisor="李娜")
    ticket = await complaint(site, customer)
    await Ticket.filter(id=ticket.id).update(level=TicketLevel.ADVISOR)
    await add_staff("wang", "agent", name="王客服")
    await add_staff("lina", "advisor", name="李娜")

    http = await signed_in(site.base, "wang")  # the owner's advisor is 李娜, not 王客服
    async with http, http.get(f"{site.base}/tickets/{ticket.id}") as r:
        assert r.status == 403  # an advisor-level ticket of someone else's customer

    http = await signed_in(site.base, "lina")
    async with http:
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            assert 'id="resolve-form"' in await r.text()
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/resolve",
                                     {"resolution": "已退还差价 200 元", "improvement": ""}, token)
        assert status == 422 and "improvement measure" in body
        assert "已退还差价 200 元" in body  # kept in the form
        assert (await Ticket.get(id=ticket.id)).state == TicketState.OPEN
        status, where, body = await post(
            http, f"{site.base}/tickets/{ticket.id}/resolve",
            {"resolution": "已退还差价 200 元", "improvement": "报价单由主管复核"}, token)
        assert (status, where) == (303, f"/tickets/{ticket.id}?done=resolved")
        assert 'id="resolve-form"' not in body and 'id="claim"' not in body
        assert 'id="answer"' in body  # the staff chat too lets staff write until it closes
        status, _, body = await post(
            http, f"{site.base}/tickets/{ticket.id}/resolve",
            {"resolution": "again", "improvement": "again"}, token)
        assert status == 409 and "resolved or closed" in body
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.RESOLVED and ticket.resolution == "已退还差价 200 元"
    assert ticket.improvement == "报价单由主管复核"
    assert await Touchpoint.filter(kind=FOLLOWUP_KIND, customer_id=customer.id).count() == 1
    assert any("已退还差价 200 元" in t for t in driver.bot_texts())


async def test_an_agent_may_not_resolve_an_advisor_level_ticket(site: Site) -> None:
    customer, _ = await owner(site, 1, advisor="王客服")  # their own customer: in scope
    ticket = await complaint(site, customer)
    await Ticket.filter(id=ticket.id).update(level=TicketLevel.ADVISOR)
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(site.base, "wang")
    async with http:
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            body = await r.text()
        assert r.status == 200
        assert 'id="resolve-form"' not in body and 'id="claim"' not in body
        assert 'id="answer"' in body and 'id="escalate"' in body
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        for action in ("claim", "resolve"):
            status, _, _ = await post(http, f"{site.base}/tickets/{ticket.id}/{action}",
                                      {"resolution": "x", "improvement": "y"}, token)
            assert status == 403, action
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.OPEN and ticket.handler_id is None


async def test_a_closed_ticket_takes_no_answer_and_claims_say_why(site: Site) -> None:
    customer, driver = await owner(site, 1)
    ticket = await complaint(site, customer)
    zhao = await add_staff("zhao", "supervisor", name="赵主管")
    await Ticket.filter(id=ticket.id).update(state=TicketState.RESOLVED, handler_id=zhao.id)
    await handling_rated(ticket.id, 9, now=site.clock.now(), services=site.services)
    assert (await Ticket.get(id=ticket.id)).state == TicketState.CLOSED
    before = len(driver.bot_texts())
    http = await signed_in(site.base, "zhao")
    async with http:
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            body = await r.text()
        for button in ('id="claim"', 'id="answer"', 'id="escalate"', 'id="resolve-form"'):
            assert button not in body
        assert 'id="note-form"' in body
        token = await csrf(http, f"{site.base}/tickets/{ticket.id}")
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/answer",
                                     {"text": "还有问题吗"}, token)
        assert status == 409 and "ticket is closed" in body
        status, _, body = await post(http, f"{site.base}/tickets/{ticket.id}/claim", {}, token)
        assert status == 409 and "resolved or closed" in body
    assert len(driver.bot_texts()) == before


async def test_refusal_follows_the_domain_rules(db: str) -> None:
    agent = await add_staff("a", "agent")
    advisor = await add_staff("b", "advisor")
    marketing = await add_staff("m", "marketing")
    open_agent = Ticket(state=TicketState.OPEN, level=TicketLevel.AGENT, handler_id=None)
    mine = Ticket(state=TicketState.CLAIMED, level=TicketLevel.AGENT, handler_id=agent.id)
    top = Ticket(state=TicketState.OPEN, level=TicketLevel.MANAGER, major=True)
    closed = Ticket(state=TicketState.CLOSED, level=TicketLevel.AGENT)
    assert all(refusal(a, marketing, open_agent) == FORBIDDEN for a in
               ("claim", "answer", "note", "escalate", "major", "resolve"))
    assert refusal("claim", agent, open_agent) is None
    assert refusal("claim", agent, mine) == "tickets.refused.already"
    assert refusal("claim", advisor, mine) is None  # taking over, as in the staff chat
    assert refusal("claim", agent, top) == FORBIDDEN
    assert refusal("resolve", agent, top) == FORBIDDEN
    assert refusal("answer", agent, top) is None
    assert refusal("escalate", agent, top) == "tickets.refused.top"
    assert refusal("major", agent, top) == "tickets.refused.top"
    assert refusal("claim", agent, closed) == "tickets.refused.not_active"
    assert refusal("answer", agent, closed) == "tickets.refused.closed"
    assert refusal("note", agent, closed) is None
    assert refusal("delete", agent, open_agent) == FORBIDDEN


# --------------------------------------------------------------------------- the list


async def test_the_list_filters_sorts_by_deadline_and_pages(site: Site) -> None:
    now = site.clock.now()
    wang = await add_staff("wang", "supervisor", name="王主管")
    customer, _ = await owner(site, 1, linked=False)
    rows = []
    for i in range(PAGE_SIZE + 5):  # 55 running clocks, the later created the sooner due
        rows.append(Ticket(
            number=f"T-{i + 1:04d}", customer_id=customer.id, channel="bot",
            category="charges" if i % 2 else "timeliness",
            level=TicketLevel.ADVISOR if i % 5 == 0 else TicketLevel.AGENT,
            state=TicketState.OPEN, created_at=now, first_answer_due=now,
            due_at=now + timedelta(minutes=100 - i * 3), due_kind="first_answer",
            handler_id=wang.id if i % 7 == 0 else None, breaches=1 if i == 3 else 0))
    for i in range(3):  # resolved: no clock, after every running one
        rows.append(Ticket(
            number=f"T-{PAGE_SIZE + 6 + i:04d}", customer_id=customer.id, channel="bot",
            category="other", state=TicketState.RESOLVED, created_at=now + timedelta(minutes=i),
            first_answer_due=now, due_at=None))
    await Ticket.bulk_create(rows)
    running = sorted(rows[:PAGE_SIZE + 5], key=lambda t: t.due_at or now)
    by_due = [t.number for t in running]
    RESOLVED = ["T-0058", "T-0057", "T-0056"]  # newest first

    http = await signed_in(site.base, "wang")
    async with http:
        async with http.get(f"{site.base}/tickets") as r:
            body = await r.text()
        assert numbers(body) == by_due[:PAGE_SIZE]
        assert "Tickets found: 55" in body and "Page 1 of 2" in body
        assert body.count('class="countdown"') == PAGE_SIZE
        assert 'class="breached"' in body and 'class="due_soon"' in body
        async with http.get(f"{site.base}/tickets?page=2") as r:
            assert numbers(await r.text()) == by_due[PAGE_SIZE:]
        async with http.get(f"{site.base}/tickets?state=all&page=2") as r:
            assert numbers(await r.text()) == by_due[PAGE_SIZE:] + RESOLVED
        async with http.get(f"{site.base}/tickets?state=resolved") as r:
            assert numbers(await r.text()) == RESOLVED
        async with http.get(f"{site.base}/tickets?level=advisor&category=timeliness") as r:
            expected = [t.number for t in running
                        if t.level == "advisor" and t.category == "timeliness"]
            assert numbers(await r.text()) == expected and expected
        async with http.get(f"{site.base}/tickets?assignee=me") as r:
            assert numbers(await r.text()) == [t.number for t in running
                                               if t.handler_id == wang.id]
        async with http.get(f"{site.base}/tickets?assignee={wang.id}") as r:
            assert len(numbers(await r.text())) == 8
        async with http.get(f"{site.base}/tickets?assignee=none&page=2") as r:
            assert numbers(await r.text()) == []
        async with http.get(f"{site.base}/tickets?breached=1") as r:
            # T-0004 missed one before; T-0035..T-0055's clocks have run out
            overdue = [t.number for t in running if (t.due_at or now) <= now or t.breaches]
            assert numbers(await r.text()) == overdue and "T-0004" in overdue
        async with http.get(f"{site.base}/tickets?q=T-0007") as r:
            assert numbers(await r.text()) == ["T-0007"]
        async with http.get(f"{site.base}/tickets",
                            params={"q": customer.phone, "state": "resolved"}) as r:
            assert len(numbers(await r.text())) == 3
        async with http.get(f"{site.base}/tickets?q=13999999999") as r:
            body = await r.text()
            assert numbers(body) == [] and "No tickets match" in body
        async with http.get(f"{site.base}/tickets?state=bogus&level=x&assignee=';--&page=-1"
                            ) as r:
            assert r.status == 200 and len(numbers(await r.text())) == PAGE_SIZE


# --------------------------------------------------------------------------- texts and photos


async def test_complaint_texts_and_photos_only_for_roles_that_may_read_them(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    customer, _ = await owner(site, 1)
    ticket = await complaint(site, customer, "师傅态度很差")
    stored = site.emu.tiny_photo()
    photo = await TicketMessage.create(ticket_id=ticket.id, direction="in", text="看这张照片",
                                       photo_file_id=stored.file_id,
                                       created_at=site.clock.now())
    # a role that works tickets but may not read complaint texts (none today: made here)
    monkeypatch.setitem(access.PERMISSIONS, StaffRole.MARKETING,
                        access.PERMISSIONS[StaffRole.MARKETING]
                        | {access.TICKETS, access.TICKETS_ALL})
    await add_staff("mk", "marketing")
    await add_staff("zhao", "supervisor")

    http = await signed_in(site.base, "zhao")
    async with http:
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            body = await r.text()
        assert "师傅态度很差" in body and "看这张照片" in body
        assert 'id="newest-owner"' in body  # the newest owner message is marked
        async with http.get(f"{site.base}/tickets/{ticket.id}/photos/{photo.id}") as r:
            assert r.status == 200 and r.content_type.startswith("image/")
            assert await r.read() == stored.data
        async with http.get(f"{site.base}/tickets/{ticket.id}/photos/999") as r:
            assert r.status == 404

    http = await signed_in(site.base, "mk")
    async with http:
        async with http.get(f"{site.base}/tickets/{ticket.id}") as r:
            body = await r.text()
        assert r.status == 200
        assert "师傅态度很差" not in body and "看这张照片" not in body
        assert "hidden: your role does not see" in body
        assert 'id="answer"' not in body and 'id="claim"' not in body  # not ticket staff
        async with http.get(f"{site.base}/tickets/{ticket.id}/photos/{photo.id}") as r:
            assert r.status == 403
