"""The campaign's confirmation and its press list on a phone (issue 18, points 2 and 5): a
Chinese-speaking marketer at 390 px schedules a campaign through the confirmation (the final
count, who is left out, and the warning for owners whose language has no text), then opens
the list of owners who pressed "我感兴趣". Each page shows no untranslated English and
nothing wider than the screen (the checks of test_every_page.py); screenshots are kept as
artifacts (artifacts/screenshots/phone-campaign-*.png)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.campaigns import promotions
from db.models import Campaign, CampaignStatus, Customer, Vehicle
from tests.browser.conftest import ConsoleEnv, add_staff, sign_in
from tests.browser.test_every_page import PHONE, check_page

UID = 830000


async def seed(env: ConsoleEnv) -> list[Customer]:
    """Three consenting owners of a 星辰 S9 (one reads English), one of a 星辰 S7."""
    owners = []
    plan = [("星辰 S9", "zh_CN"), ("星辰 S9", "zh_CN"), ("星辰 S9", "en"), ("星辰 S7", "zh_CN")]
    for i, (model, lang) in enumerate(plan):
        uid = UID + i
        env.emu.user(uid, first_name=f"车主{i}")
        owner = await Customer.create(
            name=f"车主{i}", phone=f"+8613600{i:06d}", link_token=f"ph{i}", language=lang,
            telegram_user_id=uid, telegram_chat_id=uid, marketing_consent=True,
            advisor="李顾问")
        await Vehicle.create(vin=f"LSVAU2180P{i:07d}", model=model, customer_id=owner.id,
                             plate=f"粤B{i:05d}",
                             delivered_at=env.clock.now() - timedelta(days=30 * (i + 1)))
        owners.append(owner)
    return owners


async def test_confirmation_and_press_list_fit_a_phone_in_chinese(console: ConsoleEnv,
                                                                   browser: Any) -> None:
    owners = await seed(console)
    campaign = await promotions.create_campaign(
        name="冬季保养", messages={"zh_CN": "{{ customer.name }}您好，冬季保养九折。"},
        buttons=[{"kind": "interested"}], audience={"models": ["星辰 S9"]},
        now=console.clock.now(), dealer={"name": "星辰汽车", "phone": "020-88886666"})
    await add_staff("wang", "marketing", name="王芳", language="zh_CN")
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    try:
        await sign_in(page, console.base, "wang")
        await page.wait_for_selector("#menu", state="attached")
        await page.goto(f"{console.base}/campaigns/{campaign.id}/edit")
        await page.fill("#f-send_at", "2026-11-05T10:00")
        await page.click("#schedule")
        await page.wait_for_selector("#confirm-count")
        assert await page.get_attribute("#confirm-count", "data-eligible") == "3"
        # the owner who reads English would get the Chinese text: said, with the count
        assert await page.get_attribute("#confirm-no-text", "data-n") == "1"
        assert "1" in await page.inner_text("#confirm-no-text")
        await check_page(page, "/campaigns/N/confirm", problems)
        await page.click("#confirm-schedule")
        await page.wait_for_selector("#campaign-status[data-status=scheduled]")

        await Campaign.filter(id=campaign.id).update(status=CampaignStatus.DONE,
                                                     launched_at=console.clock.now())
        await promotions.record_press(campaign.id, owners[1].id, "interested",
                                      console.clock.now())
        await promotions.record_press(campaign.id, owners[0].id, "interested",
                                      console.clock.now() + timedelta(minutes=3))
        await page.goto(f"{console.base}/campaigns/{campaign.id}/presses/interested")
        names = await page.locator("#press-list tbody tr th").all_inner_texts()
        assert names == ["车主1", "车主0"]  # who pressed, first press first
        assert await page.locator("#press-list a[href='tel:+8613600000001']").count() == 1
        await check_page(page, "/campaigns/N/presses/interested", problems)
    finally:
        await context.close()
    assert not problems, "\n".join(problems)
