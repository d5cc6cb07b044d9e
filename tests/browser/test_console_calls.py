"""The call list in a real Chromium: an agent opens Calls, reads the phone script of an
owner who never linked Telegram, records "no answer", then "reached" with a score — on a
desktop and on a phone 390 px wide, where no page scrolls sideways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import calls
from bot.intake import import_deliveries_file
from bot.journeys.plans import journey_rules
from db.models import CallStatus, PhoneCall, Score
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_walking_skeleton import VIN_A, delivery_row, local, write_csv

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 800}}


async def fits(page: Any, width: int) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_an_agent_works_the_call_list(console: ConsoleEnv, browser: Any, tmp_path: Path,
                                            device: str) -> None:
    console.clock.set(local(2026, 11, 1, 12, 0))
    rows = [delivery_row(VIN_A, "13800138000", "2026-11-01 10:00")]
    await import_deliveries_file(write_csv(tmp_path / "d.csv", rows),
                                 rules=journey_rules(console.settings), now=console.clock.now())
    console.clock.set(local(2026, 11, 4, 10, 5))
    await calls.scan(console.clock.now(), calls.call_rules(console.settings))
    await add_staff("lina", "agent", name="李娜")
    size = VIEWPORTS[device]
    context = await browser.new_context(viewport=size, locale="en-US",
                                        is_mobile=device == "phone",
                                        has_touch=device == "phone")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await sign_in(page, console.base, "lina")
        await page.wait_for_selector("#outbox")
        if device == "phone":
            await page.click(".menu-toggle")
        await page.click("#menu a[href='/calls']")
        card = page.locator("li.call").first
        await card.wait_for()
        text = await card.inner_text()
        assert "张伟" in text and "3-day follow-up" in text and "not on Telegram" in text
        await fits(page, size["width"])
        await screenshot(page, f"calls-{device}")

        await card.locator("a.call-link").click()
        await page.wait_for_selector("#script")
        script = await page.inner_text("#script")
        assert "张伟您好" in script and "请问现在方便吗" in script and "李娜" in script
        assert "+8613800138000" in await page.inner_text("#phone")
        await fits(page, size["width"])
        await screenshot(page, f"call-{device}")

        await page.check("#outcome-no_answer")
        await page.click("#save-outcome")
        await page.wait_for_selector("#notice >> text=no answer")
        call = await PhoneCall.get()
        assert call.status == CallStatus.OPEN and call.attempts == 1
        assert call.due_at >= console.clock.now() + calls.MIN_GAP  # later, another time

        await page.click("a.call-link")
        await page.wait_for_selector("#attempts")
        assert "No answer" in await page.inner_text("#attempts")
        await page.check("#outcome-reached")
        await page.select_option("#score", "8")
        await page.fill("#comment", "一切都好，交车很顺利")
        await fits(page, size["width"])
        await page.click("#save-outcome")
        await page.wait_for_selector("#notice >> text=reached")
        assert await page.is_visible("#no-calls")
        await fits(page, size["width"])
    finally:
        await context.close()
    score = await Score.get()
    assert (score.score, score.source, score.comment) == (8, "phone", "一切都好，交车很顺利")
    assert (await PhoneCall.get()).status == CallStatus.REACHED
