"""The console's Campaigns pages over real HTTP (aiohttp client), on SQLite and PostgreSQL:
who may open them, the live count and preview endpoints, the editor's validation (errors
next to their field, nothing typed lost), the 14-day event rule, test-send, CSRF on every
action, and the results page with its server-drawn charts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.campaigns import audiences, policy, promotions
from bot.campaigns.content import TEXT_CAP
from bot.clock import FakeClock
from bot.web.console import access
from db.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    Customer,
    StaffRole,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in

ROLES = [r.value for r in StaffRole]
UID = 810000
MESSAGE = "{{ customer.name }}您好，{{ vehicle.model }}双十一保养特惠！"


@dataclass
class Site:
    base: str
    carebot: Any
    emu: Any
    clock: FakeClock


@pytest_asyncio.fixture
async def site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Site]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield Site(f"http://127.0.0.1:{settings.web_port}", carebot, emulator, clock)
    finally:
        await carebot.stop()


async def seed(site: Site) -> list[Customer]:
    """Five owners of a 星辰 S7 (four linked with consent, one without consent) and two of
    a 星辰 S9 (linked, consenting, one English-speaking)."""
    owners = []
    plan = [("星辰 S7", True, "zh_CN")] * 4 + [("星辰 S7", False, "zh_CN"),
                                               ("星辰 S9", True, "zh_CN"), ("星辰 S9", True, "en")]
    for i, (model, consent, lang) in enumerate(plan):
        uid = UID + i
        site.emu.user(uid, first_name=f"车主{i}")
        customer = await Customer.create(
            name=f"车主{i}", phone=f"+8613900{i:06d}", link_token=f"tok{i}", language=lang,
            telegram_user_id=uid, telegram_chat_id=uid, marketing_consent=consent)
        await Vehicle.create(vin=f"LSVAU2180N{i:07d}", model=model, customer_id=customer.id,
                             plate=f"粤A{i:05d}", delivered_at=site.clock.now() - timedelta(
                                 days=30 * (i + 1)))
        owners.append(customer)
    return owners


async def draft(site: Site, **kw: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "双十一保养", "messages": {"zh_CN": MESSAGE},
        "buttons": [{"kind": "interested"}], "audience": {"models": ["星辰 S7"]},
        "now": site.clock.now(), "dealer": {"name": "星辰汽车", "phone": "020-88886666"},
    }
    values.update(kw)
    return await promotions.create_campaign(**values)


def editor_form(token: str, **fields: Any) -> aiohttp.FormData:
    """The editor's fields as the browser posts them (lists for the multi-choice ones)."""
    values: dict[str, Any] = {
        "name": "双十一保养", "marketer": "王芳", "message_zh_CN": MESSAGE, "message_en": "",
        "button1_kind": "interested", "button1_label": "", "button1_url": "",
        "button2_kind": "", "button2_label": "", "button2_url": "",
        "button3_kind": "", "button3_label": "", "button3_url": "",
        "models": ["星辰 S7"], "delivered_from": "", "delivered_to": "",
        "last_visit_after": "", "last_visit_before": "", "min_visits": "",
        "no_visit_months": "", "insurance_within_days": "", "score_min": "", "score_max": "",
        "open_ticket": "", "tags": "", "send_at": "", "event_date": "", "force_reason": "",
        "action": "save", "_csrf": token,
    }
    values.update(fields)
    form = aiohttp.FormData()
    for key, value in values.items():
        for item in (value if isinstance(value, list) else [value]):
            form.add_field(key, str(item))
    return form


def field_error(page: str, name: str) -> str:
    m = re.search(rf'id="err-{re.escape(name)}">([^<]*)<', page)
    assert m, f"no error slot for {name}"
    return unescape(m.group(1))


