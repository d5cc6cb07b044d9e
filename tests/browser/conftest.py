"""The console under test: carebot's web server on a free port, the Telegram emulator, and
Debian's Chromium driven by Playwright (headless; never a downloaded browser).

``console`` gives a running carebot (fake clock, emulator) with its console at
``console.base``; ``page`` gives a fresh browser page. Browser tests run on SQLite; the
HTTP-level console tests in tests/test_console_*.py cover PostgreSQL too. Where Chromium is
missing the browser tests are skipped saying so; ``make test`` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.clock import FakeClock
from tests.conftest import make_settings, sqlite_copy

CHROMIUM = os.environ.get("CAREBOT_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("CAREBOT_TEST_ARTIFACTS", "artifacts")) / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
           ) -> Iterator[str]:
    """Browser tests run on a fresh SQLite file (PostgreSQL is covered at the HTTP level)."""
    yield sqlite_copy(sqlite_template, tmp_path / "console.sqlite3")


@dataclass
class ConsoleEnv:
    base: str
    emu: Any
    carebot: Any
    clock: FakeClock
    settings: Any

    async def poll(self) -> int:
        total = 0
        while n := await self.carebot.poll_once():
            total += n
        return total

    async def tick(self) -> Any:
        return await self.carebot.dispatcher.dispatch_due()


async def add_staff(login: str, role: str, *, name: str | None = None,
                    telegram_id: int | None = None, language: str = "en",
                    password: str = PASSWORD) -> Any:
    from bot.web.console import hash_password
    from db.models import Staff

    return await Staff.create(login=login, name=name or login, role=role, language=language,
                              telegram_id=telegram_id, password_hash=hash_password(password))


@pytest_asyncio.fixture
async def console(db: str, emulator: Any, clock: FakeClock, tmp_path: Path
                  ) -> AsyncIterator[ConsoleEnv]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="test-session-secret", console_lock_failures=3,
                             scripts_dir=tmp_path / "our-scripts")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield ConsoleEnv(f"http://127.0.0.1:{settings.web_port}", emulator, carebot, clock,
                         settings)
    finally:
        await carebot.stop()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    executable = CHROMIUM if Path(CHROMIUM).exists() else \
        shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        why = (f"Chromium not found at {CHROMIUM} nor on PATH: browser tests skipped. "
               "`make test` installs Debian's chromium (apt-get) when it may.")
        if os.environ.get("CAREBOT_REQUIRE_BROWSER"):
            pytest.fail(why + " CAREBOT_REQUIRE_BROWSER is set (CI): they must run.")
        pytest.skip(why)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        locale="en-US")
    pg = await context.new_page()
    pg.set_default_timeout(10_000)
    try:
        yield pg
    finally:
        await context.close()


async def sign_in(page: Any, base: str, login: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact (artifacts/ is not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
