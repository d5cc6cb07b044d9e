"""The console's Inbox over real HTTP, on SQLite and PostgreSQL (issue 14, points 3, 6, 8).

Owners write through the Telegram emulator (strict limits) to a carebot with a forum staff
group; staff work the conversation in the console with the session's CSRF token. What they
do must reach the owner (signed), show in the conversation's topic, and stay internal
where it should. The scoping tests open conversations with the domain function
(``bot.threads.receive``) for owners who need no Telegram.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot import threads
from bot.clock import FakeClock
from bot.threads import Incoming
from db.models import (
    AuditLog,
    Customer,
    Thread,
    ThreadKind,
    ThreadMessage,
    ThreadState,
    Ticket,
    Touchpoint,
    Vehicle,
)
from tests.browser.conftest import ConsoleEnv, add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in
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
AGENT_TG = 7001
TOPIC = "咨询 · 张伟 · 粤A12345"
SIGNATURE = "—— 王客服，星辰汽车"


@pytest_asyncio.fixture
async def env(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[ConsoleEnv]:
    """carebot with its console and a forum staff group, on a Tuesday morning."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s", staff_chat_id=STAFF_CHAT)
    emulator.group(STAFF_CHAT, "售后客服", is_forum=True)
    clock.set(local(2026, 11, 3, 10, 0))
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield ConsoleEnv(f"http://127.0.0.1:{settings.web_port}", emulator, carebot, clock,
                         settings)
    finally:
        await carebot.stop()


async def owner(env: ConsoleEnv, tmp_path: Path, *, user_id: int = 5001,
                phone: str = "13800138000", name: str = "张伟", plate: str = "粤A12345",
                lang: str = "zh_CN") -> Any:
    """An owner imported with a 星辰 S7 (advisor 李娜, no staff account) and linked."""
    vin = VIN_A if user_id == 5001 else VIN_B
    row = delivery_row(vin, phone, "2026-10-01 10:00", name=name, plate=plate, lang=lang)
    await import_file(env, write_csv(tmp_path / f"d{user_id}.csv", [row]))
    return await link_by_contact(env, user_id, phone)


async def asks(env: ConsoleEnv, driver: Any, text: str) -> Thread:
    driver.send_text(text)
    await env.poll()
    found = await Thread.filter(customer__telegram_user_id=driver.user_id) \
        .order_by("-id").first()
    assert found is not None
    return found


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as r:
        return r.status, await r.text()


async def post(http: aiohttp.ClientSession, url: str, data: dict[str, str],
               token: str | None) -> tuple[int, str, str]:
    """POST a console form (with the token unless None); (status, where to, final body)."""
    if token is not None:
        data = {**data, "_csrf": token}
    async with http.post(url, data=data, allow_redirects=False) as r:
        if r.status == 303:
            location = r.headers["Location"]
            base = url.split("/inbox")[0].split("/canned")[0]
            async with http.get(f"{base}{location}") as page:
                return 303, location, await page.text()
        return r.status, "", await r.text()


def listed(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="conv[^"]*" data-id="(\d+)"', body)]


def group(env: ConsoleEnv) -> Any:
    return env.emu.group(STAFF_CHAT, "售后客服")


# --------------------------------------------------------------------------- the work


