"""The sandbox chat in a real Chromium: link as a demo owner, press a score button, see the reply.

The app is built as ``carebot sandbox`` builds it (``bot.sandbox.scene``: demo deliveries,
demo console accounts, the console hook) on a fake clock, and the bot receives updates by
polling the emulator over HTTP, as in the sandbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio

from bot.clock import FakeClock
from bot.sandbox.scene import DemoLogin, attach_sandbox, create_demo_staff, import_demo
from db.models import Customer, Score
from tests.browser.conftest import free_port, screenshot, sign_in
from tests.conftest import make_settings


@dataclass
class Demo:
    base: str
    clock: FakeClock
    logins: dict[str, DemoLogin]


@pytest_asyncio.fixture
async def demo(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Demo]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="test-session-secret")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await import_demo(None, clock, settings)
    logins = {d.login: d for d in await create_demo_staff()}
    attach_sandbox(carebot, emulator, clock)
    await carebot.start(serve_web=True, receive_updates=True, schedule=False)
    try:
        yield Demo(f"http://127.0.0.1:{settings.web_port}", clock, logins)
    finally:
        await carebot.stop()


async def test_link_as_a_demo_owner_press_a_score_button_see_the_reply(demo: Demo,
                                                                       page: Any) -> None:
    admin = demo.logins["admin"]
    await sign_in(page, demo.base, admin.login, admin.password)
    await page.wait_for_selector("#outbox")
    await page.click("nav a[href='/sandbox/chat']")
    await page.wait_for_selector("#phone")
    await page.click("#owners a[data-owner='1001']")  # 王芳
    await page.wait_for_selector("#phone[data-owner='1001']")
    assert "+8613800138000" in await page.inner_text("#owner-file")

    await page.click("#link-owner")  # her personal link: /start <token>
    await page.wait_for_selector(".bubble.bot:has-text('王芳您好')")
    await page.wait_for_selector("#owners a[data-owner='1001'] .badge.linked")

    await page.click(".time-steps button[data-step='3d']")  # to the 3-day survey
    await page.wait_for_selector("#sandbox-time:has-text('2026-11-06 10:00')")
    survey = page.locator(".bubble.bot").filter(has_text="打个分").last
    await survey.wait_for()
    labels = await survey.locator(".inline-button").all_inner_texts()
    assert labels[:10] == [str(n) for n in range(1, 11)]

    await survey.locator(".inline-button", has_text="9").first.click()
    await page.wait_for_selector(".bubble.bot:has-text('非常感谢您给出 9 分')")
    await screenshot(page, "sandbox-chat")

    customer = await Customer.get(phone="+8613800138000")
    assert customer.telegram_user_id == 1001
    assert [s.score for s in await Score.filter(customer_id=customer.id)] == [9]


async def test_the_agent_sees_only_her_demo_owners_and_the_contact_key_links(demo: Demo,
                                                                             page: Any) -> None:
    agent = demo.logins["agent"]  # 李娜: the advisor of 王芳 and Tom Lee, not of 陈强
    await sign_in(page, demo.base, agent.login, agent.password)
    await page.wait_for_selector("#outbox")
    await page.goto(f"{demo.base}/sandbox/chat?owner=1002")
    owners = await page.locator("#owners a").evaluate_all(
        "els => els.map(e => e.dataset.owner)")
    assert owners == ["1001", "1002"]
    await page.fill("#composer-text", "/start")
    await page.press("#composer-text", "Enter")
    await page.wait_for_selector("#reply-keyboard .key.contact")
    await page.click("#reply-keyboard .key.contact")  # shares his own number
    await page.wait_for_selector(".bubble.me:has-text('+8613900139000')")
    await page.wait_for_selector("#owners a[data-owner='1002'] .badge.linked")
    assert (await Customer.get(phone="+8613900139000")).telegram_user_id == 1002
