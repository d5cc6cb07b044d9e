"""The database a one-shot command works on: opened (migrated) for it, closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import Settings
from db.setup import close_database, open_database


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[None]:
    """Open the (migrated) database for a one-shot command and close it afterwards."""
    await open_database(settings.database_url)
    try:
        yield
    finally:
        await close_database()
