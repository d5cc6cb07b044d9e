"""Issue 15, the templates: what a curious marketer or admin can make a template do.

Over real HTTP (the console, the API, /healthz on the same aiohttp app) and through the
Telegram emulator: a template sees no phone, a template that loops too long or builds a huge
text is refused at once while /healthz keeps answering, campaign HTML is checked at save,
and a full survey-and-campaign run logs ids, never an owner's phone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from jinja2 import TemplateError

from bot.campaigns import content, promotions
from bot.campaigns.policy import CampaignError
from bot.clock import FakeClock
from bot.templating import LimitedEnvironment, TemplateOverBudget, render
from bot.texts import Scripts
from db.models import Campaign, Customer, Vehicle
from tests.browser.conftest import add_staff, free_port
from tests.conftest import BotEnv, make_settings
from tests.test_campaigns import local, make_owners, new_campaign, start_campaign
from tests.test_console_access import csrf, signed_in
from tests.test_console_campaigns import Site, editor_form
from tests.test_survey import linked_owner, send_survey

AUTH = {"Authorization": "Bearer test-api-key"}
NESTED = "{% for i in range(7000) %}{% for j in range(7000) %}{% endfor %}{% endfor %}"
HUGE = "{{ 'x'*50000000 }}"
PHONES = [f"+8613900{i:06d}" for i in range(3)]
TOKENS = [f"secret-link-token-{i}" for i in range(3)]
# The template: every personal field, made optional so that the text still saves.
CURIOUS = ("{{ customer.name }} {{ customer.phone|default('') }} "
           "{{ customer.link_token|default('') }} {{ customer.birthday|default('') }} "
           "{{ vehicle.vin|default('') }} {{ customer.get('phone') }}")


@pytest_asyncio.fixture
async def site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Site]:
    """carebot's web app (console, API, /healthz) on a real port."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield Site(f"http://127.0.0.1:{settings.web_port}", carebot, emulator, clock)
    finally:
        await carebot.stop()


async def owners_with_secrets(site: Site) -> list[Customer]:
    """Three linked, consenting owners of a 星辰 S7, each with a birthday and a link token."""
    owners = []
    for i, (phone, token) in enumerate(zip(PHONES, TOKENS, strict=True)):
        site.emu.user(820000 + i, first_name=f"车主{i}")
        owner = await Customer.create(
            name=f"车主{i}", phone=phone, link_token=token, birthday=date(1985, 6, 1 + i),
            telegram_user_id=820000 + i, telegram_chat_id=820000 + i, marketing_consent=True)
        await Vehicle.create(vin=f"LSVAU2180N{i:07d}", model="星辰 S7", plate=f"粤A{i:05d}",
                             customer_id=owner.id)
        owners.append(owner)
    return owners


def assert_nothing_personal(text: str) -> None:
    for secret in (*PHONES, *(p[3:] for p in PHONES), *TOKENS, "1985-06-0", "LSVAU2180N"):
        assert secret not in text, f"{secret!r} shown"


async def healthz_while(base: str, work: Awaitable[Any]) -> tuple[Any, float, list[float]]:
    """Run ``work`` while /healthz is asked again and again; (its result, how long it took,
    each /healthz latency seen meanwhile)."""
    latencies: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                started = time.perf_counter()
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200
                latencies.append(time.perf_counter() - started)

    watcher = asyncio.create_task(probe())
    while not latencies:  # the probe is answering before the work starts
        await asyncio.sleep(0)
    started = time.perf_counter()
    try:
        result = await work
    finally:
        took = time.perf_counter() - started
        stop.set()
        await watcher
    return result, took, latencies


# --------------------------------------------------------------------------- 1: no phone


