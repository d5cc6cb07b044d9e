"""Find an owner, open the file, correct the phone in the browser."""

from __future__ import annotations

from typing import Any

from db.models import AuditLog, Customer
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_console_customers import seed


async def test_search_open_and_edit_a_customer(console: ConsoleEnv, page: Any) -> None:
    people = await seed()
    await add_staff("sup", "supervisor")
    await sign_in(page, console.base, "sup")
    await page.goto(f"{console.base}/customers")
    await page.fill("input[name=q]", "粤A12345")
    await page.press("input[name=q]", "Enter")
    await page.wait_for_selector("#customers")
    await screenshot(page, "customers")
    await page.click("#customers a:has-text('张伟')")
    await page.wait_for_selector("#vehicles")
    assert "LSVAU2180T0000011" in await page.inner_text("#vehicles")
    await page.fill("#contact-form input[name=phone]", "137 1111 2222")
    await page.click("#contact-form button[type=submit]")
    await page.wait_for_selector("#notice")
    assert "+8613711112222" in await page.inner_text("#audit")
    await screenshot(page, "customer")
    assert (await Customer.get(id=people["zhang"].id)).phone == "+8613711112222"
    assert await AuditLog.filter(action="customer.edit").count() == 1
