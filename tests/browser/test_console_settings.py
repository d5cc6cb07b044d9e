"""An admin changes a setting on the Settings page at desktop width and on a phone
(390 px): the value is used at once, the page fits the screen (issue 18 point 4)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.browser.test_every_page import OVERFLOW_JS, PHONE


@pytest.mark.parametrize("width", ["desktop", "phone"])
async def test_an_admin_changes_the_dealer_phone(console: ConsoleEnv, browser: Any,
                                                 width: str) -> None:
    await add_staff("zhou", "admin", name="周主管", language="zh_CN")
    viewport = PHONE if width == "phone" else {"width": 1280, "height": 900}
    context = await browser.new_context(viewport=viewport, locale="zh-CN")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await sign_in(page, console.base, "zhou")
        await page.goto(f"{console.base}/settings")
        layout = await page.evaluate(OVERFLOW_JS)
        assert layout["scroll"] <= layout["width"] and not layout["out"], layout
        phone = page.locator("input[name=dealer_phone]")
        await phone.fill("020-12345678")
        await page.locator("#form-dealership button.save").click()
        await page.wait_for_selector("#notice")
        assert "经销店电话" in await page.inner_text("#notice")
        assert await page.input_value("input[name=dealer_phone]") == "020-12345678"
        source = page.locator("#setting-dealer_phone .badge").first
        assert await source.inner_text() == "在本页修改"
        layout = await page.evaluate(OVERFLOW_JS)
        assert layout["scroll"] <= layout["width"] and not layout["out"], layout
        await screenshot(page, f"settings-{width}")
        assert console.carebot.services.settings.dealer_phone == "020-12345678"

        await page.locator("#setting-dealer_phone button[name=reset]").click()
        await page.wait_for_selector("#notice")
        assert await page.input_value("input[name=dealer_phone]") == "020-88886666"
        assert console.carebot.services.settings.dealer_phone == "020-88886666"
    finally:
        await context.close()
