"""Console sign-in, roles and CSRF over real HTTP (aiohttp client), on SQLite and PostgreSQL.

The browser tests (tests/browser/) drive the same pages in Chromium; these cover every role
against every protected path cheaply, and the CLI that sets passwords.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.web.console import access
from db.models import AuditLog, Staff, StaffRole
from tests.browser.conftest import PASSWORD, add_staff, free_port
from tests.conftest import make_settings

ROLES = [r.value for r in StaffRole]


@pytest_asyncio.fixture
async def site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[str]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s", console_lock_failures=3)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield f"http://127.0.0.1:{settings.web_port}"
    finally:
        await carebot.stop()


async def signed_in(base: str, login: str, password: str = PASSWORD) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    token = await csrf(http, f"{base}/login")
    async with http.post(f"{base}/login", data={"login": login, "password": password,
                                                 "_csrf": token}) as r:
        assert r.status == 200 and r.url.path == "/", await r.text()
    return http


async def csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as r:
        m = re.search(r'name="csrf-token" content="([^"]+)"', await r.text())
    assert m, "every page carries its CSRF token"
    return m.group(1)


# (path, permission needed): every GET page of the console behind a permission.
PROTECTED = [("/", access.TODAY), ("/staff", access.STAFF), ("/settings", access.STAFF)]


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_opens_exactly_what_it_may(site: str, role: str) -> None:
    staff = await add_staff(f"user-{role}", role)
    http = await signed_in(site, staff.login)
    async with http:
        for path, permission in PROTECTED:
            async with http.get(f"{site}{path}", allow_redirects=False) as r:
                expected = 200 if access.can(staff, permission) else 403
                assert r.status == expected, (role, path, r.status)


@pytest.mark.parametrize("path", [p for p, _ in PROTECTED])
async def test_signed_out_visitors_are_sent_to_sign_in(site: str, path: str) -> None:
    async with (aiohttp.ClientSession() as http,
                http.get(f"{site}{path}", allow_redirects=False) as r):
        assert r.status == 303
        assert r.headers["Location"].startswith("/login?next=")


async def test_refused_actions_change_nothing(site: str) -> None:
    await add_staff("agent1", "agent")
    target = await add_staff("victim", "agent")
    http = await signed_in(site, "agent1")
    async with http:
        token = await csrf(http, f"{site}/")
        async with http.post(f"{site}/staff/{target.id}",
                             data={"action": "role", "role": "admin", "_csrf": token}) as r:
            assert r.status == 403
        async with http.post(f"{site}/staff", data={"login": "new1", "name": "N", "role": "admin",
                                                    "password": "x" * 12, "_csrf": token}) as r:
            assert r.status == 403
    assert (await Staff.get(id=target.id)).role == StaffRole.AGENT
    assert not await Staff.exists(login="new1")


async def test_posts_without_the_csrf_token_are_refused(site: str) -> None:
    await add_staff("admin1", "admin")
    target = await add_staff("agent2", "agent")
    http = await signed_in(site, "admin1")
    async with http:
        for data in ({"action": "deactivate"}, {"action": "deactivate", "_csrf": "forged"}):
            async with http.post(f"{site}/staff/{target.id}", data=data) as r:
                assert r.status == 403
                assert "CSRF" in await r.text()
        assert (await Staff.get(id=target.id)).active
        token = await csrf(http, f"{site}/staff")
        async with http.post(f"{site}/staff/{target.id}",
                             data={"action": "deactivate", "_csrf": token}) as r:
            assert r.status == 200
    assert not (await Staff.get(id=target.id)).active
    entry = await AuditLog.get(action="staff.deactivate")
    assert entry.target == f"staff:{target.id}"


async def test_sign_in_post_without_csrf_is_refused(site: str) -> None:
    await add_staff("x1", "manager")
    async with (aiohttp.ClientSession() as http,
                http.post(f"{site}/login", data={"login": "x1", "password": PASSWORD}) as r):
        assert r.status == 403


async def test_lock_after_failures_and_admin_creates_staff(site: str, clock: FakeClock) -> None:
    await add_staff("boss", "admin")
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http:
        for _ in range(3):
            token = await csrf(http, f"{site}/login")
            async with http.post(f"{site}/login", data={
                    "login": "boss", "password": "nope", "_csrf": token}) as r:
                assert r.status == 401
        token = await csrf(http, f"{site}/login")
        async with http.post(f"{site}/login", data={
                "login": "boss", "password": PASSWORD, "_csrf": token}) as r:
            assert r.status == 401 and "锁定" in await r.text()  # no Accept-Language: 中文
    clock.advance(minutes=16)
    http = await signed_in(site, "boss")
    async with http:
        token = await csrf(http, f"{site}/staff")
        async with http.post(f"{site}/staff", data={
                "login": "mk1", "name": "市场小李", "role": "marketing", "language": "zh_CN",
                "password": "short", "_csrf": token}) as r:
            assert r.status == 422 and "10" in await r.text()
        async with http.post(f"{site}/staff", data={
                "login": "mk1", "name": "市场小李", "role": "marketing", "language": "zh_CN",
                "password": "long enough pw", "_csrf": token}) as r:
            assert r.status == 200
    http = await signed_in(site, "mk1", "long enough pw")
    async with http, http.get(f"{site}/staff") as r:
        assert r.status == 403


async def test_a_changed_password_ends_other_sessions(site: str) -> None:
    from bot.web.console import hash_password

    await add_staff("chen", "manager")
    http = await signed_in(site, "chen")
    async with http:
        await Staff.filter(login="chen").update(password_hash=hash_password("a new password"))
        async with http.get(f"{site}/", allow_redirects=False) as r:
            assert r.status == 303


def test_staff_passwd_cli_sets_a_password(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from bot import cli

    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"sqlite://{tmp_path}/c.sqlite3")
    assert cli.main(["staff", "add", "--login", "liu", "--name", "刘", "--role",
                     "supervisor"]) == 0
    assert "carebot staff passwd liu" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["staff", "passwd", "liu", "--stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a good long password\n"))
    assert cli.main(["staff", "passwd", "liu", "--stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a good long password\n"))
    assert cli.main(["staff", "passwd", "nobody", "--stdin"]) == 1
    assert cli.main(["staff", "unlock", "liu"]) == 0
    assert cli.main(["staff", "add", "--name", "x", "--role", "agent"]) == 2
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: one clear line, no traceback
    assert cli.main(["staff", "passwd", "liu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--stdin" in err and "Traceback" not in err


# --- hardening ---------------------------------------------------------------------------


@pytest.mark.parametrize("target,expected", [
    ("/tickets?state=open", "/tickets?state=open"),
    ("//evil.example", "/"),
    ("/\t/evil.example", "/"),
    ("/\n/evil.example", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("", "/"),
])
def test_after_sign_in_only_local_paths(target: str, expected: str) -> None:
    from bot.web.console import _safe_next

    assert _safe_next(target) == expected


async def test_sign_out_ends_every_copy_of_the_session(site: str) -> None:
    await add_staff("copy", "manager")
    http = await signed_in(site, "copy")
    async with http:
        stolen = {c.key: c.value for c in http.cookie_jar}
        token = await csrf(http, f"{site}/")
        async with http.post(f"{site}/logout", data={"_csrf": token},
                             allow_redirects=False) as r:
            assert r.status == 303
    async with (aiohttp.ClientSession(cookies=stolen) as replay,
                replay.get(f"{site}/", allow_redirects=False) as r):
        assert r.status == 303 and r.headers["Location"].startswith("/login")


async def test_console_pages_refuse_framing_and_caching(site: str) -> None:
    await add_staff("hdr", "manager")
    http = await signed_in(site, "hdr")
    async with http, http.get(f"{site}/") as r:
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "no-store"


async def test_the_settings_page_shows_no_secret(db: str, emulator: Any, clock: FakeClock,
                                                 ) -> None:
    from bot.app import create_app

    secrets_ = {"api_key": "api-key-value-1", "webhook_secret": "hook-secret-value-2",
                "session_secret": "session-secret-value-3",
                "metrics_token": "metrics-token-value-4"}
    settings = make_settings(emulator, database_url=db, web_port=free_port(), **secrets_)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        await add_staff("root", "admin")
        http = await signed_in(base, "root")
        async with http, http.get(f"{base}/settings") as r:
            page = await r.text()
        assert r.status == 200 and "CAREBOT_DEALER_NAME" in page
        for value in [*secrets_.values(), emulator.token]:
            assert value not in page
    finally:
        await carebot.stop()


def test_every_console_route_names_its_permission() -> None:
    """A view without @requires would be open to every signed-in person: none may exist,
    except sign-in, sign-out and the language switch (which act only on oneself)."""
    from aiohttp import web

    from bot.web.console import setup_console

    class _Services:  # just enough for setup_console to register the routes
        def __init__(self) -> None:
            self.settings = make_settings(type("E", (), {"token": "1:x",
                                                          "api_url": "http://x"})())
            self.sandbox = None

    app = web.Application()
    setup_console(app, _Services())  # type: ignore[arg-type]
    open_paths = {"/login", "/logout", "/me/language"}
    unguarded = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        if path.startswith("/static") or path in open_paths or route.method == "HEAD":
            continue
        if not hasattr(route.handler, "permission"):
            unguarded.append(f"{route.method} {path}")
    assert unguarded == []


def test_both_interface_languages_have_the_same_strings() -> None:
    from bot.web.console.render import load_strings

    strings = load_strings()
    assert set(strings["zh_CN"]) - set(strings["en"]) == set()
    assert set(strings["en"]) - set(strings["zh_CN"]) == set()
