"""Today's bookings in a real Chromium (issue 17): the day's list by slot, a booking entered
for a caller, one owner marked arrived and one no-show (who then gets the offer of a new
time in Telegram) — on a desktop and on a phone 390 px wide, where nothing scrolls sideways."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot import bookings
from bot.bookings import Job, booking_rules
from db.models import Booking, BookingKind, BookingStatus, Customer, Vehicle
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in
from tests.test_complaints import owner_with_car
from tests.test_walking_skeleton import local

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


async def fits(page: Any, width: int) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_todays_bookings_arrived_and_no_show(console: ConsoleEnv, browser: Any,
                                                   tmp_path: Path, device: str) -> None:
    env: Any = console
    zhang = await owner_with_car(env, tmp_path)  # 张伟 粤A12345, linked; 2026-11-03 10:00
    await owner_with_car(env, tmp_path, user_id=5002, phone="13900000002")  # 刘洋 粤B67890
    rules = booking_rules(console.settings)
    day = date(2026, 11, 4)
    for phone, kind, slot, note in (("+8613800138000", BookingKind.MAINTENANCE, "09:00", ""),
                                    ("+8613900000002", BookingKind.REPAIR, "13:30",
                                     "刹车有异响，踩下去咯吱响，麻烦师傅重点检查一下前轮")):
        customer = await Customer.get(phone=phone)
        vehicle = await Vehicle.get(customer_id=customer.id)
        made = await bookings.book_job(Job(customer.id, vehicle.id, kind, note=note),
                                       day=day, slot=slot, now=console.clock.now(), rules=rules)
        assert made.created
    console.clock.set(local(2026, 11, 4, 9, 30))  # the day itself
    await add_staff("wang", "agent", name="王客服")
    size = VIEWPORTS[device]
    context = await browser.new_context(viewport=size, locale="en-US",
                                        is_mobile=device == "phone",
                                        has_touch=device == "phone")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await sign_in(page, console.base, "wang")
        await page.wait_for_selector("#outbox")
        if device == "phone":
            await page.click(".menu-toggle")
        await page.click("#menu a[href='/bookings']")
        await page.wait_for_selector("#slot-0900")
        assert "Bookings, 2026-11-04" in await page.inner_text("h1")
        morning = await page.inner_text("#slot-0900")
        assert "09:00-12:00" in morning and "张伟" in morning and "Service 1/4" in morning
        afternoon = await page.inner_text("#slot-1330")
        assert "刘洋" in afternoon and "Repair 1/2" in afternoon and "刹车有异响" in afternoon
        assert "2" in await page.inner_text("#counts .tile:first-child")
        await fits(page, size["width"])
        await screenshot(page, f"bookings-{device}")

        zhang_card = page.locator("li.booking", has_text="张伟")
        await zhang_card.locator("button[data-mark=arrived]").click()
        await page.wait_for_selector("#notice >> text=Marked arrived")
        assert await page.locator("li.booking", has_text="张伟").get_attribute(
            "data-status") == "arrived"
        liu_card = page.locator("li.booking", has_text="刘洋")
        await liu_card.locator("button[data-mark=no_show]").click()
        await page.wait_for_selector("#notice >> text=Marked no-show")
        assert await page.locator("li.booking", has_text="刘洋").get_attribute(
            "data-status") == "no_show"
        counts = await page.inner_text("#counts")
        assert "Arrived" in counts and "No-show" in counts
        await fits(page, size["width"])
        await screenshot(page, f"bookings-marked-{device}")

        # a caller books for tomorrow from the same page
        await page.click("#add-box summary")
        await page.fill("#who", "粤A12345")
        await page.select_option("#kind", "inspection")
        await page.select_option("#day", "2026-11-05")
        await page.select_option("#slot", "13:30")
        await page.click("#add-booking")
        await page.wait_for_selector("#notice >> text=Booked")
        assert "Bookings, 2026-11-05" in await page.inner_text("h1")
        assert "张伟" in await page.inner_text("#slot-1330")
        await fits(page, size["width"])
    finally:
        await context.close()
    statuses = {b.kind: b.status for b in await Booking.filter(day=day)}
    assert statuses == {BookingKind.MAINTENANCE: BookingStatus.ARRIVED,
                        BookingKind.REPAIR: BookingStatus.NO_SHOW}
    assert (await console.tick()).sent >= 1  # the no-show's offer of a new time
    assert not any("没有见到您" in t for t in zhang.bot_texts())
