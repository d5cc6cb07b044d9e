"""The Inbox in a real Chromium: an owner asks in (emulated) Telegram, an agent opens the
Inbox, takes the conversation, picks a canned reply, sends it and marks it done — on a
desktop and on a phone 375 px wide, where no page scrolls sideways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from db.models import Thread, ThreadState
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_complaints import owner_with_car

GREETING = "张伟您好！我是星辰汽车的王客服，很高兴为您服务。请问有什么可以帮您？"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}


async def fits(page: Any, width: int) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_an_agent_works_the_inbox(console: ConsoleEnv, browser: Any, tmp_path: Path,
                                        device: str) -> None:
    env: Any = console
    owner = await owner_with_car(env, tmp_path)  # 张伟, 粤A12345
    owner.send_text("我的车蓝牙连不上手机，怎么办？")
    await console.poll()
    await add_staff("wang", "agent", name="王客服")
    size = VIEWPORTS[device]
    context = await browser.new_context(viewport=size, locale="en-US",
                                        is_mobile=device == "phone",
                                        has_touch=device == "phone")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await sign_in(page, console.base, "wang")
        await page.wait_for_selector("#outbox")
        if device == "phone":
            await page.click(".menu-toggle")
        await page.click("#menu a[href='/inbox']")
        row = page.locator("li.conv").first
        await row.wait_for()
        assert "张伟" in await row.inner_text() and "unread" in await row.get_attribute("class")
        assert "蓝牙连不上" in await row.inner_text()
        await fits(page, size["width"])
        await screenshot(page, f"inbox-{device}")

        await row.locator("a.conv-link").click()
        await page.wait_for_selector("#whole-chat")
        assert "我的车蓝牙连不上手机，怎么办？" in await page.inner_text("#whole-chat")
        await page.click("#take")
        await page.wait_for_selector("#notice")
        assert "王客服" in await page.inner_text("#assignee")

        await page.select_option("#canned", "greeting")  # fills the box, no reload
        assert await page.input_value("#answer") == GREETING
        await fits(page, size["width"])
        await screenshot(page, f"conversation-{device}")
        console.clock.advance(minutes=10)
        await page.click("#send-answer")
        await page.wait_for_selector("#notice >> text=Sent to the owner")
        assert owner.bot_texts()[-1] == f"{GREETING}\n\n—— 王客服，星辰汽车"
        assert GREETING in await page.inner_text("#whole-chat")

        await page.click("#done-box summary")
        await page.click("#mark-done")
        await page.wait_for_selector("#notice >> text=Marked done")
        assert await page.is_visible("#reopen")
        await fits(page, size["width"])

        await page.goto(f"{console.base}/canned")  # the library the picker offered
        assert "greeting" in await page.inner_text("#canned-replies")
        await fits(page, size["width"])
        await screenshot(page, f"canned-{device}")
    finally:
        await context.close()
    thread = await Thread.get(customer__telegram_user_id=5001)
    assert (thread.state, thread.outcome) == (ThreadState.DONE, "answered")
    assert thread.first_answered_at is not None and thread.read_at is not None
