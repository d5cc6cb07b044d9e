"""The Reports page's workshop figures and targets in Chromium, at desktop and at phone
width (390 px), where the table becomes a stack of cards no wider than the screen."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_workshop_kpi import hand_made


async def test_workshop_figures_on_desktop_and_phone(console: ConsoleEnv, page: Any) -> None:
    await hand_made()
    await add_staff("boss", "manager", name="王经理")
    await sign_in(page, console.base, "boss")
    await page.wait_for_selector("#outbox")
    await page.goto(f"{console.base}/reports?kind=month&month=2026-11")
    await page.wait_for_selector("#workshop-figures")
    row = page.locator("tr[data-figure=repeat_repair_rate]")
    assert await row.locator("td.value").inner_text() == "20.0%"
    assert await row.locator("td.verdict .badge.warn").inner_text() == "missed"
    assert await page.locator("#workshop-figures tbody tr").count() == 10
    await screenshot(page, "reports-workshop")

    await page.set_viewport_size({"width": 390, "height": 800})
    await page.reload()
    await page.wait_for_selector("#workshop-figures")
    table = await page.locator("#workshop-figures").bounding_box()
    assert table is not None and table["x"] >= 0 and table["x"] + table["width"] <= 390
    # a card: each value under its column's name
    assert await row.locator("td.target").get_attribute("data-label") == "Target"
    wide = await page.evaluate(
        "() => [...document.querySelectorAll('#workshop *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).length")
    assert wide == 0
    await screenshot(page, "reports-workshop-phone")
