"""The console's sandbox chat over real HTTP, on SQLite and PostgreSQL.

The app is built the way ``carebot sandbox`` builds it (``bot.sandbox.scene``: the demo
deliveries, the console hook with the demo owners) on a fake clock; the bot takes the
owners' updates with ``poll_once``. Outside the sandbox the page does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.sandbox.live import Sandbox
from bot.sandbox.scene import (
    DEMO_OWNERS,
    SCENE_OWNERS,
    attach_sandbox,
    create_demo_staff,
    fresh_deliveries,
    import_demo,
)
from db.models import AuditLog, Customer, Touchpoint
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in, site  # noqa: F401 - site is a fixture

WANG, TOM, CHEN = (o.user_id for o in SCENE_OWNERS)


@dataclass
class SandboxSite:
    base: str
    carebot: Any
    sandbox: Sandbox
    clock: FakeClock

    async def poll(self) -> int:
        total = 0
        while n := await self.carebot.poll_once():
            total += n
        return total


@pytest_asyncio.fixture
async def sandbox_site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[SandboxSite]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(), session_secret="s")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await import_demo(None, clock, settings)  # 王芳, Tom Lee (李娜's) and 陈强 (赵磊's)
    sandbox = attach_sandbox(carebot, emulator, clock)
    await add_staff("admin", "admin")
    await add_staff("lina", "agent", name="李娜")
    await add_staff("mkt", "marketing")
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield SandboxSite(f"http://127.0.0.1:{settings.web_port}", carebot, sandbox, clock)
    finally:
        await carebot.stop()


async def post(http: aiohttp.ClientSession, url: str, token: str | None,
               body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": token} if token else {}
    async with http.post(url, json=body, headers=headers) as r:
        data = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, data


async def chat(http: aiohttp.ClientSession, base: str, owner: int, v: str = "") -> Any:
    async with http.get(f"{base}/sandbox/chat/messages", params={"owner": owner, "v": v}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def bot_texts(data: dict[str, Any]) -> list[str]:
    return [m["text"] for m in data["messages"] if m["from_bot"]]


# --------------------------------------------------------------------------- not in production


async def test_the_page_does_not_exist_outside_the_sandbox(site: str) -> None:  # noqa: F811
    await add_staff("boss", "admin")
    async with aiohttp.ClientSession() as anonymous, \
            anonymous.get(f"{site}/sandbox/chat", allow_redirects=False) as r:
        assert r.status == 404
    http = await signed_in(site, "boss")
    async with http:
        token = await csrf(http, f"{site}/")
        async with http.get(f"{site}/") as r:
            assert 'href="/sandbox/chat"' not in await r.text()  # not in the menu either
        for path in ("/sandbox/chat", f"/sandbox/chat/messages?owner={WANG}"):
            async with http.get(f"{site}{path}") as r:
                assert r.status == 404, path
        status, _ = await post(http, f"{site}/sandbox/chat/time", token, {"step": "1d"})
        assert status == 404
        status, _ = await post(http, f"{site}/sandbox/chat/act", token,
                               {"owner": WANG, "action": "text", "text": "hi"})
        assert status == 404


# --------------------------------------------------------------------------- roles and scope


@pytest.mark.parametrize(("login", "visible"), [
    ("admin", {WANG, TOM, CHEN}),
    ("lina", {WANG, TOM}),  # an agent: only her own customers (their advisor is 李娜)
    ("mkt", set()),  # marketing sees no customer files, so no demo owner
])
async def test_each_role_sees_the_demo_owners_of_its_customers(
        sandbox_site: SandboxSite, login: str, visible: set[int]) -> None:
    base = sandbox_site.base
    http = await signed_in(base, login)
    async with http:
        async with http.get(f"{base}/") as r:
            assert 'href="/sandbox/chat"' in await r.text()  # the menu links it in the sandbox
        async with http.get(f"{base}/sandbox/chat") as r:
            assert r.status == 200
            page = await r.text()
        shown = {o for o in (WANG, TOM, CHEN) if f'data-owner="{o}"' in page}
        assert shown == visible
        assert ('id="no-owners"' in page) == (not visible)
        for owner in (WANG, TOM, CHEN):
            async with http.get(f"{base}/sandbox/chat/messages",
                                params={"owner": owner}) as r:
                assert r.status == (200 if owner in visible else 403), (login, owner)


async def test_acting_as_an_owner_outside_ones_scope_is_refused_and_changes_nothing(
        sandbox_site: SandboxSite) -> None:
    base = sandbox_site.base
    http = await signed_in(base, "lina")
    async with http:
        token = await csrf(http, f"{base}/sandbox/chat")
        for body in ({"action": "link"}, {"action": "text", "text": "hello"}):
            status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                                   {"owner": CHEN, **body})
            assert status == 403
        status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                               {"owner": 4242, "action": "link"})
        assert status == 404
    assert sandbox_site.sandbox.emulator.pending_updates == 0
    assert sandbox_site.sandbox.emulator.chats[CHEN].messages == []
    assert (await Customer.get(phone=SCENE_OWNERS[2].phone)).telegram_user_id is None


async def test_posts_without_the_csrf_token_are_refused(sandbox_site: SandboxSite) -> None:
    base = sandbox_site.base
    before = sandbox_site.clock.now()
    http = await signed_in(base, "admin")
    async with http:
        status, _ = await post(http, f"{base}/sandbox/chat/time", None, {"step": "7d"})
        assert status == 403
        status, _ = await post(http, f"{base}/sandbox/chat/act", "forged",
                               {"owner": WANG, "action": "link"})
        assert status == 403
    assert sandbox_site.clock.now() == before
    assert sandbox_site.sandbox.emulator.pending_updates == 0


# --------------------------------------------------------------------------- the chat


async def test_link_chat_and_the_version_of_the_chat(sandbox_site: SandboxSite) -> None:
    base = sandbox_site.base
    http = await signed_in(base, "admin")
    async with http:
        token = await csrf(http, f"{base}/sandbox/chat?owner={WANG}")
        empty = await chat(http, base, WANG)
        assert empty["messages"] == [] and empty["owner"]["linked"] is False
        assert empty["owner"]["name"] == "王芳" and empty["owner"]["phone"] == "+8613800138000"
        status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                               {"owner": WANG, "action": "link"})
        assert status == 200
        assert await sandbox_site.poll() == 1
        data = await chat(http, base, WANG, empty["v"])
        assert data["owner"]["linked"] is True
        mine, welcome = data["messages"][:2]
        assert not mine["from_bot"] and mine["text"].startswith("/start ")
        assert welcome["from_bot"] and "王芳您好" in welcome["text"]
        same = await chat(http, base, WANG, data["v"])  # nothing new: only the clock
        assert same["same"] is True and "messages" not in same
        assert same["clock"]["iso"] == sandbox_site.clock.now().isoformat()
        status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                               {"owner": WANG, "action": "text", "text": "/help"})
        assert status == 200
        await sandbox_site.poll()
        after = await chat(http, base, WANG, data["v"])
        assert "same" not in after and len(after["messages"]) > len(data["messages"])
        status, problem = await post(http, f"{base}/sandbox/chat/act", token,
                                     {"owner": WANG, "action": "text", "text": "  "})
        assert status == 400 and "text" in problem["error"]
    customer = await Customer.get(phone="+8613800138000")
    assert customer.telegram_user_id == WANG


async def test_the_contact_key_shares_the_owners_own_number(sandbox_site: SandboxSite) -> None:
    base = sandbox_site.base
    http = await signed_in(base, "admin")
    async with http:
        token = await csrf(http, f"{base}/sandbox/chat?owner={TOM}")
        await post(http, f"{base}/sandbox/chat/act", token,
                   {"owner": TOM, "action": "text", "text": "/start"})
        await sandbox_site.poll()
        data = await chat(http, base, TOM)
        assert data["keyboard"] and data["keyboard"][0][0]["contact"] is True
        status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                               {"owner": TOM, "action": "keyboard", "row": 0, "column": 0})
        assert status == 200
        await sandbox_site.poll()
        data = await chat(http, base, TOM)
        assert any(m["contact"] == "+8613900139000" for m in data["messages"])
        assert data["owner"]["linked"] is True
        assert data["keyboard"] == []  # a one-time keyboard goes away once used
        status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                               {"owner": TOM, "action": "keyboard", "row": 0, "column": 0})
        assert status == 400
    assert (await Customer.get(phone="+8613900139000")).telegram_user_id == TOM


# --------------------------------------------------------------------------- time


async def test_moving_time_forward_sends_what_falls_due_and_a_score_is_pressed(
        sandbox_site: SandboxSite) -> None:
    base, clock = sandbox_site.base, sandbox_site.clock
    start = clock.now()
    http = await signed_in(base, "admin")
    async with http:
        token = await csrf(http, f"{base}/sandbox/chat?owner={WANG}")
        await post(http, f"{base}/sandbox/chat/act", token, {"owner": WANG, "action": "link"})
        await sandbox_site.poll()

        status, moved = await post(http, f"{base}/sandbox/chat/time", token, {"step": "2h"})
        assert status == 200
        assert clock.now() == start + timedelta(hours=2)
        assert moved["clock"]["local"] == "2026-11-03 12:00"
        assert moved["report"]["sent"] == 1  # 王芳's check-in (the others have not linked)
        assert any("交车已经两个小时了" in t for t in bot_texts(await chat(http, base, WANG)))

        status, moved = await post(http, f"{base}/sandbox/chat/time", token, {"step": "3d"})
        assert status == 200 and moved["report"]["sent"] == 1
        data = await chat(http, base, WANG)
        survey = data["messages"][-1]
        assert "打个分" in survey["text"]
        labels = [b["text"] for row in survey["buttons"] for b in row]
        assert [str(n) for n in range(1, 11)] == labels[:10]
        row, column = next((r, c) for r, line in enumerate(survey["buttons"])
                           for c, b in enumerate(line) if b["text"] == "9")
        status, _ = await post(http, f"{base}/sandbox/chat/act", token,
                               {"owner": WANG, "action": "press", "message_id": survey["id"],
                                "row": row, "column": column})
        assert status == 200
        await sandbox_site.poll()
        assert any("非常感谢您给出 9 分" in t for t in bot_texts(await chat(http, base, WANG)))

        status, problem = await post(http, f"{base}/sandbox/chat/act", token,
                                     {"owner": WANG, "action": "press",
                                      "message_id": survey["id"], "row": 9, "column": 9})
        assert status == 400 and "no button" in problem["error"]
        status, _ = await post(http, f"{base}/sandbox/chat/time", token, {"step": "-1d"})
        assert status == 400

        status, moved = await post(http, f"{base}/sandbox/chat/time", token, {"step": "next"})
        assert status == 200  # to the 7-day care visit
        assert moved["report"]["sent"] == 1
        visit = await Touchpoint.get(kind="visit_7d", customer__phone="+8613800138000")
        assert visit.status == "sent"
        assert clock.now() == visit.due_at + timedelta(minutes=1)
    entries = await AuditLog.filter(action="sandbox.time").order_by("id")
    assert [e.detail["step"] for e in entries] == ["2h", "3d", "next"]


async def test_demo_staff_can_sign_in(db: str) -> None:
    logins = await create_demo_staff()
    assert [(d.login, d.role.value) for d in logins] == [("admin", "admin"), ("agent", "agent")]
    assert all(len(d.password) >= 10 for d in logins)
    from argon2 import PasswordHasher

    from db.models import Staff

    for demo in logins:
        staff = await Staff.get(login=demo.login)
        assert PasswordHasher().verify(staff.password_hash or "", demo.password)



async def test_every_demo_owner_has_a_clean_delivery(db: str, clock: FakeClock) -> None:
    from bot.config import Settings

    settings = Settings(_env_file=None, timezone="Asia/Shanghai")
    first = await import_demo(None, clock, settings)
    later = await import_demo(fresh_deliveries("2026-11-03 10:00"), clock, settings)
    assert first.ok and later.ok, (first.summary(), later.summary())
    assert first.created + later.created > 0
    phones = set(await Customer.all().values_list("phone", flat=True))
    assert phones == {o.phone for o in DEMO_OWNERS}


async def test_the_demo_has_consenting_owners_and_a_campaign_to_try(db: str,
                                                                    clock: FakeClock) -> None:
    from bot.campaigns import audiences, policy
    from bot.config import Settings
    from bot.sandbox.scene import create_demo_campaign
    from db.models import Campaign

    settings = Settings(_env_file=None, timezone="Asia/Shanghai")
    await import_demo(None, clock, settings)
    await import_demo(fresh_deliveries("2026-11-03 10:00"), clock, settings)
    consenting = await Customer.filter(marketing_consent=True).values_list("name", flat=True)
    assert sorted(consenting) == sorted(["王芳", "Tom Lee", "赵敏"])
    titles = dict(await Customer.all().values_list("name", "title"))
    assert titles["王芳"] == "ms" and titles["陈强"] == "mr"
    await create_demo_campaign(clock, settings)
    campaign = await Campaign.get(name="双十一保养特惠（演示）")
    assert set(campaign.messages) == {"zh_CN", "en"}
    counted = await audiences.count_audience(
        audiences.parse_audience(campaign.audience), now=clock.now(),
        rules=policy.campaign_rules(settings))
    assert counted.targeted == 5 and counted.excluded["no_consent"] == 2
