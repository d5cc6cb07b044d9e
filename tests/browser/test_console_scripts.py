"""An admin edits a template: a mistake is shown, the preview renders, saving takes effect."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in


async def test_admin_edits_a_template_with_preview(console: ConsoleEnv, page: Any) -> None:
    await add_staff("root", "admin")
    await sign_in(page, console.base, "root")
    await page.goto(f"{console.base}/scripts")
    await page.click("a[href='/scripts/zh_CN/holiday']")
    await page.fill("textarea[name=text]", "{{ customer.name }}您好，<b>{{ payload.name")
    await page.click("#preview-button")
    assert "syntax error" in await page.inner_text("#problems")
    await page.fill(
        "textarea[name=text]",
        "{{ customer.name }}您好！<b>{{ payload.name }}</b>快乐，{{ dealer.name }}敬上。",
    )
    await page.click("#preview-button")
    assert await page.inner_text("#preview b") == "国庆节"  # the sample holiday, in bold
    await page.click("#save-button")
    assert "Saved" in await page.inner_text("#notice")
    assert "edited" in await page.inner_text("#origin")
    await screenshot(page, "scripts")
    text = console.carebot.services.scripts.render(
        "holiday", "zh_CN", customer={"name": "张三"}, vehicle=None,
        dealer={"name": "星辰汽车"}, payload={"name": "元旦"})
    assert text == "张三您好！<b>元旦</b>快乐，星辰汽车敬上。"


VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 800}}


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_each_template_says_what_it_is_and_variables_come_from_a_list(
        console: ConsoleEnv, browser: Any, device: str) -> None:
    await add_staff("root", "admin", language="zh_CN")
    size = VIEWPORTS[device]
    context = await browser.new_context(viewport=size, locale="zh-CN",
                                        is_mobile=device == "phone",
                                        has_touch=device == "phone")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await sign_in(page, console.base, "root")
        await page.goto(f"{console.base}/scripts")
        row = await page.inner_text("#scripts")
        # a title, when it is sent and to whom, not only the code name
        assert "交车三天回访（满意度）" in row and "交车后第 3 天" in row and "车主" in row
        assert "三天回访电话话术" in row and "客服（电话话术）" in row
        assert await page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        await screenshot(page, f"scripts-list-{device}")
        await page.goto(f"{console.base}/scripts/zh_CN/holiday")
        assert "节日当天" in await page.inner_text("#about")
        await page.fill("textarea[name=text]", "")
        await page.click("button.var[data-insert='{{ customer.address }}']")
        await page.type("textarea[name=text]", "，节日快乐！")
        assert await page.input_value("textarea[name=text]") == \
            "{{ customer.address }}，节日快乐！"
        # the preview follows the typing, without pressing Preview
        await page.wait_for_function(
            "document.getElementById('preview').innerText.includes('王伟，节日快乐！')")
        assert await page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        await screenshot(page, f"script-editor-{device}")
    finally:
        await context.close()
