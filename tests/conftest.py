"""Shared fixtures: a fresh database per test, on SQLite and (when reachable) PostgreSQL.

Tests that take the ``db`` fixture run twice: once on a new SQLite file, once on a
PostgreSQL database this run creates for itself and drops at the end. When PostgreSQL does
not answer at CAREBOT_TEST_POSTGRES_URL, the PostgreSQL half is skipped and says why.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio
from tortoise import Tortoise

from bot.clock import FakeClock
from db.setup import close_database, migrate_database, open_database


def pytest_configure(config: pytest.Config) -> None:
    # Production argon2 costs a third of a second per hash, at hundreds of sign-ins and
    # staff accounts: tests hash cheaply (tests/test_passwords.py checks production's cost).
    from bot import passwords

    passwords.use_parameters(time_cost=1, memory_cost=8, parallelism=1)
    # The CLI speaks the locale's language, Chinese by default (bot/cli/say.py); the tests
    # read its English unless they choose (tests/test_cli_language.py reads Chinese).
    os.environ["CAREBOT_LANGUAGE"] = "en"


# Process-level and browser tests: kept in every `make test` and CI run, left out of
# `make test-fast` (the inner loop) with the PostgreSQL half of each database test.
SLOW_MODULES = {"test_scaleout.py", "test_webhook_burst.py", "test_bench.py",
                "test_sqlite_inline.py", "test_cli_failures.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.name in SLOW_MODULES or path.parent.name == "browser":
            item.add_marker(pytest.mark.slow)


PG_SERVER_URL = os.environ.get(
    "CAREBOT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
)

_pg: dict[str, str | None] = {}


def _server_and_db(url: str) -> tuple[str, str]:
    base, _, dbname = url.rpartition("/")
    return base, dbname


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        PG_SERVER_URL.replace("postgres://", "postgresql://", 1), timeout=3
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _postgres_test_url() -> tuple[str | None, str]:
    """Create this run's own database once; return (url, why-not)."""
    if "url" not in _pg:
        name = f"carebot_test_{os.getpid()}_{secrets.token_hex(3)}"
        try:
            asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            _pg["url"] = None
            _pg["why"] = f"PostgreSQL not reachable at {PG_SERVER_URL}: {exc!r}"
        else:
            base, _ = _server_and_db(PG_SERVER_URL)
            url = f"{base}/{name}"
            _pg["url"] = url
            _pg["name"] = name
            _pg["why"] = ""
            asyncio.run(migrate_database(url))
    return _pg["url"], _pg.get("why") or ""


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    name = _pg.get("name")
    if name:
        try:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:
            print(f"\ncould not drop test database {name}: {exc!r}")


async def _truncate_all() -> None:
    conn = Tortoise.get_connection("default")
    tables = [m._meta.db_table for m in Tortoise.apps["models"].values()]
    await conn.execute_script(
        "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once per run (per worker): each test gets a copy, which
    takes a millisecond where replaying every migration took about a second."""
    path = tmp_path_factory.mktemp("template") / "carebot.sqlite3"
    asyncio.run(migrate_database(f"sqlite://{path}"))
    for suffix in ("-wal", "-shm"):  # closed cleanly: everything is in the main file
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def sqlite_copy(template: Path, path: Path) -> str:
    """A fresh, migrated SQLite database at ``path`` (a copy of the template)."""
    shutil.copyfile(template, path)
    return f"sqlite://{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for one test: a fresh SQLite file, or this run's PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_copy(request.getfixturevalue("sqlite_template"),
                          tmp_path / "carebot.sqlite3")
        return
    url, why = _postgres_test_url()
    if url is None:
        pytest.skip(why)
    yield url


@pytest_asyncio.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """Open a migrated, empty database for the test and close it afterwards."""
    if db_url.startswith("sqlite"):
        await open_database(db_url, apply_migrations=False)  # a copy of the migrated template
    else:
        await open_database(db_url, apply_migrations=False)
        await _truncate_all()
    try:
        yield db_url
    finally:
        await close_database()


@pytest.fixture
def clock() -> FakeClock:
    """Tuesday 2026-11-03 02:00 UTC = 10:00 in Asia/Shanghai."""
    return FakeClock(datetime(2026, 11, 3, 2, 0, tzinfo=UTC))


class Env(Protocol):
    """What the shared scenario helpers need: BotEnv here, ConsoleEnv in the browser tests."""

    emu: Any
    carebot: Any
    clock: FakeClock
    settings: Any

    async def poll(self) -> int: ...


class BotEnv:
    """carebot wired to the Telegram emulator over real HTTP, on a fake clock."""

    def __init__(self, emu, carebot, clock: FakeClock, settings) -> None:  # type: ignore[no-untyped-def]
        self.emu = emu
        self.carebot = carebot
        self.clock = clock
        self.settings = settings

    async def poll(self) -> int:
        """Handle every update the emulator holds, to completion."""
        total = 0
        while n := await self.carebot.poll_once():
            total += n
        return total

    async def tick(self):  # type: ignore[no-untyped-def]
        """One dispatcher tick at the clock's current time."""
        return await self.carebot.dispatcher.dispatch_due()


def make_settings(emu, **overrides):  # type: ignore[no-untyped-def]
    from bot.config import Settings

    values = dict(
        bot_token=emu.token,
        telegram_api_url=emu.api_url,
        database_url="sqlite://:memory:",
        dealer_name="星辰汽车",
        dealer_phone="020-88886666",
        timezone="Asia/Shanghai",  # pinned: a developer's CAREBOT_* must not change tests
        quiet_hours="21:00-09:00",
        checkin_expiry_hours=12.0,
        staff_chat_id=None,
        webhook_url="",
        scripts_dir=None,
        webhook_secret="s3cret-hook",
        api_key="test-api-key",
        metrics_open=True,  # /metrics is closed by default (tests/test_hardening_web.py)
        # one 1-10 score, the path most tests drive; tests/test_questionnaire_flow.py turns
        # the questionnaires (the default) on
        survey_questionnaires=False,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator:  # type: ignore[type-arg]
    """The Telegram emulator, Telegram-strict (30/s, a short burst then 1/s per chat, 20/min
    per group), on virtual pacing time it shares with carebot (``create_app(..., pace=
    emulator.pace)``): limits hold to the letter and a ``retry_after`` costs no real time."""
    from bot.clock import VirtualPace
    from bot.sandbox.emulator import TelegramEmulator

    emu = TelegramEmulator(pace=VirtualPace())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest_asyncio.fixture
async def env(db: str, emulator, clock: FakeClock) -> AsyncIterator[BotEnv]:  # type: ignore[no-untyped-def]
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()
