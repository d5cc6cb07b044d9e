"""carebot's SQLite engine for Tortoise: an owner's update runs its statements inline, and its
commits reach the disk in shared flushes.

Tortoise reaches SQLite through aiosqlite, which runs every statement on a worker thread and
hands the answer back to the event loop. For the statements an owner's reply needs (a few
rows found by index, tens of microseconds each) the hop costs more than the statement, and it
costs it while Tortoise's connection lock is held: the task resumes, and lets the lock go,
only once the loop has worked through everything else that is ready. Under a burst of
replies that wait, not SQLite, limited the rate (docs/architecture.md, "SQLite statements of
an update"; measured with ``carebot bench``).

So, within :func:`inline_statements` (the Telegram update processor enters it for every
update):

- statements run on the loop's own thread. Everywhere else (reports, imports, the daily
  scan, campaign launches, the dispatcher, the console) they keep going to the worker
  thread, so a long query never stalls the loop. Both paths take Tortoise's lock, so the one
  sqlite3 connection is never used by two threads at once;
- commits are made with ``synchronous=NORMAL`` (written to the WAL, not yet fsynced), and a
  flusher thread fsyncs the WAL right after, one flush covering every commit made before it
  started: group commit. A killed process loses nothing (the OS has the pages); a power cut
  can lose the replies committed during the last flush, milliseconds, like the replies
  Telegram has already handed over and that wait in memory. Everything else commits with
  ``synchronous=FULL``, each commit on disk before it returns.

Use as the engine of a connection (``db.setup.tortoise_config`` does this for sqlite URLs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aiosqlite
from tortoise import connections
from tortoise.backends.sqlite.client import SqliteClient

log = logging.getLogger(__name__)

_INLINE: ContextVar[bool] = ContextVar("carebot_sqlite_inline", default=False)

FULL, NORMAL = "FULL", "NORMAL"


@contextmanager
def inline_statements() -> Iterator[None]:
    """Run this task's SQLite statements on the event loop's thread until the block ends.

    Only for work made of short, indexed statements: a statement run inline holds the loop
    for as long as it takes."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def statements_inline() -> bool:
    """True inside :func:`inline_statements`."""
    return _INLINE.get()


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # no WAL at the moment: everything is in the database file
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs a call at once when the caller asked for it, with
    that call's commit fsynced by :meth:`_flush` instead of by SQLite."""

    def __init__(self, connector: Any, wal_path: str | None) -> None:
        super().__init__(connector, 64)
        self._wal_path = wal_path  # None: no WAL (":memory:"), nothing to flush
        self._synchronous = FULL
        self._written = 0  # sqlite3 total_changes at the last inline call
        self._unflushed = False  # inline commits not yet fsynced
        self._flusher: asyncio.Task[None] | None = None
        self.flushes = 0  # how many fsyncs the flusher made (the tests read it)
        self._fsync_failed = False  # then every commit is FULL again

    def _set_synchronous(self, level: str) -> None:
        """Between transactions only (SQLite refuses the change inside one)."""
        conn = self._conn
        if self._synchronous != level and not conn.in_transaction:
            conn.execute(f"PRAGMA synchronous={level}")
            self._synchronous = level

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not (_INLINE.get() and self._running and self._connection is not None):
            if self._synchronous == FULL or (self._wal_path is None and not self._fsync_failed):
                # Tortoise's client leaves _execute untyped
                return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

            def full_then(*a: Any, **k: Any) -> Any:
                self._set_synchronous(FULL)
                return fn(*a, **k)

            return await super()._execute(full_then, *args, **kwargs)  # type: ignore[no-untyped-call]
        conn = self._conn
        if self._wal_path is not None:
            self._set_synchronous(NORMAL)  # the flusher fsyncs the commit
        elif self._fsync_failed:
            self._set_synchronous(FULL)  # it could not: SQLite syncs every commit again
        result = fn(*args, **kwargs)
        if conn.total_changes != self._written:
            self._written = conn.total_changes
            self._unflushed = True
        if self._unflushed and not conn.in_transaction:
            self._start_flush()
        return result

    def _start_flush(self) -> None:
        if self._wal_path is None or (self._flusher is not None and not self._flusher.done()):
            return  # the running flush starts another when it ends (see _flush)
        self._flusher = asyncio.get_running_loop().create_task(self._flush(self._wal_path))

    async def _flush(self, wal_path: str) -> None:
        while self._unflushed:
            self._unflushed = False  # commits made from here on wait for the next round
            try:
                await asyncio.to_thread(_fsync, wal_path)
            except OSError:
                # The disk refused: say so loudly, and have SQLite sync every commit itself.
                log.exception("fsync of %s failed; committing with synchronous=FULL", wal_path)
                self._wal_path = None
                self._fsync_failed = True
                return
            self.flushes += 1

    async def settle(self) -> None:
        """Wait until every inline commit made so far is on disk."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher

    async def close(self) -> None:
        await self.settle()
        await super().close()


class InlineSqliteClient(SqliteClient):
    """Tortoise's SQLite client on an :class:`InlineConnection`."""

    async def create_connection(self, with_db: bool) -> None:
        if self._connection:
            return
        filename = self.filename
        memory = filename == ":memory:" or filename.startswith("file::memory:")
        # a path computed once per connection, not I/O that waits
        wal = None if memory else os.path.abspath(filename) + "-wal"  # noqa: ASYNC240

        def connector() -> sqlite3.Connection:
            # Opened on the worker thread, used from the loop's thread too (never at the same
            # time: every use holds Tortoise's lock).
            return sqlite3.connect(filename, isolation_level=None, check_same_thread=False)

        connection = InlineConnection(connector, wal)
        await connection
        self._connection = connection
        connection._conn.row_factory = sqlite3.Row
        for pragma, val in self.pragmas.items():
            cursor = await connection.execute(f"PRAGMA {pragma}={val}")
            await cursor.close()
        if str(self.pragmas.get("journal_mode", "")).upper() != "WAL" \
                or "synchronous" in self.pragmas:
            # Without a WAL SQLite syncs every commit itself; and a level set in the URL is
            # the operator's choice, kept for every commit.
            connection._wal_path = None
        else:
            cursor = await connection.execute(f"PRAGMA synchronous={FULL}")
            await cursor.close()
        await self._post_connect()


client_class = InlineSqliteClient


async def settle_default() -> None:
    """Wait until the inline commits of the app's SQLite connection are on disk (a no-op on
    other databases): what the webhook waits for before telling Telegram "got it"."""
    connection = getattr(connections.get("default"), "_connection", None)
    if isinstance(connection, InlineConnection):
        await connection.settle()