async def test_an_agent_takes_answers_and_notes_and_the_owner_and_topic_see_it(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    thread = await asks(env, driver, "我的车蓝牙连不上手机，怎么办？")
    agent = await add_staff("wang", "agent", name="王客服", telegram_id=AGENT_TG)
    topic = group(env).topic_id(TOPIC)
    http = await signed_in(env.base, "wang")
    async with http:
        status, body = await get(http, f"{env.base}/inbox")
        assert status == 200 and listed(body) == [thread.id]
        assert 'class="conv on_time unread"' in body and "蓝牙连不上" in body
        status, body = await get(http, f"{env.base}/inbox/{thread.id}")
        assert status == 200 and "我的车蓝牙连不上手机，怎么办？" in body
        assert (await Thread.get(id=thread.id)).read_at == env.clock.now()  # opened: read
        _, body = await get(http, f"{env.base}/inbox")
        assert "unread" not in re.search(r'<li class="conv[^"]*"', body).group(0)  # type: ignore[union-attr]

        token = await csrf(http, f"{env.base}/inbox/{thread.id}")
        status, where, body = await post(http, f"{env.base}/inbox/{thread.id}/assign",
                                         {"to": "me"}, token)
        assert (status, where) == (303, f"/inbox/{thread.id}?done=assigned")
        assert (await Thread.get(id=thread.id)).assignee_id == agent.id
        assert group(env).bot_texts(topic)[0].count("王客服") == 1  # the card says who

        env.clock.advance(minutes=20)
        answer = "您好，请在手机上删除旧的配对后重新搜索“星辰S7”。"
        status, where, body = await post(http, f"{env.base}/inbox/{thread.id}/answer",
                                         {"text": answer}, token)
        assert (status, where) == (303, f"/inbox/{thread.id}?done=answered")
        assert driver.bot_texts()[-1] == f"{answer}\n\n{SIGNATURE}"
        assert group(env).bot_texts(topic)[-1] == f"✉️ 王客服（控制台）→ 车主：\n{answer}"
        assert answer in body and 'data-status="owed"' not in body
        fresh = await Thread.get(id=thread.id)
        assert fresh.first_answered_at == env.clock.now()
        owned = len(driver.bot_texts())
        status, _, body = await post(http, f"{env.base}/inbox/{thread.id}/note",
                                     {"text": "车主下午方便接电话"}, token)
        assert status == 303 and "车主下午方便接电话" in body
        assert len(driver.bot_texts()) == owned  # a note never reaches the owner
        assert (
            group(env).bot_texts(topic)[-1] == "📝 王客服（控制台，内部备注）：\n车主下午方便接电话"
        )

        # the owner writes back: unread again, waiting since that message
        env.clock.advance(minutes=5)
        driver.send_text("好了，谢谢！")
        await env.poll()
        _, body = await get(http, f"{env.base}/inbox?view=mine")
        assert listed(body) == [thread.id] and "好了，谢谢！" in body
        assert 'class="conv answered unread"' in body
        status, _, body = await post(http, f"{env.base}/inbox/{thread.id}/done", {}, token)
        assert status == 303 and 'id="reopen"' in body
    done = await Thread.get(id=thread.id)
    assert (done.state, done.outcome, done.done_by_id) == (ThreadState.DONE, "answered", agent.id)
    assert group(env).topics[topic]["closed"]
    actions = [a.action for a in await AuditLog.filter(target=f"thread:{thread.id}")
               .order_by("id")]
    assert actions == ["conversation.assign", "conversation.answer", "conversation.note",
                       "conversation.done"]


async def test_an_answer_telegram_refuses_shows_sending_then_not_delivered(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    thread = await asks(env, driver, "保养要多久？")
    await add_staff("wang", "agent", name="王客服")
    side = env.carebot.services.threads
    http = await signed_in(env.base, "wang")
    async with http:
        token = await csrf(http, f"{env.base}/inbox/{thread.id}")
        env.emu.fail_next("sendMessage", error_code=409, description="Conflict")
        status, where, body = await post(http, f"{env.base}/inbox/{thread.id}/answer",
                                         {"text": "大约两个小时"}, token)
        assert (status, where) == (303, f"/inbox/{thread.id}?done=queued")
        assert 'data-status="owed"' in body and "sending…" in body
        assert not driver.bot_texts()[-1].startswith("大约两个小时")
        env.clock.advance(minutes=1)
        await side.deliver()
        assert driver.bot_texts()[-1] == f"大约两个小时\n\n{SIGNATURE}"
        _, body = await get(http, f"{env.base}/inbox/{thread.id}")
        assert 'data-status="owed"' not in body

        driver.block()  # Telegram answers 403 from now on: given up at once
        status, where, body = await post(http, f"{env.base}/inbox/{thread.id}/answer",
                                         {"text": "还在吗？"}, token)
        assert where == f"/inbox/{thread.id}?done=undelivered" and "Not delivered" in body
        assert 'data-status="failed"' in body and "not delivered: call the owner" in body
        # now known to be unreachable: the page says to call, and a new answer is refused
        assert 'id="unreachable"' in body and "+8613800138000" in body
        status, _, body = await post(http, f"{env.base}/inbox/{thread.id}/answer",
                                     {"text": "请回电"}, token)
        assert status == 409 and "cannot be reached" in body and "请回电" in body


async def test_an_insurance_lead_is_closed_renewed_with_its_premium(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    now = env.clock.now()
    await Touchpoint.create(customer=customer, kind="insurance_expiry", occasion_key="i1",
                            due_at=now, expires_at=now + timedelta(days=3),
                            payload={"expiry": "2026-12-01", "days_left": 28})
    assert (await env.tick()).sent == 1
    env.clock.advance(hours=1)
    lead = await asks(env, driver, "麻烦给我报个续保的价")
    assert lead.kind == ThreadKind.INSURANCE_LEAD
    await add_staff("zhao", "supervisor", name="赵主管")
    http = await signed_in(env.base, "zhao")
    async with http:
        _, body = await get(http, f"{env.base}/inbox?kind=insurance_lead")
        assert listed(body) == [lead.id] and "Insurance lead" in body
        _, body = await get(http, f"{env.base}/inbox?kind=inquiry")
        assert listed(body) == []
        _, body = await get(http, f"{env.base}/inbox/{lead.id}")
        assert 'value="renewed_here"' in body and 'value="won"' not in body
        assert "Insurance expiry reminder" in body  # the touchpoint it answers, in the chat
        assert "<b>2026-12-01</b>" in body  # as the owner read it: bold, and no more
        token = await csrf(http, f"{env.base}/inbox/{lead.id}")
        url = f"{env.base}/inbox/{lead.id}/done"
        status, _, body = await post(http, url, {"outcome_note": "报价已发"}, token)
        assert status == 422 and "Choose how it ended" in body and "报价已发" in body
        status, _, body = await post(http, url, {"outcome": "renewed_here",
                                                 "premium": "49八0"}, token)
        assert status == 422 and "The premium must be an amount" in body
        assert 'value="49八0"' in body  # what was typed is kept
        assert (await Thread.get(id=lead.id)).state == ThreadState.OPEN
        status, where, body = await post(http, url, {"outcome": "renewed_here",
                                                     "premium": "4,980.50"}, token)
        assert (status, where) == (303, f"/inbox/{lead.id}?done=done")
        assert "Renewed with us" in body
        # done already (a colleague was quicker): said, nothing changes
        status, _, body = await post(http, url, {"outcome": "not_renewing"}, token)
        assert status == 409 and "already done" in body
    lead = await Thread.get(id=lead.id)
    assert (lead.state, lead.outcome, lead.premium) == \
        (ThreadState.DONE, "renewed_here", Decimal("4980.50"))


async def test_a_booking_request_is_booked_from_the_console(env: ConsoleEnv,
                                                              tmp_path: Path) -> None:
    from db.models import Booking

    driver = await owner(env, tmp_path)
    customer = await Customer.get(telegram_user_id=5001)
    now = env.clock.now()
    await Touchpoint.create(customer=customer, kind="service_due", occasion_key="s1",
                            due_at=now, expires_at=now + timedelta(days=3),
                            payload={"due_date": "2026-11-20"})
    assert (await env.tick()).sent == 1
    request = await asks(env, driver, "我想这周四上午过来保养")
    assert request.kind == ThreadKind.BOOKING_REQUEST
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(env.base, "wang")
    async with http:
        _, body = await get(http, f"{env.base}/inbox/{request.id}")
        assert 'value="2026-11-05"' in body and 'value="2026-11-03"' not in body  # from tomorrow
        token = await csrf(http, f"{env.base}/inbox/{request.id}")
        url = f"{env.base}/inbox/{request.id}/done"
        status, _, body = await post(http, url, {"outcome": "booked", "day": "2026-11-03",
                                                 "slot": "morning"}, token)
        assert status == 422 and "Choose a day the workshop takes bookings" in body
        assert not await Booking.exists()
        status, where, body = await post(http, url, {"outcome": "booked", "day": "2026-11-05",
                                                     "slot": "morning"}, token)
        assert (status, where) == (303, f"/inbox/{request.id}?done=booked")
    booking = await Booking.get(customer_id=customer.id)
    assert (str(booking.day), booking.slot) == ("2026-11-05", "09:00")
    told = driver.bot_texts()[-1]
    assert "预约成功" in told and told.endswith(SIGNATURE)
    request = await Thread.get(id=request.id)
    assert (request.state, request.outcome) == (ThreadState.DONE, "booked")


async def test_a_conversation_becomes_a_complaint_ticket_with_the_owners_words(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    thread = await asks(env, driver, "刹车有异响")
    driver.send_text("昨天刚保养完")
    await env.poll()
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(env.base, "wang")
    async with http:
        token = await csrf(http, f"{env.base}/inbox/{thread.id}")
        status, _, body = await post(http, f"{env.base}/inbox/{thread.id}/ticket",
                                     {"category": "nonsense"}, token)
        assert status == 422 and "Choose the complaint" in body
        status, where, body = await post(http, f"{env.base}/inbox/{thread.id}/ticket",
                                         {"category": "repair_quality"}, token)
        ticket = await Ticket.get(customer__telegram_user_id=5001)
        assert (status, where) == (303, f"/tickets/{ticket.id}")
        assert (
            ticket.description == "刹车有异响\n昨天刚保养完" and ticket.category == "repair_quality"
        )
        assert 'id="whole-chat"' in body and "昨天刚保养完" in body  # the ticket shows the chat
        thread = await Thread.get(id=thread.id)
        assert (thread.state, thread.ticket_id, thread.outcome) == \
            (ThreadState.DONE, ticket.id, "ticket")
        status, _, body = await post(http, f"{env.base}/inbox/{thread.id}/reopen", {}, token)
        assert status == 409 and "became a complaint ticket" in body
    await add_staff("zhao", "supervisor", name="赵主管")
    boss = await signed_in(env.base, "zhao")
    async with boss:  # the customer file shows the same whole chat
        customer = await Customer.get(telegram_user_id=5001)
        status, body = await get(boss, f"{env.base}/customers/{customer.id}")
        assert status == 200 and 'id="whole-chat"' in body and "刹车有异响" in body


async def test_canned_replies_reach_each_owner_in_their_language(
        env: ConsoleEnv, tmp_path: Path) -> None:
    zh = await owner(env, tmp_path)
    en = await owner(env, tmp_path, user_id=5002, phone="13900139000", name="Li Lei",
                     plate="粤B67890", lang="en")
    zh_thread = await asks(env, zh, "你好")
    en_thread = await asks(env, en, "Hello, can I get an insurance quote?")
    await add_staff("wang", "agent", name="王客服")
    http = await signed_in(env.base, "wang")
    async with http:
        _, body = await get(http, f"{env.base}/inbox/{en_thread.id}")
        assert "Hello Li Lei, this is 王客服 from 星辰汽车. How can I help you?" in body
        assert "张伟" not in body
        _, body = await get(http, f"{env.base}/inbox/{en_thread.id}?canned=insurance_quote")
        text = ("Hello Li Lei, the insurance renewal quote for your 星辰 S7 (粤B67890) is "
                "ready; I will send you the details shortly. You can also call us on "
                "020-88886666.")
        assert f">{text}</textarea>" in body
        token = await csrf(http, f"{env.base}/inbox/{en_thread.id}")
        status, _, _ = await post(http, f"{env.base}/inbox/{en_thread.id}/answer",
                                  {"text": text}, token)
        assert status == 303
        assert en.bot_texts()[-1] == f"{text}\n\n— 王客服, 星辰汽车"
        _, body = await get(http, f"{env.base}/inbox/{zh_thread.id}?canned=thanks")
        assert (
            ">感谢您的耐心，张伟！如还有问题，随时在这里留言或致电 020-88886666。</textarea>"
            in body
        )
    # a reply only written in Chinese is offered to the English owner in Chinese
    await add_staff("zhao", "supervisor", name="赵主管")
    boss = await signed_in(env.base, "zhao")
    async with boss:
        token = await csrf(boss, f"{env.base}/canned/new")
        status, where, _ = await post(boss, f"{env.base}/canned", {
            "name": "parts", "language": "zh_CN", "title": "配件",
            "text": "{name}您好，配件已到店，请联系{advisor}。"}, token)
        assert (status, where[:20]) == (303, "/canned?done=created")
        _, body = await get(boss, f"{env.base}/inbox/{en_thread.id}?canned=parts")
        assert ">Li Lei您好，配件已到店，请联系李娜。</textarea>" in body


async def test_supervisors_edit_canned_replies_and_bad_variables_are_refused(
        env: ConsoleEnv) -> None:
    await add_staff("zhao", "supervisor", name="赵主管")
    await add_staff("wang", "agent", name="王客服")
    agent = await signed_in(env.base, "wang")
    async with agent:
        status, body = await get(agent, f"{env.base}/canned")
        assert status == 200 and 'data-name="greeting"' in body and 'href="/canned/new"' not in body
        token = await csrf(agent, f"{env.base}/canned")
        status, _, _ = await post(agent, f"{env.base}/canned",
                                  {"name": "x", "language": "en", "text": "hi"}, token)
        assert status == 403
    boss = await signed_in(env.base, "zhao")
    async with boss:
        token = await csrf(boss, f"{env.base}/canned/new")
        bad = {"name": "call", "language": "en", "title": "", "text": "Call {name} on {phone}"}
        status, _, body = await post(boss, f"{env.base}/canned", bad, token)
        assert status == 422 and "{phone} is not a variable carebot knows" in body
        assert "Call {name} on {phone}</textarea>" in body  # kept to fix
        status, _, body = await post(boss, f"{env.base}/canned",
                                     {**bad, "text": "Call {name.upper}"}, token)
        assert status == 422 and "{name.upper} is not a variable" in body
        status, _, body = await post(boss, f"{env.base}/canned", {**bad, "text": "a { b"},
                                     token)
        assert status == 422 and "is not closed" in body
        status, _, body = await post(boss, f"{env.base}/canned",
                                     {**bad, "name": "greeting", "text": "Hi {name}"}, token)
        assert status == 422 and "There is already a reply greeting" in body
        status, _, body = await post(boss, f"{env.base}/canned",
                                     {**bad, "text": "We will call you, {name} {{ok}}"}, token)
        assert status == 303 and "We will call you, Wang Wei {ok}" in body  # its preview
        reply = await canned_row("call", "en")
        assert reply.text == "We will call you, {name} {{ok}}" and reply.updated_by_id
        status, _, body = await post(boss, f"{env.base}/canned/{reply.id}/active",
                                     {"active": "0"}, token)
        assert status == 303 and "Switched off" in body
    assert not (await canned_row("call", "en")).active
    from bot import canned

    assert await canned.find("call", "en") is None  # no longer offered
    assert [a.action for a in await AuditLog.filter(target=f"canned:{reply.id}")
            .order_by("id")] == ["canned.create", "canned.deactivate"]


async def canned_row(name: str, language: str) -> Any:
    from db.models import CannedReply

    return await CannedReply.get(name=name, language=language)


# --------------------------------------------------------------------------- who sees what


async def scoped_threads(env: ConsoleEnv) -> dict[str, Thread]:
    """Three conversations: one routed to advisor 李娜 (her owner), one in the agents' queue
    (an owner without advisor), one given to the supervisor."""
    lina = await add_staff("lina", "advisor", name="李娜")
    zhao = await add_staff("zhao", "supervisor", name="赵主管")
    await add_staff("wang", "agent", name="王客服")
    await add_staff("mkt", "marketing", name="市场")
    made: dict[str, Thread] = {}
    for key, name, phone, advisor, plate in (
            ("hers", "张伟", "+8613800138000", "李娜", "粤A12345"),
            ("queue", "刘洋", "+8613900139000", "", "粤B67890"),
            ("boss", "王芳", "+8613700137000", "王强", "沪AD1234")):
        customer = await Customer.create(name=name, phone=phone, advisor=advisor,
                                         link_token=key)
        await Vehicle.create(vin=f"LSVAU2180T00000{len(made)}1", customer=customer,
                             plate=plate, model="星辰 S7")
        made[key], _ = await threads.receive(customer, Incoming(text=f"{name}的问题"),
                                             now=env.clock.now(), settings=env.settings,
                                             sla=env.carebot.services.rules.tickets)
        env.clock.advance(minutes=1)
    assert made["hers"].assignee_id == lina.id and made["queue"].assignee_id is None
    await threads.assign(made["boss"], zhao, now=env.clock.now())
    return made


@pytest.mark.parametrize("login,expected", [
    ("wang", ["queue"]), ("lina", ["hers"]), ("zhao", ["hers", "queue", "boss"])])
async def test_each_role_sees_its_conversations_longest_waiting_first(
        env: ConsoleEnv, login: str, expected: list[str]) -> None:
    made = await scoped_threads(env)
    http = await signed_in(env.base, login)
    async with http:
        status, body = await get(http, f"{env.base}/inbox")
        assert status == 200 and listed(body) == [made[k].id for k in expected]
        for key, thread in made.items():
            status, _ = await get(http, f"{env.base}/inbox/{thread.id}")
            assert status == (200 if key in expected else 403), (login, key)


async def test_filters_mine_and_unassigned_and_marketing_is_kept_out(
        env: ConsoleEnv) -> None:
    made = await scoped_threads(env)
    boss = await signed_in(env.base, "zhao")
    async with boss:
        _, body = await get(boss, f"{env.base}/inbox?view=unassigned")
        assert listed(body) == [made["queue"].id]
        _, body = await get(boss, f"{env.base}/inbox?view=mine")
        assert listed(body) == [made["boss"].id]
        assert "Inbox" in re.search(r'<nav id="menu".*?</nav>', body, re.DOTALL).group(0)  # type: ignore[union-attr]
    mkt = await signed_in(env.base, "mkt")
    async with mkt:
        status, body = await get(mkt, f"{env.base}/")
        assert 'href="/inbox"' not in body
        for path in ("/inbox", f"/inbox/{made['queue'].id}", "/canned"):
            assert (await get(mkt, f"{env.base}{path}"))[0] == 403
        token = await csrf(mkt, f"{env.base}/")
        status, _, _ = await post(mkt, f"{env.base}/inbox/{made['queue'].id}/assign",
                                  {"to": "me"}, token)
        assert status == 403
    assert (await Thread.get(id=made["queue"].id)).assignee_id is None


async def test_phones_are_masked_until_the_owner_is_yours(env: ConsoleEnv) -> None:
    made = await scoped_threads(env)
    agent = await signed_in(env.base, "wang")
    async with agent:
        _, body = await get(agent, f"{env.base}/inbox")
        assert "+86139****9000" in body and "+8613900139000" not in body
        _, body = await get(agent, f"{env.base}/inbox/{made['queue'].id}")
        assert "+86139****9000" in body and "+8613900139000" not in body
        assert 'href="/customers/' not in body  # not their owner's file
        token = await csrf(agent, f"{env.base}/inbox/{made['queue'].id}")
        status, _, body = await post(agent, f"{env.base}/inbox/{made['queue'].id}/assign",
                                     {"to": "me"}, token)
        assert status == 303 and "+8613900139000" in body  # theirs now: they may call
    boss = await signed_in(env.base, "zhao")
    async with boss:
        _, body = await get(boss, f"{env.base}/inbox")
        assert all(p in body for p in ("+8613800138000", "+8613900139000", "+8613700137000"))


async def test_search_by_phone_tail_plate_fragment_and_name(env: ConsoleEnv) -> None:
    made = await scoped_threads(env)
    boss = await signed_in(env.base, "zhao")
    async with boss:
        for q, keys in (("9000", ["queue"]), ("a123", ["hers"]), ("AD12", ["boss"]),
                        ("粤B", ["queue"]), ("王", ["boss"]), ("0000", [])):
            _, body = await get(boss, f"{env.base}/inbox?q={q}")
            assert listed(body) == [made[k].id for k in keys], q
        _, body = await get(boss, f"{env.base}/inbox?q=9000")
        assert "Phones ending in 9000" in body
        async with boss.get(f"{env.base}/customers", params={"q": "8000"}) as r:
            names = re.findall(r'<a href="/customers/\d+">([^<]+)</a>', await r.text())
        assert names == ["张伟"]
    agent = await signed_in(env.base, "wang")
    async with agent:  # the search stays inside what the agent may see
        _, body = await get(agent, f"{env.base}/inbox?q=8000")
        assert listed(body) == []


async def test_what_an_owner_wrote_is_shown_as_text_never_as_html(env: ConsoleEnv) -> None:
    made = await scoped_threads(env)
    thread = made["queue"]
    customer = await Customer.get(id=thread.customer_id)
    await threads.receive(customer, Incoming(text="<script>alert(1)</script><b>hi</b>"),
                          now=env.clock.now(), settings=env.settings,
                          sla=env.carebot.services.rules.tickets)
    boss = await signed_in(env.base, "zhao")
    async with boss:
        _, body = await get(boss, f"{env.base}/inbox/{thread.id}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;" in body
        assert "<script>alert" not in body
        _, body = await get(boss, f"{env.base}/inbox")
        assert "&lt;script&gt;" in body and "<script>alert" not in body


async def test_refused_without_the_csrf_token(env: ConsoleEnv) -> None:
    made = await scoped_threads(env)
    boss = await signed_in(env.base, "zhao")
    async with boss:
        for url, data in ((f"/inbox/{made['queue'].id}/answer", {"text": "hi"}),
                          (f"/inbox/{made['queue'].id}/assign", {"to": "me"}),
                          ("/canned", {"name": "x", "language": "en", "text": "hi"})):
            status, _, body = await post(boss, f"{env.base}{url}", data, None)
            assert status == 403 and "CSRF" in body
    assert not await ThreadMessage.filter(direction="out").exists()
    assert (await Thread.get(id=made["queue"].id)).assignee_id is None


async def test_media_shows_in_the_chat_and_only_to_those_who_may_see_it(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    driver.send_photo(caption="仪表盘这个灯是什么意思？")
    await env.poll()
    driver.send_voice()
    driver.send_document(file_name="发票.pdf")
    driver.send_location(31.2304, 121.4737)
    driver.send_sticker("👍")
    await env.poll()
    thread = await Thread.get(customer__telegram_user_id=5001)
    media = {m.media_kind: m for m in await ThreadMessage.filter(thread_id=thread.id)}
    await add_staff("wang", "agent", name="王客服")
    await add_staff("other", "advisor", name="别人")
    http = await signed_in(env.base, "wang")
    async with http:
        _, body = await get(http, f"{env.base}/inbox/{thread.id}")
        assert f'<img src="/chat/media/thread/{media["photo"].id}"' in body
        assert "仪表盘这个灯是什么意思？" in body
        assert (
            f'<audio controls preload="none" src="/chat/media/thread/{media["voice"].id}"' in body
        )
        assert f'href="/chat/media/thread/{media["document"].id}" download' in body
        assert "mlat=31.23040&amp;mlon=121.47370" in body and "31.23040, 121.47370" in body
        assert '<p class="sticker">👍</p>' in body
        async with http.get(f"{env.base}/chat/media/thread/{media['photo'].id}") as r:
            assert r.status == 200 and r.content_type == "image/jpeg"
            assert (await r.read()).startswith(b"\xff\xd8")
        async with http.get(f"{env.base}/chat/media/thread/{media['voice'].id}") as r:
            assert r.status == 200 and r.content_type == "audio/ogg"
        async with http.get(f"{env.base}/chat/media/thread/{media['document'].id}") as r:
            assert r.status == 200 and r.content_type == "application/octet-stream"
            assert r.headers["Content-Disposition"].startswith("attachment")
    other = await signed_in(env.base, "other")  # an advisor: not their owner nor queue
    async with other, other.get(f"{env.base}/chat/media/thread/{media['photo'].id}") as r:
        assert r.status == 403


def test_the_interface_strings_exist_in_both_languages() -> None:
    from bot.web.console.render import load_strings

    strings = load_strings()
    templates = Path(__file__).parent.parent / "bot" / "web" / "console" / "templates"
    used: set[str] = set()
    for name in ("conversations.html", "conversation.html", "_whole_chat.html",
                 "canned.html", "canned_edit.html"):
        used |= set(re.findall(r"""\bt\(['"]([a-z_]+\.[a-z_.]+)['"]\s*[,)]""",
                               (templates / name).read_text(encoding="utf-8")))
    made = {f"conversations.{group}.{key}" for group, keys in (
        ("view", ("all", "unassigned", "mine")), ("kind", tuple(k.value for k in ThreadKind)),
        ("state", ("open", "done")),
        ("done", ("assigned", "answered", "queued", "undelivered", "noted", "done", "booked",
                  "reopened")),
        ("done_list", ("assigned", "answered", "queued", "undelivered", "noted", "done", "booked",
                       "reopened"))) for key in keys}
    made |= {f"conversations.outcome.{o}" for outs in threads.OUTCOMES.values() for o in outs}
    made |= {"threads.refused.done", "threads.refused.outcome", "nav.inbox"}
    for lang in ("zh_CN", "en"):
        assert used | made <= set(strings[lang]), (used | made) - set(strings[lang])


async def test_today_shows_conversations_waiting_and_past_their_deadline(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    await asks(env, driver, "请问能开发票吗？")  # due 12:00
    await add_staff("boss", "supervisor")
    http = await signed_in(env.base, "boss")
    async with http:
        _, body = await get(http, f"{env.base}/")
        assert re.search(r'id="conversations-waiting"><b>1<', body)
        assert re.search(r'id="conversations-breached"><b>0<', body)
        env.clock.set(local(2026, 11, 3, 12, 1))
        _, body = await get(http, f"{env.base}/")
        assert re.search(r'id="conversations-breached"><b>1<', body)
    await add_staff("mkt", "marketing")
    http = await signed_in(env.base, "mkt")
    async with http:
        _, body = await get(http, f"{env.base}/")
        assert 'id="conversations"' not in body  # marketing does not work conversations


async def test_a_photo_sent_from_the_console_reaches_the_owner_and_the_topic(
        env: ConsoleEnv, tmp_path: Path) -> None:
    from bot.sandbox.emulator import _TINY_JPEG

    driver = await owner(env, tmp_path)
    thread = await asks(env, driver, "胎压灯在哪里看？")
    await add_staff("wang", "agent", name="王客服", telegram_id=AGENT_TG)
    topic = group(env).topic_id(TOPIC)
    http = await signed_in(env.base, "wang")

    async def send(photo: bytes, text: str, filename: str = "tpms.jpg") -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("_csrf", token)
        form.add_field("text", text)
        form.add_field("photo", photo, filename=filename, content_type="image/jpeg")
        async with http.post(f"{env.base}/inbox/{thread.id}/answer", data=form,
                             allow_redirects=False) as r:
            return r.status, await r.text()

    async with http:
        token = await csrf(http, f"{env.base}/inbox/{thread.id}")
        status, body = await send(b"GIF89a not a photo", "看这里")
        assert status == 422 and "JPEG or PNG" in body and "看这里" in body  # kept
        assert driver.bot_media() == []
        status, _ = await send(_TINY_JPEG, "仪表盘左下角这个图标")
        assert status == 303
    kind, _, caption = driver.bot_media()[-1]
    assert (kind, caption) == ("photo", f"仪表盘左下角这个图标\n\n{SIGNATURE}")
    mirrored = group(env).bot_media(topic)[-1]
    assert (
        mirrored[0] == "photo" and mirrored[2] == "✉️ 王客服（控制台）→ 车主：\n仪表盘左下角这个图标"
    )
    row = await ThreadMessage.get(thread_id=thread.id, direction="out")
    assert row.relayed_at is not None and row.media and row.upload is None  # bytes let go


async def test_an_answer_written_in_the_topic_shows_on_the_console(
        env: ConsoleEnv, tmp_path: Path) -> None:
    driver = await owner(env, tmp_path)
    thread = await asks(env, driver, "保养大概要多久？")
    await add_staff("wang", "agent", name="王客服", telegram_id=AGENT_TG)
    topic = group(env).topic_id(TOPIC)
    group(env).send_text(AGENT_TG, "一般一个半小时左右。", topic)
    await env.poll()
    assert driver.bot_texts()[-1] == f"一般一个半小时左右。\n\n{SIGNATURE}"
    http = await signed_in(env.base, "wang")
    async with http:
        _, body = await get(http, f"{env.base}/inbox/{thread.id}")
    assert "一般一个半小时左右。" in body and "王客服" in body
    assert (await Thread.get(id=thread.id)).assignee_id is not None  # answering took it
