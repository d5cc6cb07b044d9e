"""Tickets in a real Chromium: an owner complains in (emulated) Telegram, an agent claims
and answers in the console, and the answer is in the owner's Telegram chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from db.models import Ticket, TicketEvent, TicketState
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_complaints import complain, owner_with_car

ANSWER = "张先生您好，我们明天上午为您安排免费检查刹车。"


async def test_answer_a_ticket_in_the_console_reaches_the_owner(console: ConsoleEnv,
                                                                 page: Any, browser: Any,
                                                                 tmp_path: Path) -> None:
    env: Any = console
    owner = await owner_with_car(env, tmp_path)  # 张伟, linked by sharing his phone
    ticket = await complain(env, owner, "维修质量", "刹车有异响", "昨天刚保养完")
    assert ticket.number == "T-0001" and "T-0001" in owner.bot_texts()[-1]
    await add_staff("wang", "agent", name="王客服")

    await sign_in(page, console.base, "wang")
    await page.wait_for_selector("#outbox")
    await page.click("nav a[href='/tickets']")
    row = page.locator("tr[data-number='T-0001']")
    await row.wait_for()
    assert "张伟" in await row.inner_text() and "Repair quality" in await row.inner_text()
    await page.wait_for_function(  # the deadline counts down live (against the fake clock)
        "document.querySelector('time.countdown').textContent.includes('left')")
    await screenshot(page, "tickets")

    await row.locator("a", has_text="T-0001").click()
    await page.wait_for_selector("#conversation")
    assert "刹车有异响" in await page.inner_text("#complaint")
    assert await page.evaluate("document.activeElement.id") == "answer"  # ready to type

    await page.click("#claim")
    await page.wait_for_selector("#notice")
    assert "the owner was told" in await page.inner_text("#notice")
    assert "王客服" in owner.bot_texts()[-1]  # "being handled by 王客服"
    assert not await page.is_visible("#claim")

    console.clock.advance(minutes=15)
    await page.fill("#answer", ANSWER)
    await page.click("#send-answer")
    await page.wait_for_selector("#notice >> text=sent to the owner")
    assert ANSWER in await page.inner_text("#conversation")

    # the owner's Telegram chat has the answer, signed (sent at once: no tick needed)
    reply = owner.bot_texts()[-1]
    assert reply == f"{ANSWER}\n\n—— 王客服，星辰汽车"
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.ANSWERED
    assert ticket.first_answered_at == console.clock.now()
    kinds = [e.kind for e in await TicketEvent.filter(ticket_id=ticket.id).order_by("id")]
    assert kinds == ["opened", "claimed", "answered"]

    # the owner writes back: on the page, highlighted as the newest from the owner
    owner.send_text("好的，明天上午十点到")
    await console.poll()
    await page.reload()
    newest = page.locator("#newest-owner")
    assert "好的，明天上午十点到" in await newest.inner_text()
    assert "Newest from the owner" in await newest.inner_text()
    await screenshot(page, "ticket")

    # on a phone the same page fits the screen
    phone = await browser.new_context(viewport={"width": 375, "height": 740},
                                      is_mobile=True, has_touch=True)
    small = await phone.new_page()
    try:
        await sign_in(small, console.base, "wang")
        await small.wait_for_selector("#outbox")
        await small.goto(f"{console.base}/tickets/{ticket.id}")
        await small.wait_for_selector("#answer")
        assert await small.evaluate("document.documentElement.scrollWidth") <= 375
        await screenshot(small, "ticket-phone")
    finally:
        await phone.close()


async def test_escalate_and_resolve_forms_follow_the_rules(console: ConsoleEnv, page: Any,
                                                           tmp_path: Path) -> None:
    env: Any = console
    owner = await owner_with_car(env, tmp_path)
    ticket = await complain(env, owner, "收费", "收费比报价高")
    await add_staff("zhao", "supervisor", name="赵主管")
    await add_staff("lina", "advisor", name="李娜")  # the next level has someone
    await sign_in(page, console.base, "zhao")
    await page.wait_for_selector("#outbox")
    await page.goto(f"{console.base}/tickets/{ticket.id}")

    await page.click("#escalate-box summary")
    await page.click("#escalate")  # no reason: the browser asks for one, nothing is sent
    assert (await Ticket.get(id=ticket.id)).level == "agent"
    await page.fill("#escalate-form input[name=reason]", "车主要求主管回电")
    await page.click("#escalate")
    await page.wait_for_selector("#notice")
    assert "Escalated to Advisor" in await page.inner_text("#notice")
    assert "车主要求主管回电" in await page.inner_text("#history")

    await page.click("#resolve-box summary")
    await page.fill("#resolve-form textarea[name=resolution]", "已退还多收的 200 元")
    await page.fill("#resolve-form textarea[name=improvement]", "报价单由主管复核")
    await page.click("#resolve")
    await page.wait_for_selector("#notice >> text=Resolved")
    assert not await page.is_visible("#resolve-form")
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.state == TicketState.RESOLVED and ticket.resolution == "已退还多收的 200 元"
    assert any("已退还多收的 200 元" in t for t in owner.bot_texts())
