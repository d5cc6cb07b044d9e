"""Upload a deliveries CSV through the browser's file input and read the result table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from db.models import Vehicle
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_console_imports import FIVE_ROWS, deliveries_csv


async def test_upload_a_csv_and_see_the_rows(console: ConsoleEnv, page: Any,
                                             tmp_path: Path) -> None:
    await add_staff("it", "manager")
    path = tmp_path / "deliveries.csv"
    path.write_bytes(deliveries_csv(FIVE_ROWS))
    await sign_in(page, console.base, "it")
    await page.click("#menu a[href='/imports']")
    await page.select_option("select[name=what]", "deliveries")
    await page.set_input_files("input[name=file]", str(path))
    await page.click("#upload button[type=submit]")
    await page.wait_for_selector("#result")
    assert await page.inner_text("#count-created") == "3"
    assert await page.inner_text("#count-failed") == "2"
    rows = await page.locator("#errors tbody tr").all_inner_texts()
    assert [r.split("\t")[:2] for r in rows] == [["3", "phone"], ["4", "vin"]]
    assert "deliveries.csv" in await page.inner_text("#history")
    assert await Vehicle.all().count() == 3
    await screenshot(page, "imports")