# --------------------------------------------------------------------------- access


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_opens_the_campaign_pages_only_if_it_may(site: Site, role: str) -> None:
    staff = await add_staff(f"user-{role}", role)
    campaign = await draft(site)
    allowed = access.can(staff, access.CAMPAIGNS)
    assert allowed == (role in ("marketing", "admin"))
    http = await signed_in(site.base, staff.login)
    async with http:
        for path in ("/campaigns", "/campaigns/new", f"/campaigns/{campaign.id}",
                     f"/campaigns/{campaign.id}/edit"):
            async with http.get(f"{site.base}{path}", allow_redirects=False) as r:
                assert r.status == (200 if allowed else 403), (role, path, r.status)
        token = await csrf(http, f"{site.base}/")
        async with http.post(f"{site.base}/campaigns/count",
                             data={"models": "星辰 S7", "_csrf": token}) as r:
            assert r.status == (200 if allowed else 403), (role, r.status)
        if not allowed:  # a refused action changes nothing
            async with http.post(f"{site.base}/campaigns/{campaign.id}/cancel",
                                 data={"_csrf": token}) as r:
                assert r.status == 403
            async with http.post(f"{site.base}/campaigns/new",
                                 data=editor_form(token, name="偷偷建的")) as r:
                assert r.status == 403
            assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.DRAFT
            assert await Campaign.all().count() == 1


