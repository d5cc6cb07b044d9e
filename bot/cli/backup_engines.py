"""How a backup is made and put back, per database (``carebot backup``/``restore``,
bot/cli/backup.py).

SQLite: SQLite's online backup API (a consistent copy while carebot runs and writes; the
WAL's recent writes included), checked with ``PRAGMA integrity_check``; restoring copies the
backup into the live file the same way, so its owner and mode stay as they were.

PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore``, run as the user carebot runs as,
against the host, port, user and database of ``CAREBOT_DATABASE_URL`` (local or remote, no
superuser). The password goes to them in ``PGPASSWORD`` (never on a command line), or comes
from ``~/.pgpass``; the dump is written through a file descriptor carebot opened, so the
file is the carebot user's, mode 0640. Row counts are taken in the very snapshot pg_dump
dumps (``pg_export_snapshot``), so a restore's counts can be compared with them exactly."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from bot.cli.say import t
from bot.startup import StartupError

Counts = dict[str, int]
FILE_MODE = 0o640
PG_DUMP_HINT = ("apt-get install postgresql-client (its major version the server's or newer)")


class BackupError(Exception):
    """A backup or restore that could not be done; ``str()`` is the one line to print (no
    secret in it)."""


def create_private(path: Path) -> int:
    """A new file, mode 0640 whatever the umask; its descriptor (fails when it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


# ------------------------------------------------------------------------------- SQLite

def _sqlite_counts(conn: sqlite3.Connection) -> Counts:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            for name in names}


def _integrity(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def sqlite_backup(database: Path, dest: Path) -> Counts:
    """Copy the live database into the new file ``dest`` (0640, rollback journal so it is
    one self-contained file) and check it; its tables' row counts."""
    if not database.is_file():
        raise BackupError(f"the SQLite file {database} does not exist (CAREBOT_DATABASE_URL)")
    os.close(create_private(dest))
    try:
        source = sqlite3.connect(database)
        try:
            copy = sqlite3.connect(dest)
            try:
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
                verdict = _integrity(copy)
                if verdict != "ok":
                    raise BackupError(f"the copy of {database} failed its integrity check "
                                      f"({verdict}); the database itself may be damaged")
                return _sqlite_counts(copy)
            finally:
                copy.close()
        finally:
            source.close()
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def sqlite_restore(backup: Path, database: Path) -> Counts:
    """Put the backup's content into the live database file (created 0640 when missing);
    the restored tables' row counts."""
    try:
        source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        verdict = _integrity(source)
    except sqlite3.Error as exc:
        raise BackupError(f"{backup} is not a readable SQLite backup ({exc})") from exc
    try:
        if verdict != "ok":
            raise BackupError(f"{backup} failed its integrity check ({verdict}): take "
                              "another backup")
        if not database.exists():
            database.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            os.close(create_private(database))
        live = sqlite3.connect(database)
        try:
            source.backup(live)
            return _sqlite_counts(live)
        finally:
            live.close()
    finally:
        source.close()


def sqlite_has_data(database: Path) -> bool:
    """Whether the live file holds any table (worth a safety copy before a restore)."""
    if not database.is_file() or database.stat().st_size == 0:
        return False
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return bool(_sqlite_counts(conn))
    finally:
        conn.close()


# --------------------------------------------------------------------------- PostgreSQL

def pg_arguments(url: str) -> tuple[list[str], dict[str, str]]:
    """pg_dump's and pg_restore's connection options for ``url`` and the environment that
    carries the password and the TLS mode (never an argument: the process list shows
    those)."""
    parts = urlsplit(url)
    args: list[str] = []
    if parts.hostname:
        args += ["--host", parts.hostname]
    if parts.port:
        args += ["--port", str(parts.port)]
    if parts.username:
        args += ["--username", unquote(parts.username)]
    args += ["--dbname", unquote(parts.path.lstrip("/")) or "carebot", "--no-password"]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    query = parse_qs(parts.query)
    mode = (query.get("sslmode") or query.get("ssl") or [""])[0]
    if mode in {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}:
        env["PGSSLMODE"] = mode
    return args, env


def _dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StartupError(t("backup.no_tool", name=name, hint=PG_DUMP_HINT))
    return path


async def _run(argv: list[str], env: dict[str, str], password: str | None,
               stdout: int | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout if stdout is not None else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        text = " ".join(err.decode(errors="replace").split()) or f"exit code {proc.returncode}"
        if password:
            text = text.replace(password, "***")
        raise BackupError(f"{Path(argv[0]).name} failed: {text}")


async def _pg_counts(conn: asyncpg.Connection) -> Counts:
    names = [r["tablename"] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "ORDER BY tablename")]
    return {name: int(await conn.fetchval(f'SELECT count(*) FROM "{name}"'))
            for name in names}


async def pg_backup(url: str, dest: Path) -> Counts:
    """pg_dump (custom format) into the new file ``dest``, 0640; the row counts of the
    snapshot it dumped."""
    pg_dump = _tool("pg_dump")
    args, env = pg_arguments(url)
    conn = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        fd = create_private(dest)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                counts = await _pg_counts(conn)
                await _run([pg_dump, "--format=custom", f"--snapshot={snapshot}", *args],
                           env, urlsplit(url).password, stdout=fd)
        except BaseException:
            dest.unlink(missing_ok=True)  # noqa: ASYNC240 - cleaning up a failure
            raise
        finally:
            os.close(fd)
    finally:
        await conn.close()
    return counts


async def pg_has_data(url: str) -> bool:
    conn = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        return bool(await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"))
    finally:
        await conn.close()


async def pg_restore(backup: Path, url: str) -> Counts:
    """Drop every table of the database's schema (newer migrations' too), then pg_restore
    the dump in one transaction, without owners or grants (the URL's user owns it all)."""
    tool = _tool("pg_restore")
    with backup.open("rb") as f:
        if f.read(5) != b"PGDMP":
            raise BackupError(f"{backup} is not a pg_dump custom-format file "
                              "(carebot backup writes those)")
    args, env = pg_arguments(url)
    conn = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        async with conn.transaction():
            for name in await _pg_counts(conn):
                await conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
        await _run([tool, "--no-owner", "--no-privileges", "--single-transaction",
                    "--exit-on-error", *args, str(backup)], env, urlsplit(url).password)
        return await _pg_counts(conn)
    finally:
        await conn.close()
