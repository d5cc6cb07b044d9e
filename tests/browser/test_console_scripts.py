"""An admin edits a template: a mistake is shown, the preview renders, saving takes effect."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in


async def test_admin_edits_a_template_with_preview(console: ConsoleEnv, page: Any) -> None:
    await add_staff("root", "admin")
    await sign_in(page, console.base, "root")
    await page.goto(f"{console.base}/scripts")
    await page.click("a[href='/scripts/zh_CN/holiday']")
    await page.fill("textarea[name=text]", "{{ customer.name }}您好，<b>{{ payload.name")
    await page.click("#preview-button")
    assert "syntax error" in await page.inner_text("#problems")
    await page.fill("textarea[name=text]",
                    "{{ customer.name }}您好！<b>{{ payload.name }}</b>快乐，{{ dealer.name }}敬上。")
    await page.click("#preview-button")
    assert await page.inner_text("#preview b") == "国庆节"  # the sample holiday, in bold
    await page.click("#save-button")
    assert "Saved" in await page.inner_text("#notice")
    assert "ours" in await page.inner_text("#origin")
    await screenshot(page, "scripts")
    text = console.carebot.services.scripts.render(
        "holiday", "zh_CN", customer={"name": "张三"}, vehicle=None,
        dealer={"name": "星辰汽车"}, payload={"name": "元旦"})
    assert text == "张三您好！<b>元旦</b>快乐，星辰汽车敬上。"