async def test_the_preview_of_customer_phone_shows_no_phone(site: Site) -> None:
    await owners_with_secrets(site)
    await add_staff("mk", "marketing")
    http = await signed_in(site.base, "mk")
    async with http, aiohttp.ClientSession() as api:
        token = await csrf(http, f"{site.base}/campaigns/new")
        # The console's live preview: the phone is not there to show; said in place.
        async with http.post(f"{site.base}/campaigns/preview", headers={"X-CSRF-Token": token},
                             data={"models": "星辰 S7",
                                   "message_zh_CN": "{{ customer.phone }}"}) as r:
            body = await r.text()
            assert r.status == 422
        assert_nothing_personal(body)
        assert "customer.phone is not available" in (await r.json())["errors"]["message_zh_CN"]
        # Made optional, the template saves, and its preview for real owners shows
        # their names and nothing personal (API and console alike).
        async with api.post(f"{site.base}/api/v1/campaigns", headers=AUTH, json={
                "name": "curious", "messages": {"zh_CN": CURIOUS},
                "audience": {"models": ["星辰 S7"]}}) as r:
            assert r.status == 201, await r.text()
            campaign_id = (await r.json())["id"]
        async with api.post(f"{site.base}/api/v1/campaigns/{campaign_id}/preview",
                            headers=AUTH) as r:
            assert r.status == 200
            body = await r.text()
        samples = (await r.json())["samples"]
        assert [s["text"].split()[0] for s in samples] == ["车主0", "车主1", "车主2"]
        assert_nothing_personal(body)
        async with http.post(f"{site.base}/campaigns/preview", headers={"X-CSRF-Token": token},
                             data={"models": "星辰 S7", "message_zh_CN": CURIOUS}) as r:
            assert r.status == 200
            body = await r.text()
        assert [s["text"].split()[0] for s in (await r.json())["samples"]] == \
            ["车主0", "车主1", "车主2"]
        assert_nothing_personal(body)
        # A campaign saved before these checks: its preview says why, and shows nothing.
        old = await Campaign.create(name="old", messages={"zh_CN": "{{ customer.phone }}"},
                                    audience={"models": ["星辰 S7"]},
                                    created_at=site.clock.now())
        async with api.post(f"{site.base}/api/v1/campaigns/{old.id}/preview",
                            headers=AUTH) as r:
            assert r.status == 422
            body = await r.text()
        assert "customer.phone is not available" in body
        assert_nothing_personal(body)


def test_a_script_sees_no_phone_link_token_or_vin(tmp_path: Path) -> None:
    """The scripts' context is whitelisted too, whoever passes the owner's row (the ticket
    notices do), and a payload loses its VIN."""
    (tmp_path / "zh_CN").mkdir()
    (tmp_path / "zh_CN" / "holiday.html").write_text(
        "{{ customer.name }} {{ vehicle.plate }} {{ payload.get('vin') }} "
        "{{ customer.phone|default('-') }} {{ customer.link_token|default('-') }}",
        encoding="utf-8")
    owner = Customer(name="车主0", phone=PHONES[0], link_token=TOKENS[0], language="zh_CN")
    car = Vehicle(vin="LSVAU2180N0000000", plate="粤A00000", model="星辰 S7")
    text = Scripts(tmp_path).render("holiday", "zh_CN", customer=owner, vehicle=car,
                                    dealer={"name": "星辰汽车"}, payload={"vin": car.vin})
    assert text == "车主0 粤A00000 None - -"
    with pytest.raises(TemplateError, match=r"customer.phone is not available"):
        render(LimitedEnvironment().from_string("{{ customer.phone }}"),
               content.sample_context({"name": "星辰汽车"}))


# --------------------------------------------------------------------------- 2: budget


async def test_nested_loops_are_refused_within_a_second_while_healthz_stays_fast(
        site: Site) -> None:
    await owners_with_secrets(site)
    await add_staff("mk", "marketing")
    await add_staff("root", "admin")
    marketer = await signed_in(site.base, "mk")
    admin = await signed_in(site.base, "root")
    async with marketer, admin, aiohttp.ClientSession() as api:
        token = await csrf(marketer, f"{site.base}/campaigns/new")
        admin_token = await csrf(admin, f"{site.base}/scripts/zh_CN/holiday")

        async def attempts() -> list[tuple[int, str]]:
            answers = []
            for post in (
                marketer.post(f"{site.base}/campaigns/preview", headers={"X-CSRF-Token": token},
                              data={"models": "星辰 S7", "message_zh_CN": NESTED}),
                marketer.post(f"{site.base}/campaigns/new",
                              data=editor_form(token, message_zh_CN=NESTED)),
                api.post(f"{site.base}/api/v1/campaigns", headers=AUTH,
                         json={"name": "loops", "messages": {"zh_CN": NESTED}}),
                admin.post(f"{site.base}/scripts/zh_CN/holiday",
                           data={"_csrf": admin_token, "action": "preview", "text": NESTED}),
            ):
                async with post as r:
                    answers.append((r.status, await r.text()))
            return answers

        answers, took, latencies = await healthz_while(site.base, attempts())
    assert took < 1.0, f"four refusals took {took:.2f} s"
    assert max(latencies) < 0.1, f"/healthz waited {max(latencies) * 1000:.0f} ms"
    assert [status for status, _ in answers] == [422, 422, 422, 422]
    for _, body in answers:
        assert "more than 20000 steps to render" in body, body[:500]
    assert await Campaign.all().count() == 0  # nothing saved


