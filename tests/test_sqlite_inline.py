"""db/sqlite.py: an update's SQLite statements run on the loop's thread, everything else on
aiosqlite's worker thread, and the two never meet inside one transaction."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tortoise import connections
from tortoise.transactions import in_transaction

from bot import owners
from db.models import Conversation
from db.setup import close_database, open_database
from db.sqlite import InlineSqliteClient, inline_statements, statements_inline


@pytest_asyncio.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[None]:
    """SQLite only: the inline engine is SQLite's (PostgreSQL's driver is asynchronous)."""
    await open_database(f"sqlite://{tmp_path}/inline.sqlite3")
    try:
        yield
    finally:
        await close_database()


def _connection() -> Any:
    client = connections.get("default")
    assert isinstance(client, InlineSqliteClient)
    return client._connection


async def _thread_of_statement() -> int:
    await connections.get("default").create_connection(with_db=True)
    _connection()._conn.create_function("thread_ident", 0, threading.get_ident)
    rows = await connections.get("default").execute_query_dict("SELECT thread_ident() AS t")
    return int(rows[0]["t"])


async def test_statements_run_on_the_loop_thread_only_inside_the_block(sqlite_db: None) -> None:
    loop_thread = threading.get_ident()
    assert await _thread_of_statement() != loop_thread
    with inline_statements():
        assert statements_inline()
        assert await _thread_of_statement() == loop_thread
    assert not statements_inline()
    assert await _thread_of_statement() != loop_thread


async def test_inline_writes_never_land_in_another_tasks_transaction(sqlite_db: None) -> None:
    """A worker-thread transaction that rolls back, one that commits, and inline upserts from
    many tasks, all at once: the rollback takes only its own rows."""
    started = asyncio.Event()

    async def rolled_back() -> None:
        with pytest.raises(RuntimeError):
            async with in_transaction():
                for i in range(20):
                    await Conversation.create(telegram_user_id=-1 - i, state="rolled back")
                    started.set()
                    await asyncio.sleep(0)
                raise RuntimeError("roll back")

    async def committed() -> None:
        await started.wait()
        async with in_transaction():
            for i in range(20):
                await Conversation.create(telegram_user_id=10_000 + i, state="committed")
                await asyncio.sleep(0)

    async def owner(user_id: int) -> None:
        await started.wait()
        with inline_statements():
            await owners.set_conversation(user_id, "inline", {"n": user_id})
            await asyncio.sleep(0)
            await owners.set_conversation(user_id, "inline again", {"n": user_id})

    await asyncio.gather(rolled_back(), committed(), *(owner(u) for u in range(1, 101)))
    assert await Conversation.filter(state="rolled back").count() == 0
    assert await Conversation.filter(state="committed").count() == 20
    assert await Conversation.filter(state="inline again").count() == 100
    assert await Conversation.all().count() == 120


async def test_set_conversation_is_one_row_per_user(db: str) -> None:
    await owners.set_conversation(7, "survey_category", {"touchpoint_id": 1})
    await owners.set_conversation(7, "survey_comment", {"touchpoint_id": 2})
    await owners.set_conversation(8, "awaiting_contact")
    conv = await owners.get_conversation(7)
    assert conv is not None
    assert (conv.state, conv.data) == ("survey_comment", {"touchpoint_id": 2})
    other = await owners.get_conversation(8)
    assert other is not None and (other.state, other.data) == ("awaiting_contact", {})
    assert await Conversation.all().count() == 2


async def _synchronous() -> int:
    rows = await connections.get("default").execute_query_dict("PRAGMA synchronous")
    return int(rows[0]["synchronous"])


async def test_inline_commits_are_fsynced_by_the_flusher_others_by_sqlite(
        sqlite_db: None) -> None:
    await Conversation.create(telegram_user_id=1, state="worker thread")
    conn = _connection()
    assert await _synchronous() == 2  # FULL: SQLite syncs the commit itself
    assert conn.flushes == 0
    with inline_statements():
        for user_id in range(2, 12):
            await owners.set_conversation(user_id, "inline")
        assert await _synchronous() == 1  # NORMAL: the flusher syncs
    await conn.settle()
    assert 1 <= conn.flushes <= 10  # one flush may cover several commits
    flushes = conn.flushes
    await Conversation.create(telegram_user_id=99, state="worker thread again")
    assert await _synchronous() == 2
    await conn.settle()
    assert conn.flushes == flushes  # a FULL commit needs no flush


async def test_a_level_set_in_the_url_is_kept(tmp_path: Path) -> None:
    await open_database(f"sqlite://{tmp_path}/normal.sqlite3?synchronous=NORMAL")
    try:
        with inline_statements():
            await owners.set_conversation(1, "inline")
        await Conversation.create(telegram_user_id=2, state="worker thread")
        assert await _synchronous() == 1
        await _connection().settle()
        assert _connection().flushes == 0
    finally:
        await close_database()


_KILLED_WRITER = """
import asyncio, os, signal, sys
from bot import owners
from db.setup import open_database
from db.sqlite import inline_statements

async def main():
    await open_database(sys.argv[1])
    with inline_statements():
        for user_id in range(1, 201):
            await owners.set_conversation(user_id, "before the kill")
    os.kill(os.getpid(), signal.SIGKILL)  # before any flush could run

asyncio.run(main())
"""


async def test_a_killed_process_keeps_every_inline_commit(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/killed.sqlite3"
    root = Path(__file__).resolve().parent.parent
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_WRITER, url, cwd=str(root),
        env={**os.environ, "PYTHONPATH": str(root)}, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    await open_database(url)
    try:
        assert await Conversation.filter(state="before the kill").count() == 200
    finally:
        await close_database()
