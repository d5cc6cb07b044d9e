"""What a command could not reach, in one line: which dependency (the database, Telegram),
what went wrong, and what to check. A command that needs them opens them through here, and
``main`` turns a :class:`StartupError` into that line on stderr and exit code 2 (issue 18,
point 7; issue 20, point 1). Nothing printed carries a secret: the database URL's password
is masked and the bot token is never shown."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
from telegram import Bot
from telegram.error import Conflict, Forbidden, InvalidToken, NetworkError, TimedOut
from tortoise.exceptions import ConfigurationError, DBConnectionError, OperationalError

from bot.cli.say import t
from bot.config import Settings, mask_url
from bot.setting_overrides import apply_console_changes
from bot.startup import StartupError
from bot.telegram_http import AiohttpRequest
from db.setup import close_database, open_database, sqlite_path

#: What failing to open or use the database raises (the drivers' own errors and the OS's).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
    sqlite3.Error, DBConnectionError, OperationalError, ConfigurationError)
TELEGRAM_ERRORS: tuple[type[BaseException], ...] = (NetworkError, InvalidToken, Forbidden,
                                                   Conflict)
TELEGRAM_TIMEOUT = 10.0  # seconds a one-shot command waits for each Bot API call


def _where(url: str) -> str:
    path = sqlite_path(url)
    if path is not None:
        return t("reach.sqlite_file", path=path)
    parts = urlsplit(url)
    return t("reach.postgres_at", host=parts.hostname or "localhost", port=parts.port or 5432)


def _postgres_why(exc: BaseException, url: str) -> str:
    parts = urlsplit(url)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        name = parts.path.lstrip("/") or "?"
        return t("reach.no_such_database", name=repr(name), user=parts.username or "carebot",
                 bare=name)
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return t("reach.user_refused", user=repr(parts.username or "?"), why=exc)
    return f"{type(exc).__name__}: {exc}"


def database_problem(exc: BaseException, url: str) -> str:
    """One line: the database (URL masked), what failed, what to check."""
    where = _where(url)
    if isinstance(exc, socket.gaierror):
        why = t("reach.host_not_found", host=repr(urlsplit(url).hostname))
    elif isinstance(exc, ConnectionRefusedError):
        why = t("reach.refused")
    elif isinstance(exc, asyncio.TimeoutError | TimeoutError):
        why = t("reach.database_timeout")
    elif isinstance(exc, PermissionError):
        why = t("reach.permission", what=exc.filename or exc)
    elif isinstance(exc, FileNotFoundError | sqlite3.Error) and sqlite_path(url):
        why = t("reach.sqlite_file_problem", why=exc)
    elif isinstance(exc, asyncpg.PostgresError):
        why = _postgres_why(exc, url)
    else:
        why = f"{type(exc).__name__}: {exc}"
    text = t("reach.database", where=where, url=mask_url(url), why=why)
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def telegram_problem(exc: BaseException, settings: Settings) -> str:
    """One line: Telegram's address, what failed, what to check (never the token)."""
    where = settings.telegram_api_url
    if isinstance(exc, InvalidToken | Forbidden):
        return t("reach.token_refused", where=where)
    if isinstance(exc, Conflict):
        why = t("reach.conflict", why=exc.message)
    elif isinstance(exc, TimedOut):
        why = t("reach.telegram_timeout")
    else:
        message = exc.message if isinstance(exc, NetworkError) else str(exc)
        why = t("reach.network", why=message)
    text = t("reach.telegram", where=where, why=why)
    return text.replace(settings.bot_token, "<token>") if settings.bot_token else text


def explain(exc: BaseException, settings: Settings) -> str | None:
    """The one line for a dependency's failure that reached ``main``, or None (a bug:
    let its traceback show)."""
    if isinstance(exc, TELEGRAM_ERRORS):
        return telegram_problem(exc, settings)
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | DBConnectionError
                  | sqlite3.OperationalError):
        return database_problem(exc, settings.database_url)
    return None


async def open_db(settings: Settings, *, apply_migrations: bool = True,
                  console_changes: bool = True) -> None:
    """open_database, or a :class:`StartupError` saying what could not be reached; then
    the settings changed in the console put into ``settings`` (unless ``console_changes``
    is false: ``carebot run`` keeps them up to date itself)."""
    try:
        await open_database(settings.database_url, apply_migrations=apply_migrations)
        if console_changes and apply_migrations:
            await apply_console_changes(settings)
    except DATABASE_ERRORS as exc:
        await _close_quietly()
        raise StartupError(database_problem(exc, settings.database_url)) from exc


async def _close_quietly() -> None:
    with contextlib.suppress(*DATABASE_ERRORS):  # closing what never opened: nothing to say
        await close_database()


def make_bot(settings: Settings) -> Bot:
    """A Bot for a one-shot command: PTB over aiohttp, as the service, with short waits."""
    request = AiohttpRequest(connection_pool_size=4, read_timeout=TELEGRAM_TIMEOUT,
                             connect_timeout=TELEGRAM_TIMEOUT, write_timeout=TELEGRAM_TIMEOUT)
    return Bot(settings.bot_token, base_url=f"{settings.telegram_api_url}/bot",
               base_file_url=f"{settings.telegram_api_url}/file/bot", request=request)


@asynccontextmanager
async def telegram(settings: Settings) -> AsyncIterator[Bot]:
    """The bot, initialised (``getMe`` answered), or a :class:`StartupError`."""
    bot = make_bot(settings)
    try:
        await bot.initialize()
    except TELEGRAM_ERRORS as exc:
        await bot.shutdown()
        raise StartupError(telegram_problem(exc, settings)) from exc
    try:
        yield bot
    except TELEGRAM_ERRORS as exc:
        raise StartupError(telegram_problem(exc, settings)) from exc
    finally:
        await bot.shutdown()
