"""The database a one-shot command works on: opened (migrated) for it, closed after; one
line naming it and exit code 2 when it cannot be reached (bot/cli/reach.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.cli.reach import open_db
from bot.config import Settings
from bot.texts import Scripts
from db.setup import close_database


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[None]:
    """Open the (migrated) database for a one-shot command and close it afterwards."""
    await open_db(settings)
    try:
        yield
    finally:
        await close_database()


async def scripts(settings: Settings) -> Scripts:
    """The scripts as the running carebot uses them: the packaged texts, the dealership's
    folder and the console's edits (kept in the database, which must be open)."""
    loaded = Scripts(settings.scripts_dir)
    await loaded.refresh()
    return loaded
