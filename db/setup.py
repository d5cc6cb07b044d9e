"""Connecting to the database and bringing its schema up to date."""

from __future__ import annotations

import logging
import os
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import get_connection
from tortoise.migrations.api import migrate
from tortoise.migrations.executor import MigrationExecutor

from bot import locks  # PostgreSQL advisory locks (no-op on SQLite)

log = logging.getLogger(__name__)

MODELS = ["db.models"]
MIGRATIONS = "db.migrations"


def tortoise_config(database_url: str) -> dict[str, Any]:
    """Tortoise config for one database; times are stored in UTC."""
    url = database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://") :]
    connection: str | dict[str, Any] = url
    if url.startswith("sqlite://"):
        connection = expand_db_url(url)
        connection["engine"] = "db.sqlite"  # an update's statements run inline (db/sqlite.py)
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODELS,
                "default_connection": "default",
                "migrations": MIGRATIONS,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_dir(database_url: str) -> None:
    """The SQLite file's folder (0750) and the file (0640) made private to carebot's user
    and group whatever the umask, when carebot creates them: they hold owners' data. SQLite
    gives its -wal and -shm files the database file's mode."""
    path = sqlite_path(database_url)
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o750, exist_ok=True)
        os.chmod(folder, 0o750)
    if not os.path.exists(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:  # made meanwhile by another process: theirs stands
            return
        os.fchmod(fd, 0o640)
        os.close(fd)


def sqlite_path(database_url: str) -> str | None:
    """The file of a ``sqlite://`` URL (None for PostgreSQL and ``:memory:``)."""
    if not database_url.startswith("sqlite://"):
        return None
    path = database_url[len("sqlite://") :].split("?", 1)[0]
    return path if path and path != ":memory:" else None


async def migrate_database(database_url: str) -> list[str]:
    """Apply every pending migration (what `carebot migrate` and `carebot run` do); the
    names of those applied, in order (none: the schema was up to date)."""
    _ensure_sqlite_dir(database_url)
    applied: list[str] = []

    def progress(event: str, app: str, name: str) -> None:
        if event == "apply_done":
            applied.append(name)
            log.info("applied migration %s", name)

    # Several instances starting together on one PostgreSQL: one migrates, the others wait
    # for it and then find nothing left to do.
    async with locks.exclusive(database_url, locks.MIGRATIONS):
        await migrate(config=tortoise_config(database_url), progress=progress)
    await Tortoise.close_connections()
    return applied


async def pending_migrations(database_url: str) -> list[str]:
    """The migrations ``carebot migrate`` would apply, in order (the database must exist:
    on SQLite, check the file first, or this creates an empty one)."""
    config = tortoise_config(database_url)
    await Tortoise.init(config=config, init_connections=False)
    try:
        executor = MigrationExecutor(get_connection("default"), config["apps"])
        return [step.migration.name for step in await executor.plan() if not step.backward]
    finally:
        await close_database()


async def open_database(database_url: str, *, apply_migrations: bool = True) -> None:
    """Migrate, then open the connections the app uses."""
    if apply_migrations:
        await migrate_database(database_url)
    else:
        _ensure_sqlite_dir(database_url)
    await Tortoise.init(config=tortoise_config(database_url))


async def close_database() -> None:
    await Tortoise.close_connections()
    # Tortoise caches compiled INSERTs per connection *name*, process-wide; a process that
    # reopens "default" on another dialect (the test suite: SQLite, then PostgreSQL) would
    # otherwise reuse SQLite's placeholders against PostgreSQL.
    EXECUTOR_CACHE.clear()


# For the `tortoise` command line (makemigrations); reads nothing from the environment.
TORTOISE_ORM = tortoise_config("sqlite://data/makemigrations.sqlite3")
