"""The Reports page in Chromium: its server-drawn charts for a seeded month, and an agent's
CSV export (downloaded through the browser) holding only their own customers."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_console_reports import seed


async def test_reports_page_shows_its_charts_for_a_seeded_month(console: ConsoleEnv,
                                                                page: Any) -> None:
    await seed()  # November 2026: scores 3, 9 (李娜), 10 (赵敏), 7 (王强); two complaints
    await add_staff("boss", "manager", name="王经理")
    await sign_in(page, console.base, "boss")
    await page.wait_for_selector("#outbox")
    await page.click("nav >> text=Reports")
    await page.wait_for_selector("#report-filters")
    await page.select_option("#report-kind", "month")
    assert await page.is_hidden("input[name=week]")  # only the month field for a month
    await page.fill("input[name=month]", "2026-11")
    await page.click("#report-filters button[type=submit]")
    await page.wait_for_selector("#chart-distribution")
    assert "month=2026-11" in page.url

    # score distribution: ten bars, the values in their titles
    bars = page.locator("#chart-distribution rect.bar")
    assert await bars.count() == 10
    titles = await page.locator("#chart-distribution rect.bar > title").all_text_contents()
    assert titles == [f"Score {n}: {1 if n in (3, 7, 9, 10) else 0}" for n in range(1, 11)]
    heights = [float(await bars.nth(n - 1).get_attribute("height")) for n in (1, 3, 10)]
    assert heights[0] == 0 and heights[1] > 0 and heights[1] == heights[2]
    # score trend: six months, one point (only November has scores)
    assert await page.locator("#chart-trend circle.point").count() == 1
    point = await page.locator("#chart-trend circle.point > title").text_content()
    assert point == "2026-11: average 7.25 (4 scores)"
    labels = await page.locator("#chart-trend text.label").all_text_contents()
    assert labels[0] == "2026-06" and labels[-1] == "2026-11"
    # low scores by category: six categories and "(no category)"; one "charges"
    cats = await page.locator("#chart-categories rect.bar > title").all_text_contents()
    assert len(cats) == 7 and "Charges: 1" in cats and "Timeliness: 0" in cats
    # deadline compliance: one complaint on time, one breached
    segments = await page.locator("#chart-deadlines rect.segment > title").all_text_contents()
    assert segments == ["On time: 1 of 2", "Breached: 1 of 2"]
    # the charts are drawn at a real size and carry accessible names
    box = await page.locator("#chart-distribution").bounding_box()
    assert box is not None and box["width"] > 250 and box["height"] > 80
    assert await page.get_attribute("#chart-trend", "role") == "img"
    # the KPI table explains each figure
    formula = page.locator("tr[data-key=followup_rate] .formula")
    assert "÷" in (await formula.get_attribute("title") or "")
    assert await page.inner_text("tr[data-key=average] td") == "7.25"
    await screenshot(page, "reports")

    # on a phone the charts shrink with the page instead of overflowing it
    await page.set_viewport_size({"width": 375, "height": 800})
    box = await page.locator("#chart-distribution").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    await screenshot(page, "reports-phone")


async def test_an_agents_csv_export_holds_only_their_customers(console: ConsoleEnv,
                                                               page: Any) -> None:
    await seed()
    await sign_in(page, console.base, "zhao")  # agent 赵敏: one owner of their own, 刘洋
    await page.wait_for_selector("#outbox")
    await page.goto(f"{console.base}/reports?kind=month&month=2026-11")
    assert await page.locator("#report-advisor").count() == 0  # no other advisors to pick
    async with page.expect_download() as info:
        await page.click("#export-scores")
    download = await info.value
    assert download.suggested_filename == "carebot-scores-2026-11.csv"
    raw = Path(await download.path()).read_bytes()
    assert raw.startswith("\ufeff".encode())  # Excel reads the Chinese names
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Answered at", "Owner", "Phone"]
    assert [r[1] for r in rows[1:]] == ["刘洋"]
    assert rows[1][2] == "+8613800000003" and rows[1][7] == "10"

    async with page.expect_download() as info:
        await page.click("#export-kpi")
    download = await info.value
    rows = list(csv.reader(io.StringIO(
        Path(await download.path()).read_bytes().decode("utf-8-sig"))))
    assert [r[3] for r in rows[1:]] == ["赵敏"]  # their own row, no dealership, no others