async def test_signed_out_visitors_are_sent_to_sign_in(site: Site) -> None:
    async with aiohttp.ClientSession() as http, http.get(
            f"{site.base}/campaigns", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/login?next=")


async def test_the_list_pages_by_fifty_and_shows_progress(site: Site) -> None:
    await add_staff("mk", "marketing")
    now = site.clock.now()
    await Campaign.bulk_create([Campaign(name=f"活动{i:02d}", messages={"zh_CN": "x"},
                                         created_at=now, marketer="王芳") for i in range(55)])
    http = await signed_in(site.base, "mk")
    async with http:
        async with http.get(f"{site.base}/campaigns") as r:
            page = await r.text()
        assert page.count('<tr data-id=') == 50
        assert "活动54" in page and "活动04" not in page  # newest first
        assert "Page 1 of 2" in page
        async with http.get(f"{site.base}/campaigns?page=2") as r:
            page = await r.text()
        assert page.count('<tr data-id=') == 5 and "活动00" in page
        async with http.get(f"{site.base}/campaigns?status=done") as r:
            assert "No campaigns yet" in await r.text()


# --------------------------------------------------------------------------- live count


async def test_the_count_endpoint_counts_the_audience_and_excluded_by_reason(
        site: Site) -> None:
    await seed(site)
    await add_staff("mk", "marketing")
    http = await signed_in(site.base, "mk")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/new")
        headers = {"X-CSRF-Token": token}
        async with http.post(f"{site.base}/campaigns/count", headers=headers,
                             data={"models": "星辰 S7"}) as r:
            assert r.status == 200
            body = await r.json()
        assert body["targeted"] == 5 and body["eligible"] == 4
        assert body["excluded"]["no_consent"] == 1
        form = aiohttp.FormData()
        for key, value in (("models", "星辰 S7"), ("models", "星辰 S9"), ("languages", "en")):
            form.add_field(key, value)
        async with http.post(f"{site.base}/campaigns/count", headers=headers, data=form) as r:
            body = await r.json()
        assert (body["targeted"], body["eligible"]) == (1, 1)
        async with http.post(f"{site.base}/campaigns/count", headers=headers, data={}) as r:
            assert (await r.json())["targeted"] == 7  # no filter: every owner
        # A bad value is said next to its field, with nothing counted.
        async with http.post(f"{site.base}/campaigns/count", headers=headers,
                             data={"min_visits": "lots", "score_min": "8",
                                   "score_max": "3"}) as r:
            assert r.status == 422
            body = await r.json()
        assert body["errors"]["min_visits"] == "A whole number from 1 to 1000."
        assert "min_visits" in body["checked"] and "targeted" not in body
        async with http.post(f"{site.base}/campaigns/count", headers=headers,
                             data={"score_min": "8", "score_max": "3"}) as r:
            assert (await r.json())["errors"] == {
                "score_max": "The upper score is below the lower one."}
        # Without the CSRF header (or field) the endpoint refuses.
        async with http.post(f"{site.base}/campaigns/count", data={"models": "星辰 S7"}) as r:
            assert r.status == 403


async def test_the_preview_renders_for_three_real_owners_and_says_what_does_not_render(
        site: Site) -> None:
    owners = await seed(site)
    await add_staff("mk", "marketing")
    http = await signed_in(site.base, "mk")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/new")
        headers = {"X-CSRF-Token": token}
        data = {"models": "星辰 S7", "message_zh_CN": MESSAGE,
                "button1_kind": "url", "button1_label": "看看", "button1_url":
                "https://example.com/x?a=1&b=<2>"}
        async with http.post(f"{site.base}/campaigns/preview", headers=headers,
                             data=data) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert [s["name"] for s in body["samples"]] == [o.name for o in owners[:3]]
        first = body["samples"][0]
        assert first["text"].startswith("车主0您好，星辰 S7双十一保养特惠！")  # real car
        assert "退订" in first["text"] and "<" not in first["text"]  # as read, tags off
        assert first["buttons"] == ["看看", "退订"]
        # An unknown variable: the error sits next to the message, in plain words.
        async with http.post(f"{site.base}/campaigns/preview", headers=headers, data={
                **data, "message_zh_CN": "{{ customer.nickname }}您好"}) as r:
            assert r.status == 422
            body = await r.json()
        assert "nickname" in body["errors"]["message_zh_CN"]
        assert body["errors"]["message_zh_CN"].startswith("The message does not render")
        # Renders with the sample, not for a real owner without a car: said clearly.
        await Vehicle.filter(customer_id__in=[o.id for o in owners]).delete()
        async with http.post(f"{site.base}/campaigns/preview", headers=headers,
                             data={"message_zh_CN": MESSAGE}) as r:
            assert r.status == 422
            body = await r.json()
        assert body["error"].startswith("The message does not render for a real owner")
        # Nothing written yet: nothing to preview, and no error either.
        async with http.post(f"{site.base}/campaigns/preview", headers=headers,
                             data={"message_zh_CN": ""}) as r:
            assert r.status == 200 and (await r.json())["samples"] is None


# --------------------------------------------------------------------------- the editor


async def test_invalid_fields_are_shown_in_place_and_nothing_typed_is_lost(site: Site) -> None:
    await add_staff("mk", "marketing")
    http = await signed_in(site.base, "mk")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/new")
        form = editor_form(
            token, name="", message_zh_CN="亲爱的{{ customer.nick }}", message_en="Hi there",
            button2_kind="url", button2_label="详情", button2_url="http://insecure.example",
            button3_kind="interested", min_visits="0", tags="vip, 老客户",
            delivered_from="2026-05-01", send_at="tomorrow")
        async with http.post(f"{site.base}/campaigns/new", data=form) as r:
            assert r.status == 422
            page = await r.text()
    assert await Campaign.all().count() == 0  # nothing saved
    assert field_error(page, "name") == "Give the campaign a name."
    assert "nick" in field_error(page, "message_zh_CN")
    assert field_error(page, "button2_url") == "Give a link address starting with https://"
    assert field_error(page, "button3_kind").startswith("Interested and Book a visit")
    assert field_error(page, "min_visits") == "A whole number from 1 to 1000."
    assert field_error(page, "send_at").startswith("A date and time")
    assert field_error(page, "message_en") == ""
    # Everything typed is still there, valid or not.
    for typed in ('value="http://insecure.example"', 'value="详情"', 'value="vip, 老客户"',
                  'value="2026-05-01"', 'value="王芳"', ">Hi there</textarea>",
                  "亲爱的{{ customer.nick }}</textarea>", 'value="tomorrow"',
                  'name="min_visits" id="f-min_visits" value="0"'):
        assert typed in unescape(page), typed
    assert 'id="form-error"' in page


async def test_create_edit_and_schedule_with_the_event_rule(site: Site) -> None:
    await seed(site)
    await add_staff("mk", "marketing", name="王芳")
    http = await signed_in(site.base, "mk")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/new")
        async with http.post(f"{site.base}/campaigns/new", allow_redirects=False,
                             data=editor_form(token, send_at="2026-11-03T11:00",
                                              button2_kind="url", button2_label="详情",
                                              button2_url="https://example.com/offer")) as r:
            assert r.status == 303, await r.text()
            location = r.headers["Location"]
        campaign = await Campaign.get(name="双十一保养")
        assert location == f"/campaigns/{campaign.id}/edit?notice=created"
        assert campaign.status == CampaignStatus.DRAFT and campaign.marketer == "王芳"
        assert campaign.audience == {"models": ["星辰 S7"]}
        assert campaign.buttons == [{"kind": "interested"}, {
            "kind": "url", "label": {"zh_CN": "详情"}, "url": "https://example.com/offer"}]
        assert campaign.send_at is not None and campaign.send_at.hour == 3  # 11:00 local
        async with http.get(f"{site.base}{location}") as r:
            page = await r.text()
        assert "Saved as a draft." in page and 'value="2026-11-03T11:00"' in page
        assert 'value="星辰 S7" checked' in page

        # An event a week away: scheduling is refused without a reason, said in place,
        # and the draft keeps every edit.
        edit = f"{site.base}/campaigns/{campaign.id}/edit"
        async with http.post(edit, data=editor_form(
                token, name="双十一保养（改）", event_date="2026-11-10",
                send_at="2026-11-03T11:00", action="schedule")) as r:
            assert r.status == 422
            page = await r.text()
        assert field_error(page, "force_reason") == (
            "The event is on 2026-11-10: the message must go out by 2026-10-27 (14 days "
            "before). Send it earlier, or give a reason to send it anyway.")
        assert "The draft is saved" in page
        campaign = await Campaign.get(id=campaign.id)
        assert campaign.status == CampaignStatus.DRAFT and campaign.name == "双十一保养（改）"
        assert str(campaign.event_date) == "2026-11-10"

        # An event before the send time can't be forced.
        async with http.post(edit, data=editor_form(
                token, event_date="2026-11-02", force_reason="x", action="schedule")) as r:
            assert r.status == 422
            assert "is before the send time" in field_error(await r.text(), "event_date")

        # A send time already past is refused rather than sent at once.
        async with http.post(edit, data=editor_form(
                token, send_at="2026-11-02T10:00", action="schedule")) as r:
            assert r.status == 422
            assert field_error(await r.text(), "send_at").startswith("This time has passed")

        # With a reason it can be scheduled: first the final audience, then confirmed.
        async with http.post(edit, allow_redirects=False, data=editor_form(
                token, event_date="2026-11-10", send_at="2026-11-03T11:00",
                force_reason="厂家活动通知晚到", action="schedule")) as r:
            assert r.status == 200
            page = unescape(await r.text())
        assert 'data-eligible="4"' in page and "4 owners will get this message (5 match" in page
        assert '<tr data-reason="no_consent"><th scope="row">No consent to offers</th>' \
               '<td class="n">1</td>' in page
        assert 'id="confirm-no-text"' not in page  # every S7 owner reads Chinese
        assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.DRAFT
        async with http.post(edit, allow_redirects=False, data=editor_form(
                token, event_date="2026-11-10", send_at="2026-11-03T11:00",
                force_reason="厂家活动通知晚到", action="schedule", confirmed="1")) as r:
            assert r.status == 303
            assert r.headers["Location"] == f"/campaigns/{campaign.id}?done=scheduled"
        campaign = await Campaign.get(id=campaign.id)
        assert campaign.status == CampaignStatus.SCHEDULED
        assert campaign.force_reason == "厂家活动通知晚到"
        entry = await AuditLog.get(action="campaign.schedule")
        assert entry.target == f"campaign:{campaign.id}"
        assert entry.detail["force_reason"] == "厂家活动通知晚到"
        async with http.get(f"{site.base}/campaigns/{campaign.id}?done=scheduled") as r:
            page = await r.text()
        assert "厂家活动通知晚到" in page and "Scheduled." in page
        # A scheduled campaign is no longer edited in place.
        async with http.get(edit, allow_redirects=False) as r:
            assert r.status == 303
        async with http.post(edit, data=editor_form(token, name="晚了")) as r:
            assert r.status == 409
        assert (await Campaign.get(id=campaign.id)).name == "双十一保养"
        # Back to draft, then it can be edited again.
        async with http.post(f"{site.base}/campaigns/{campaign.id}/unschedule",
                             data={"_csrf": token}, allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == f"/campaigns/{campaign.id}/edit?notice=unschedule"
        campaign = await Campaign.get(id=campaign.id)
        assert campaign.status == CampaignStatus.DRAFT and campaign.force_reason == ""
        actions = set(await AuditLog.all().values_list("action", flat=True))
        assert {"campaign.create", "campaign.edit", "campaign.schedule",
                "campaign.unschedule"} <= actions


async def test_labels_given_per_language_survive_an_edit(site: Site) -> None:
    await add_staff("mk", "marketing")
    campaign = await draft(site, buttons=[{"kind": "book", "label": {
        "zh_CN": "马上预约", "en": "Book now"}}])
    http = await signed_in(site.base, "mk")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/{campaign.id}/edit")
        async with http.post(f"{site.base}/campaigns/{campaign.id}/edit", data=editor_form(
                token, button1_kind="book", button1_label="马上预约")) as r:
            assert r.status == 200
    assert (await Campaign.get(id=campaign.id)).buttons == [
        {"kind": "book", "label": {"zh_CN": "马上预约", "en": "Book now"}}]


async def test_test_send_goes_to_the_staff_members_own_chat(site: Site) -> None:
    await seed(site)
    await add_staff("mk", "marketing", name="王芳")
    await add_staff("mk2", "marketing", name="李娜", telegram_id=UID + 99)
    staff_chat = site.emu.user(UID + 99, first_name="李娜")
    campaign = await draft(site, messages={"zh_CN": MESSAGE, "en": "Hi {{ customer.name }}"})
    http = await signed_in(site.base, "mk")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/{campaign.id}/edit")
        async with http.post(f"{site.base}/campaigns/{campaign.id}/edit",
                             data=editor_form(token, action="test")) as r:
            assert r.status == 422
            page = await r.text()
        assert field_error(page, "test").startswith("Your account has no Telegram id")
    http = await signed_in(site.base, "mk2")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/{campaign.id}/edit")
        async with http.post(f"{site.base}/campaigns/{campaign.id}/edit",
                             data=editor_form(token, message_en="Hi {{ customer.name }}",
                                              action="test")) as r:
            assert r.status == 200
            assert "Test message sent to your Telegram chat." in await r.text()
    texts = staff_chat.bot_texts()
    assert len(texts) == 2  # one per language the campaign is written in
    assert texts[0].startswith("【测试发送】李娜您好，星辰 S7双十一保养特惠！")
    assert texts[1].startswith("[TEST] Hi 李娜")
    assert await AuditLog.filter(action="campaign.test").count() == 1


# --------------------------------------------------------------------------- actions


async def test_actions_need_the_csrf_token_and_follow_the_lifecycle(site: Site) -> None:
    await seed(site)
    await add_staff("boss", "admin")
    campaign = await draft(site)
    rules = policy.campaign_rules(site.carebot.settings)
    await promotions.schedule_campaign(campaign, send_at=site.clock.now(),
                                       now=site.clock.now(), rules=rules)
    await promotions.launch_due(now=site.clock.now(), rules=rules)
    url = f"{site.base}/campaigns/{campaign.id}"
    http = await signed_in(site.base, "boss")
    async with http:
        for data in ({}, {"_csrf": "forged"}):
            async with http.post(f"{url}/pause", data=data) as r:
                assert r.status == 403 and "CSRF" in await r.text()
        assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.SENDING
        token = await csrf(http, url)
        async with http.post(f"{url}/pause", data={"_csrf": token}) as r:
            assert r.status == 200 and r.url.query.get("done") == "pause"
            assert "Paused" in await r.text()
        assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.PAUSED
        assert await Touchpoint.filter(status=TouchpointStatus.HELD).count() == 4
        async with http.post(f"{url}/pause", data={"_csrf": token}) as r:
            assert r.status == 409  # already paused: said, nothing changes
            assert "Only a scheduled or sending campaign can be paused." in await r.text()
        async with http.post(f"{url}/resume", data={"_csrf": token}) as r:
            assert r.status == 200
        assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.SENDING
        async with http.post(f"{url}/cancel", data={"_csrf": token}) as r:
            assert r.status == 200
        assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.CANCELLED
        assert await Touchpoint.filter(status=TouchpointStatus.SKIPPED,
                                       status_reason="campaign cancelled").count() == 4
        async with http.get(url) as r:
            page = await r.text()
        assert 'id="pause"' not in page and 'id="cancel"' not in page
        async with http.get(f"{site.base}/campaigns/999") as r:
            assert r.status == 404
    assert [e.action for e in await AuditLog.all().order_by("id")] == [
        "campaign.pause", "campaign.resume", "campaign.cancel"]


async def test_results_page_shows_progress_numbers_and_svg_charts(site: Site) -> None:
    owners = await seed(site)
    await add_staff("mk", "marketing")
    campaign = await draft(site)
    rules = policy.campaign_rules(site.carebot.settings)
    await promotions.schedule_campaign(campaign, send_at=site.clock.now(),
                                       now=site.clock.now(), rules=rules)
    await promotions.launch_due(now=site.clock.now(), rules=rules)
    site.emu.set_blocked(owners[3].telegram_user_id, True)
    report = await site.carebot.dispatcher.dispatch_due()
    assert report.sent == 3
    await promotions.record_press(campaign.id, owners[0].id, "interested", site.clock.now())
    http = await signed_in(site.base, "mk")
    async with http:
        async with http.get(f"{site.base}/campaigns/{campaign.id}") as r:
            page = await r.text()
        async with http.get(f"{site.base}/campaigns") as r:
            listing = await r.text()
    assert re.search(r'id="stat-sent">3<', page)
    assert re.search(r'id="stat-unreachable">1<', page)
    assert re.search(r'id="stat-targeted">5<', page)
    assert re.search(r'<tr data-reason="no_consent">.*?<td class="n">1</td>', page)
    assert re.search(r'<tr data-button="interested">.*?<td class="n">1</td>', page)
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="chart-results"' in page
    assert 'data-key="sent" data-value="3"' in page
    assert 'data-key="interested" data-value="1"' in page
    assert 'id="chart-timeline"' in page and 'data-value="3"' in page
    assert "3 of 4 sent" in page
    assert "3 / 4" in listing


async def test_sends_over_time_buckets_by_the_span(site: Site) -> None:
    from bot.web.console.pages.campaign_detail import sends_over_time

    owners = await seed(site)
    campaign = await draft(site)
    start = site.clock.now()
    for i, owner in enumerate(owners[:4]):
        await Touchpoint.create(customer_id=owner.id, kind="campaign",
                                occasion_key=policy.occasion_key(campaign.id), priority=10,
                                due_at=start, status=TouchpointStatus.SENT,
                                sent_at=start + timedelta(minutes=25 * i))
    buckets = await sends_over_time(campaign.id, site.carebot.settings.tz)
    # 75 minutes: five-minute buckets, 10:00 .. 11:15 local, 16 of them
    assert len(buckets) == 16 and sum(n for _, n in buckets) == 4
    assert buckets[0] == ("10:00", 1) and buckets[-1] == ("11:15", 1)
    assert await sends_over_time(campaign.id + 1, site.carebot.settings.tz) == []


def test_the_interface_strings_exist_in_both_languages() -> None:
    import tomllib
    from pathlib import Path

    from bot.web.console.render import _flatten

    folder = Path(__file__).parent.parent / "bot" / "web" / "console" / "i18n"
    keys = [set(dict(_flatten(tomllib.loads((folder / lang / "campaigns.toml").read_text(
        encoding="utf-8")))).keys()) for lang in ("zh_CN", "en")]
    assert keys[0] == keys[1]
    used = set()
    templates = Path(__file__).parent.parent / "bot" / "web" / "console" / "templates"
    for path in [*templates.glob("campaign*.html"),
                 Path(__file__).parent.parent / "bot/web/console/pages/campaigns.py",
                 *(Path(__file__).parent.parent / "bot/web/console/pages").glob("campaign_*.py")]:
        used |= set(re.findall(r"""\bt\(['"](campaigns\.[a-z_.]+)['"]\s*[,)]""",
                               path.read_text(encoding="utf-8")))
    assert used and used <= keys[0], used - keys[0]
    # Keys made from names: every filter, status, exclusion reason, result and button.
    made = {f"campaigns.{kind}.{name}" for name in audiences.AUDIENCE_FIELDS
            for kind in ("field", "err")}
    made |= {f"campaigns.status.{s.value}" for s in CampaignStatus}
    made |= {f"campaigns.reason.{r}" for r in policy.EXCLUSION_REASONS}
    made |= {f"campaigns.button.{k}" for k in policy.BUTTON_KINDS}
    made |= {f"campaigns.press.{k}" for k in ("interested", "book", "unsubscribe")}
    made |= {f"campaigns.stat.{k}" for k in ("sent", "failed", "unreachable", "pending", "held")}
    made |= {f"campaigns.action.{a}" for a in ("pause", "resume", "cancel", "unschedule")}
    made |= {f"campaigns.err.cannot_{a}" for a in ("pause", "resume", "cancel", "unschedule")}
    made |= {f"campaigns.field.message_{lang}" for lang in ("zh_CN", "en")}
    assert made <= keys[0], made - keys[0]


async def test_the_confirmation_counts_owners_whose_language_has_no_text(site: Site) -> None:
    await seed(site)
    await add_staff("mk2", "marketing", name="王芳")
    campaign = await draft(site, audience={"models": ["星辰 S9"]})
    http = await signed_in(site.base, "mk2")
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/{campaign.id}/edit")
        async with http.post(f"{site.base}/campaigns/{campaign.id}/edit", data=editor_form(
                token, models=["星辰 S9"], action="schedule")) as r:
            assert r.status == 200
            page = unescape(await r.text())
    assert 'data-eligible="2"' in page
    assert 'id="confirm-no-text" data-n="1"' in page
    assert "1 of them read a language this campaign has no text in" in page
    # what the confirmation posts keeps the form as typed
    assert '<input type="hidden" name="models" value="星辰 S9">' in page
    assert '<input type="hidden" name="confirmed" value="1">' in page
    assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.DRAFT


@pytest.mark.parametrize(("role", "file_links"), [("marketing", False), ("admin", True)])
async def test_the_press_list_shows_who_pressed_with_csv(site: Site, role: str,
                                                         file_links: bool) -> None:
    owners = await seed(site)
    campaign = await draft(site)
    now = site.clock.now()
    await Campaign.filter(id=campaign.id).update(status=CampaignStatus.DONE, launched_at=now)
    await promotions.record_press(campaign.id, owners[2].id, "interested", now)
    await promotions.record_press(campaign.id, owners[0].id, "interested",
                                  now + timedelta(minutes=5))
    await promotions.record_press(campaign.id, owners[1].id, "unsubscribe", now)
    await add_staff(f"p-{role}", role)
    http = await signed_in(site.base, f"p-{role}")
    async with http:
        async with http.get(f"{site.base}/campaigns/{campaign.id}") as r:
            page = await r.text()
        assert f'href="/campaigns/{campaign.id}/presses/interested"' in page
        async with http.get(f"{site.base}/campaigns/{campaign.id}/presses/interested") as r:
            assert r.status == 200
            page = unescape(await r.text())
        # who pressed, first press first; not who pressed another button
        assert page.index("车主2") < page.index("车主0") and "车主1" not in page
        assert "+8613900000002" in page
        assert (f'href="/customers/{owners[2].id}"' in page) == file_links
        async with http.get(f"{site.base}/campaigns/{campaign.id}/presses/interested"
                            "?format=csv") as r:
            assert r.status == 200 and r.content_type == "text/csv"
            rows = (await r.text()).lstrip("\ufeff").splitlines()
        assert rows[0] == "Owner,Phone,Advisor,Pressed at"
        assert [row.split(",")[0] for row in rows[1:]] == ["车主2", "车主0"]
        async with http.get(f"{site.base}/campaigns/{campaign.id}/presses/nothing") as r:
            assert r.status == 404


async def test_an_agent_sees_no_press_list(site: Site) -> None:
    campaign = await draft(site)
    await add_staff("p-agent", "agent")
    http = await signed_in(site.base, "p-agent")
    async with http, http.get(f"{site.base}/campaigns/{campaign.id}/presses/interested",
                              allow_redirects=False) as r:
        assert r.status == 403


async def test_the_console_says_how_much_to_cut_and_keeps_the_text(site: Site) -> None:
    await add_staff("mk", "marketing")
    http = await signed_in(site.base, "mk")
    text = "好" * (TEXT_CAP + 12)
    async with http:
        token = await csrf(http, f"{site.base}/campaigns/new")
        form = editor_form(token, name="长文", message_zh_CN=text)
        async with http.post(f"{site.base}/campaigns/new", data=form) as r:
            assert r.status == 422
            page = await r.text()
    assert await Campaign.all().count() == 0
    assert field_error(page, "message_zh_CN") == (
        f"The text renders to {TEXT_CAP + 12} characters; a campaign takes "
        f"{TEXT_CAP} (Telegram's 4,096 less room for the how-to-stop footer). "
        "Shorten it by 12.")
    assert text in unescape(page)  # what was typed is kept
