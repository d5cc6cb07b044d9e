"""Sign-in hardening (issue 15, points 4 and 7; 9: reactivation), over real HTTP.

Password checks are counted through the console's hasher (``Console.hasher``, the seam the
sign-in verifies with): a wrapper of the app's own argon2 hasher, so nothing is faked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from bot.clock import FakeClock
from bot.web.console import CONSOLE
from bot.web.console.signin import CLEARED, TRIED, login_tag, signin_key, unlock
from db.models import AuditLog, Staff
from tests.browser.conftest import PASSWORD, add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in

LOCK_AFTER = 5


class CountingHasher(PasswordHasher):
    """The app's argon2 hasher, counting the passwords it checks (checks run in threads)."""

    def __init__(self, base: PasswordHasher) -> None:
        super().__init__(time_cost=base.time_cost, memory_cost=base.memory_cost,
                         parallelism=base.parallelism, hash_len=base.hash_len,
                         salt_len=base.salt_len, encoding=base.encoding, type=base.type)
        self.checks = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.checks += 1
        return super().verify(hash, password)


@dataclass
class Site:
    base: str
    hasher: CountingHasher
    settings: Any


async def _start(db: str, emulator: Any, clock: FakeClock,
                 **overrides: Any) -> AsyncIterator[Site]:
    from bot.app import create_app

    values: dict[str, Any] = {"session_secret": "s", "console_lock_failures": LOCK_AFTER,
                              "console_address_failures": 1000}
    values.update(overrides)
    settings = make_settings(emulator, database_url=db, web_port=free_port(), **values)
    carebot = create_app(settings, clock, pace=emulator.pace)
    console = carebot.web_app[CONSOLE]
    console.hasher = hasher = CountingHasher(console.hasher)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield Site(f"http://127.0.0.1:{settings.web_port}", hasher, settings)
    finally:
        await carebot.stop()


@pytest_asyncio.fixture
async def site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Site]:
    async for s in _start(db, emulator, clock):
        yield s


