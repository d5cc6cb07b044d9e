"""Build a campaign in Chromium: the live count and preview, test-send, the 14-day event
rule, schedule it, let the campaign tick and the dispatcher run on the FakeClock, and read
its results; the sent count on the page is what the owners' emulated chats received."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.handlers.marketing import campaign_tick
from db.models import Campaign, CampaignStatus, Customer, Vehicle
from tests.browser.conftest import ConsoleEnv, add_staff, screenshot, sign_in

UID = 820000
STAFF_TID = 829999
MESSAGE = "{{ customer.name }}您好，{{ vehicle.model }}双十一保养八折！"


async def seed(console: ConsoleEnv) -> list[Customer]:
    """Five owners of a 星辰 S7 (four linked with consent, one never consented) and two of a
    星辰 S9."""
    owners = []
    plan = [("星辰 S7", True)] * 4 + [("星辰 S7", False), ("星辰 S9", True), ("星辰 S9", True)]
    for i, (model, consent) in enumerate(plan):
        uid = UID + i
        console.emu.user(uid, first_name=f"车主{i}")
        owner = await Customer.create(
            name=f"车主{i}", phone=f"+8613700{i:06d}", link_token=f"b{i}",
            telegram_user_id=uid, telegram_chat_id=uid, marketing_consent=consent)
        await Vehicle.create(vin=f"LSVAU2180B{i:07d}", model=model, customer_id=owner.id,
                             delivered_at=console.clock.now() - timedelta(days=40 * (i + 1)))
        owners.append(owner)
    return owners


def received(console: ConsoleEnv, owner: Customer) -> list[str]:
    assert owner.telegram_user_id is not None
    return [t for t in console.emu.user(owner.telegram_user_id).bot_texts() if "双十一" in t]


async def test_build_schedule_and_follow_a_campaign(console: ConsoleEnv, page: Any) -> None:
    owners = await seed(console)
    await add_staff("fang", "marketing", name="王芳", telegram_id=STAFF_TID)
    staff_chat = console.emu.user(STAFF_TID, first_name="王芳")
    await sign_in(page, console.base, "fang")
    await page.wait_for_selector("#outbox")
    await page.goto(f"{console.base}/campaigns")
    await page.click("#new-campaign")
    await page.wait_for_selector("#campaign-form")

    # The message, two buttons and an audience of one car model.
    await page.fill("#f-name", "双十一保养特惠")
    await page.fill("#f-message_zh_CN", MESSAGE)
    await page.fill("#f-message_en", "Hello {{ customer.name }}: 20% off your service!")
    await page.select_option("#f-button1_kind", "interested")
    await page.select_option("#f-button2_kind", "url")
    await page.fill("#f-button2_label", "活动详情")
    await page.fill("#f-button2_url", "https://example.com/double11")
    await page.check("input[name=models][value='星辰 S7']")

    # The live count: five owners match, four will receive it, one never consented.
    await page.wait_for_function(
        "document.querySelector('#count-eligible').textContent === '4'")
    assert await page.inner_text("#count-targeted") == "5"
    assert await page.inner_text("#count-excluded tr[data-reason=no_consent] .n") == "1"
    # The live preview: the message as three real owners of the audience will read it.
    await page.wait_for_function(
        "document.querySelectorAll('#preview-samples .sample').length === 3")
    names = await page.locator("#preview-samples .sample-name").all_inner_texts()
    assert names == ["车主0", "车主1", "车主2"]
    bubble = await page.locator("#preview-samples .bubble").first.inner_text()
    assert bubble.startswith("车主0您好，星辰 S7双十一保养八折！") and "退订" in bubble
    buttons = await page.locator("#preview-samples .sample").first.locator(
        ".sample-buttons span").all_inner_texts()
    assert buttons == ["我感兴趣", "活动详情", "退订"]

    # An unknown variable is shown next to the message, then fixed.
    await page.fill("#f-message_zh_CN", "{{ customer.nickname }}您好，双十一")
    await page.wait_for_function(
        "document.querySelector('#err-message_zh_CN').textContent.includes('nickname')")
    assert "does not render" in await page.inner_text("#err-message_zh_CN")
    await page.fill("#f-message_zh_CN", MESSAGE)
    await page.wait_for_function(
        "document.querySelector('#err-message_zh_CN').textContent === ''"
        " && document.querySelectorAll('#preview-samples .sample').length === 3")
    # So is a filter with a value out of range; the count comes back once it is cleared.
    await page.fill("#f-min_visits", "0")
    await page.wait_for_function(
        "document.querySelector('#err-min_visits').textContent !== ''")
    await page.fill("#f-min_visits", "")
    await page.wait_for_function(
        "document.querySelector('#err-min_visits').textContent === ''"
        " && document.querySelector('#count-eligible').textContent === '4'")
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "campaign-editor")

    # Test-send to the marketer's own Telegram chat (saves the draft first).
    await page.click("#test-send")
    await page.wait_for_selector("#notice")
    assert "Test message sent" in await page.inner_text("#notice")
    tests = staff_chat.bot_texts()
    assert len(tests) == 2 and tests[0].startswith("【测试发送】王芳您好，星辰 S7双十一保养八折！")
    assert all(received(console, o) == [] for o in owners)  # owners got nothing yet

    # An event nine days away: refused without a reason, said next to the field, and
    # nothing typed is lost; with a reason it is scheduled.
    await page.fill("#f-send_at", "2026-11-03T11:00")
    await page.fill("#f-event_date", "2026-11-12")
    await page.click("#schedule")
    await page.wait_for_function(
        "document.querySelector('#err-force_reason').textContent !== ''")
    assert "must go out by 2026-10-29" in await page.inner_text("#err-force_reason")
    assert await page.input_value("#f-name") == "双十一保养特惠"
    assert await page.input_value("#f-button2_url") == "https://example.com/double11"
    assert await page.input_value("#f-send_at") == "2026-11-03T11:00"
    assert await page.is_checked("input[name=models][value='星辰 S7']")
    campaign = await Campaign.get(name="双十一保养特惠")
    assert campaign.status == CampaignStatus.DRAFT
    await page.fill("#f-force_reason", "厂家活动通知晚到")
    await page.click("#schedule")
    # first the final audience, who is left out and why; nothing scheduled yet
    await page.wait_for_selector("#confirm-count")
    eligible = await page.get_attribute("#confirm-count", "data-eligible")
    assert eligible is not None and int(eligible) > 0
    assert (await Campaign.get(name="双十一保养特惠")).status == CampaignStatus.DRAFT
    await screenshot(page, "campaign-confirm")
    await page.click("#confirm-schedule")
    await page.wait_for_selector("#campaign-status[data-status=scheduled]")
    assert "厂家活动通知晚到" in await page.inner_text("#force-reason")
    assert await page.inner_text("#send-at") == "2026-11-03 11:00"

    # Time passes the send time: the campaign tick launches it, the dispatcher sends it,
    # the next tick marks it done.
    await campaign_tick(console.carebot.services)
    assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.SCHEDULED
    console.clock.advance(hours=1, minutes=1)
    await campaign_tick(console.carebot.services)
    report = await console.tick()
    await campaign_tick(console.carebot.services)
    await page.goto(f"{console.base}/campaigns/{campaign.id}")
    await page.wait_for_selector("#campaign-status[data-status=done]")
    delivered = [o for o in owners if received(console, o)]
    assert len(delivered) == report.sent == 4
    assert all(len(received(console, o)) == 1 for o in delivered)
    assert int(await page.inner_text("#stat-sent")) == len(delivered)
    assert await page.inner_text("#stat-targeted") == "5"
    assert await page.inner_text("#excluded tr[data-reason=no_consent] .n") == "1"
    assert await page.locator("#chart-results rect[data-key=sent]").get_attribute(
        "data-value") == "4"
    assert await page.locator("#chart-timeline rect").count() >= 1
    await screenshot(page, "campaign")

    await page.goto(f"{console.base}/campaigns")
    row = page.locator(f"#campaigns tr[data-id='{campaign.id}']")
    assert "4 / 4" in await row.inner_text()
    await screenshot(page, "campaigns")


async def test_the_editor_fits_a_phone(console: ConsoleEnv, browser: Any) -> None:
    await seed(console)
    await add_staff("zhou", "admin", language="zh_CN")
    context = await browser.new_context(viewport={"width": 375, "height": 740},
                                        is_mobile=True, has_touch=True)
    page = await context.new_page()
    try:
        await sign_in(page, console.base, "zhou")
        await page.wait_for_selector("#outbox")
        await page.goto(f"{console.base}/campaigns/new")
        await page.check("input[name=models][value='星辰 S9']")
        await page.wait_for_function(
            "document.querySelector('#count-eligible').textContent === '2'")
        assert "位车主符合条件" in await page.inner_text("#audience-count")  # Chinese
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # nothing wider than the phone
        await screenshot(page, "campaign-editor-phone")
    finally:
        await context.close()
