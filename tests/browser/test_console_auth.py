"""Sign-in, wrong password, lock, sign-out, roles and CSRF, in a real Chromium."""

from __future__ import annotations

from typing import Any

from db.models import Staff
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in


async def test_sign_in_shows_today_and_sign_out_ends_the_session(console: ConsoleEnv,
                                                                 page: Any) -> None:
    await add_staff("wang", "manager", name="王经理")
    await page.goto(f"{console.base}/")
    assert page.url.startswith(f"{console.base}/login")  # not signed in: to the sign-in page
    await sign_in(page, console.base, "wang")
    await page.wait_for_selector("#outbox")
    assert page.url == f"{console.base}/"
    assert "王经理" in await page.inner_text("header")
    assert await page.is_visible("#menu a[href='/staff']") is False  # a manager: no staff page
    assert await page.is_visible("#menu a[href='/']")
    await screenshot(page, "today")
    await page.click("#sign-out")
    await page.wait_for_selector("input[name=login]")
    await page.goto(f"{console.base}/")
    assert page.url.startswith(f"{console.base}/login")


async def test_wrong_password_then_lock_after_repeated_failures(console: ConsoleEnv,
                                                                page: Any) -> None:
    await add_staff("li", "agent")
    await sign_in(page, console.base, "li", "wrong password!")
    assert "Wrong login or password" in await page.inner_text("#login-error")
    await sign_in(page, console.base, "nobody", "whatever")  # unknown login: same answer
    assert "Wrong login or password" in await page.inner_text("#login-error")
    for _ in range(2):  # the fixture locks after 3 failures
        await sign_in(page, console.base, "li", "wrong again")
    assert "locked" in await page.inner_text("#login-error")
    await sign_in(page, console.base, "li")  # even the right password is refused now
    assert "locked" in await page.inner_text("#login-error")
    staff = await Staff.get(login="li")
    assert staff.locked_until is not None
    await screenshot(page, "login-locked")
    console.clock.advance(minutes=16)  # the lock lifts by itself
    await sign_in(page, console.base, "li")
    await page.wait_for_selector("#outbox")


async def test_agent_gets_403_on_an_admin_page(console: ConsoleEnv, page: Any) -> None:
    await add_staff("zhao", "agent")
    await sign_in(page, console.base, "zhao")
    await page.wait_for_selector("#outbox")
    response = await page.goto(f"{console.base}/staff")
    assert response is not None and response.status == 403
    assert "Nothing was changed" in await page.inner_text("#error-message")


async def test_a_form_posted_without_its_csrf_token_is_refused(console: ConsoleEnv,
                                                               page: Any) -> None:
    await add_staff("qian", "manager", language="en")
    await sign_in(page, console.base, "qian")
    await page.wait_for_selector("#outbox")
    # The language form, with its hidden token removed before submitting.
    await page.evaluate("document.querySelector('form[action=\"/me/language\"] "
                        "input[name=_csrf]').remove()")
    await page.select_option("select[name=language]", "zh_CN")
    await page.wait_for_selector("#error-message")
    assert "CSRF" in await page.inner_text("#error-message")
    assert (await Staff.get(login="qian")).language == "en"  # nothing changed
    # With the token, the same form works and the interface switches to Chinese.
    await page.goto(f"{console.base}/")
    await page.select_option("select[name=language]", "zh_CN")
    await page.wait_for_selector("text=退出登录")
    assert (await Staff.get(login="qian")).language == "zh_CN"


async def test_phone_width_has_a_menu(console: ConsoleEnv, browser: Any) -> None:
    await add_staff("sun", "supervisor")
    context = await browser.new_context(viewport={"width": 375, "height": 740},
                                        is_mobile=True, has_touch=True)
    page = await context.new_page()
    try:
        await sign_in(page, console.base, "sun")
        await page.wait_for_selector("#outbox")
        assert not await page.is_visible("#menu a[href='/']")  # folded away
        await page.click(".menu-toggle")
        assert await page.is_visible("#menu a[href='/']")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # nothing wider than the phone
        await screenshot(page, "today-phone")
    finally:
        await context.close()
