"""The questionnaire on the call form in a real Chromium (issue 16 point 2): each question a
select, answered and saved on a desktop and on a phone 390 px wide (no sideways scroll)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import calls
from bot.intake import import_deliveries_file
from bot.journeys.plans import journey_rules
from db.models import Score, ScoreAnswer
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.browser.test_console_calls import VIEWPORTS, fits
from tests.test_walking_skeleton import VIN_A, delivery_row, local, write_csv

CHOICES = ["satisfied", "neutral", "", "dissatisfied", "satisfied", "satisfied", "satisfied"]


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_an_agent_records_the_questionnaire(console: ConsoleEnv, browser: Any,
                                                  tmp_path: Path, device: str) -> None:
    console.settings.survey_questionnaires = True  # the default outside the tests
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
        await page.goto(f"{console.base}/calls")
        await page.locator("a.call-link").first.click()
        await page.wait_for_selector("#script")
        selects = page.locator("select[name^='q_']")
        assert await selects.count() == 7 and await page.locator("#score").count() == 0
        await page.check("#outcome-reached")
        for index, choice in enumerate(CHOICES):
            await selects.nth(index).select_option(choice)
        await fits(page, size["width"])
        await screenshot(page, f"call-questionnaire-{device}")
        await page.click("#save-outcome")
        await page.wait_for_selector("#notice >> text=reached")
    finally:
        await context.close()
    answers = await ScoreAnswer.all()
    assert len(answers) == 7 and sum(a.skipped for a in answers) == 1
    assert {a.source for a in answers} == {"phone"}
    assert (await Score.get()).score == 8  # (10 + 6 + 2 + 10 + 10 + 2*10) / 7