def browser() -> aiohttp.ClientSession:
    """A client keeping its cookies, reading the console in English."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 headers={"Accept-Language": "en"})


async def attempt(http: aiohttp.ClientSession, site: Site, login: str, password: str,
                  token: str, **headers: str) -> tuple[int, str]:
    async with http.post(f"{site.base}/login", allow_redirects=False, headers=headers,
                         data={"login": login, "password": password, "_csrf": token}) as r:
        return r.status, await r.text()


def said(page: str) -> str:
    m = re.search(r'id="login-error">([^<]*)<', page)
    return m.group(1) if m else ""


async def test_sixty_parallel_wrong_passwords_check_at_most_five(site: Site) -> None:
    await add_staff("boss", "admin", language="en")
    async with browser() as http:
        token = await csrf(http, f"{site.base}/login")
        answers = await asyncio.gather(*(attempt(http, site, "boss", f"guess {i}", token)
                                         for i in range(60)))
        assert {status for status, _ in answers} == {401}
        assert site.hasher.checks <= LOCK_AFTER, site.hasher.checks
        assert sum(said(page).startswith("Too many") for _, page in answers) >= 60 - LOCK_AFTER
        checked = site.hasher.checks
        status, page = await attempt(http, site, "boss", PASSWORD, token)  # the right one
        assert status == 401 and said(page).startswith("Too many")
        assert site.hasher.checks == checked  # refused without a check
    async with aiohttp.ClientSession() as other, \
            other.get(f"{site.base}/", allow_redirects=False) as r:
        assert r.status == 303  # nobody got in


async def test_known_and_unknown_logins_answer_alike(site: Site) -> None:
    await add_staff("wang-known", "manager", language="en")
    async with browser() as http:
        token = await csrf(http, f"{site.base}/login")
        for n in range(1, LOCK_AFTER + 2):
            seen = []
            for login in ("wang-known", "wang-nobod"):
                before = site.hasher.checks
                status, page = await attempt(http, site, login, "not the password", token)
                seen.append((status, said(page), page.replace(login, "LOGIN"),
                             site.hasher.checks - before))
            assert seen[0] == seen[1], f"attempt {n} told them apart"
            status, message, _, checks = seen[0]
            assert status == 401 and checks == (1 if n <= LOCK_AFTER else 0)
            assert message.startswith("Too many") == (n >= LOCK_AFTER), (n, message)


async def test_a_lock_ends_after_its_minutes_or_when_an_admin_lifts_it(
        site: Site, clock: FakeClock) -> None:
    await add_staff("li", "agent")

    async def lock_then_try() -> int:
        async with browser() as http:
            token = await csrf(http, f"{site.base}/login")
            for _ in range(LOCK_AFTER):
                await attempt(http, site, "li", "wrong", token)
            assert (await attempt(http, site, "li", PASSWORD, token))[0] == 401
            assert (await Staff.get(login="li")).locked_until is not None  # shown on /staff
        return await right_password()

    async def right_password() -> int:
        async with browser() as http:
            token = await csrf(http, f"{site.base}/login")
            return (await attempt(http, site, "li", PASSWORD, token))[0]

    assert await lock_then_try() == 401
    await unlock(site.settings, "li", clock.now())  # what `carebot staff unlock li` does
    assert await right_password() == 303
    assert await lock_then_try() == 401
    clock.advance(minutes=16)  # CAREBOT_CONSOLE_LOCK_MINUTES is 15
    assert await right_password() == 303


async def test_an_address_that_keeps_failing_waits(db: str, emulator: Any,
                                                   clock: FakeClock) -> None:
    async for site in _start(db, emulator, clock, console_address_failures=3,
                             console_lock_failures=100):
        await add_staff("zhao", "agent")
        async with browser() as http:
            token = await csrf(http, f"{site.base}/login")
            far = {"X-Forwarded-For": "203.0.113.7"}  # as nginx on this host says
            for login in ("zhao", "x", "y"):
                assert (await attempt(http, site, login, "wrong", token, **far))[0] == 401
            checks = site.hasher.checks
            status, page = await attempt(http, site, "zhao", PASSWORD, token, **far)
            assert status == 429 and "15" in said(page) and site.hasher.checks == checks
            near = {"X-Forwarded-For": "198.51.100.2"}  # another address may still sign in
            assert (await attempt(http, site, "zhao", PASSWORD, token, **near))[0] == 303
        clock.advance(minutes=16)
        async with browser() as http:
            token = await csrf(http, f"{site.base}/login")
            assert (await attempt(http, site, "zhao", PASSWORD, token, **far))[0] == 303


async def test_a_forwarded_for_header_from_an_untrusted_peer_is_ignored(
        db: str, emulator: Any, clock: FakeClock) -> None:
    async for site in _start(db, emulator, clock, console_address_failures=2,
                             trusted_proxies=""):
        async with browser() as http:
            token = await csrf(http, f"{site.base}/login")
            for n in range(2):
                spoof = {"X-Forwarded-For": f"203.0.113.{n}"}
                assert (await attempt(http, site, "a", "wrong", token, **spoof))[0] == 401
            spoof = {"X-Forwarded-For": "203.0.113.99"}
            assert (await attempt(http, site, "a", "wrong", token, **spoof))[0] == 429


async def test_a_failed_sign_in_logs_nothing_typed(site: Site,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    await add_staff("chen", "manager")
    typed_login, typed_password = "my-secret-pw-in-login", "typed-password-Qw7"
    # carebot's own loggers at every level; libraries as deployed (INFO: at DEBUG the ORM
    # logs each query's parameters, a login among them; docs/security.md says so).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    async with browser() as http:
        token = await csrf(http, f"{site.base}/login")
        for _ in range(LOCK_AFTER + 1):
            await attempt(http, site, typed_login, typed_password, token)
            await attempt(http, site, "chen", typed_password, token)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sign-in" in logged  # the refusals are logged...
    for typed in (typed_login, typed_password, "chen"):
        assert typed not in logged  # ...by a keyed hash of the login, never what was typed
    stored = await AuditLog.filter(action__startswith="signin.").values_list("target", "detail")
    assert stored and all(typed_login not in f"{t}{d}" for t, d in stored)


async def test_reactivating_an_account_does_not_revive_its_old_sessions(site: Site) -> None:
    await add_staff("root", "admin")
    worker = await add_staff("temp", "agent")
    old = await signed_in(site.base, "temp")
    admin = await signed_in(site.base, "root")
    async with old, admin:
        token = await csrf(admin, f"{site.base}/staff")
        for action in ("deactivate", "activate"):
            async with admin.post(f"{site.base}/staff/{worker.id}",
                                  data={"action": action, "_csrf": token}) as r:
                assert r.status == 200
        assert (await Staff.get(id=worker.id)).active
        async with old.get(f"{site.base}/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")
    again = await signed_in(site.base, "temp")  # the account itself works again
    await again.close()


def test_staff_unlock_cli_starts_the_count_afresh(tmp_path: Any,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from bot import cli
    from bot.config import Settings
    from db.setup import close_database, open_database

    url = f"sqlite://{tmp_path}/u.sqlite3"
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    monkeypatch.setenv("CAREBOT_SESSION_SECRET", "the-deployment-secret")
    assert cli.main(["staff", "add", "--login", "ops", "--name", "Ops", "--role", "admin"]) == 0
    settings = Settings(_env_file=None)
    target = f"signin:{login_tag(signin_key(settings), 'ops')}"

    async def rows(action: str, add: int = 0) -> int:
        await open_database(url)
        try:
            for _ in range(add):  # failed attempts, as the sign-in writes them
                await AuditLog.create(action=action, target=target, detail={},
                                      created_at=datetime.now(UTC))
            return await AuditLog.filter(action=action, target=target).count()
        finally:
            await close_database()

    assert asyncio.run(rows(TRIED, add=LOCK_AFTER)) == LOCK_AFTER
    assert cli.main(["staff", "unlock", "ops"]) == 0
    assert "unlocked: ops" in capsys.readouterr().out
    assert asyncio.run(rows(TRIED)) == 0  # no longer counted...
    assert asyncio.run(rows(CLEARED)) == LOCK_AFTER  # ...but kept for the audit log
    assert cli.main(["staff", "unlock", "nobody"]) == 1