async def test_a_50_mb_text_is_refused_at_save(site: Site) -> None:
    await add_staff("mk", "marketing")
    http = await signed_in(site.base, "mk")
    async with http, aiohttp.ClientSession() as api:
        token = await csrf(http, f"{site.base}/campaigns/new")
        started = time.perf_counter()
        async with api.post(f"{site.base}/api/v1/campaigns", headers=AUTH,
                            json={"name": "huge", "messages": {"zh_CN": HUGE}}) as r:
            assert r.status == 422
            error = (await r.json())["error"]
        async with http.post(f"{site.base}/campaigns/new",
                             data=editor_form(token, message_zh_CN=HUGE)) as r:
            assert r.status == 422
            page = await r.text()
        took = time.perf_counter() - started
    assert "more than 16384 characters" in error and "make it smaller" in error
    assert "The message is refused" in page and HUGE.replace("'", "&#39;") in page  # kept
    assert took < 1.0
    assert await Campaign.all().count() == 0
    with pytest.raises(TemplateOverBudget, match="16384"):
        render(LimitedEnvironment().from_string(HUGE), {})


# --------------------------------------------------------------------------- 6: HTML


async def test_an_unclosed_tag_in_a_campaign_is_refused_at_save(site: Site) -> None:
    await add_staff("mk", "marketing")
    unclosed = "<b>{{ customer.name }}您好，双十一保养特惠"
    http = await signed_in(site.base, "mk")
    async with http, aiohttp.ClientSession() as api:
        async with api.post(f"{site.base}/api/v1/campaigns", headers=AUTH,
                            json={"name": "html", "messages": {"zh_CN": unclosed}}) as r:
            assert r.status == 422
            error = (await r.json())["error"]
        token = await csrf(http, f"{site.base}/campaigns/new")
        async with http.post(f"{site.base}/campaigns/new",
                             data=editor_form(token, message_zh_CN=unclosed)) as r:
            assert r.status == 422
            page = await r.text()
    assert error.startswith("messages.zh_CN: Telegram would refuse this message's HTML")
    assert "Close every tag you open" in error
    assert "Telegram would refuse this message&#39;s HTML" in page
    with pytest.raises(CampaignError, match="HTML"):  # the CLI's way in
        await promotions.create_campaign(name="cli", messages={"zh_CN": unclosed},
                                         now=site.clock.now(), dealer={"name": "x"})
    assert await Campaign.all().count() == 0
    # A tag opened only for owners without a car is caught too.
    with pytest.raises(CampaignError, match="HTML"):
        await promotions.create_campaign(
            name="cli", messages={"zh_CN": "{% if not vehicle %}<i>{% endif %}您好"},
            now=site.clock.now(), dealer={"name": "x"})


# --------------------------------------------------------------------------- 7: logs


@pytest_asyncio.fixture
async def staffed(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[BotEnv]:
    """carebot with a staff group (complaints and notices go there)."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, staff_chat_id=-1001000000077)
    emulator.group(-1001000000077, "客服中心", is_forum=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()


async def test_no_phone_reaches_the_log_of_a_survey_and_campaign_run(
        staffed: BotEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="db")
    env = staffed
    phone = "+8613800138000"
    # A survey: a low score, a category, a comment with the phone typed again.
    owner, customer, vehicle = await linked_owner(env, phone=phone)
    await send_survey(env, customer, vehicle)
    owner.press("2")
    await env.poll()
    owner.press("维修质量")
    await env.poll()
    owner.send_text(f"请打电话给我 {phone[3:]}")
    await env.poll()
    await env.tick()
    # A campaign to other owners; one presses Interested (staff are told, with the phone).
    env.clock.set(local(2026, 11, 3, 10, 0) + timedelta(days=1))
    [buyer] = await make_owners(env, 1)
    await start_campaign(env, await new_campaign(env))
    await env.tick()
    env.emu.user(buyer.telegram_user_id).press("我感兴趣")
    await env.poll()
    await env.carebot.services.dispatcher.dispatch_due()
    staff_texts = "\n".join(env.emu.group(-1001000000077, "客服中心").bot_texts())
    assert phone in staff_texts and buyer.phone in staff_texts  # staff see the phones
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("bot", "db")
            and not r.name.startswith("bot.sandbox")]  # the emulator is Telegram's side
    assert ours, "the run logged nothing of carebot's: the test would prove nothing"
    for record in ours:
        text = record.getMessage() + (record.exc_text or "")
        for secret in (phone, phone[3:], buyer.phone, buyer.phone[3:]):
            assert secret not in text, f"{record.name}: {text[:200]}"
