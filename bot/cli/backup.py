"""``carebot backup`` and ``carebot restore``: the same two commands for SQLite and
PostgreSQL (docs/deploy.md, "Backups" and "Restore"; the engines in backup_engines.py).

``carebot backup`` writes ``carebot-<UTC time>.sqlite3`` or ``.dump`` into a folder the
user it runs as owns (``--to``, default /var/backups/carebot), mode 0640, written under a
temporary name and renamed when complete and checked, and with ``--keep-days N`` deletes
the backups there older than N days. ``carebot restore FILE`` first saves what the database
holds now beside FILE (``before-restore-…``, so the newest ``carebot-*`` there stays
the one restored), then puts FILE back. Both print the
tables' row counts, so a restore drill compares the two. Nothing printed holds a secret."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.cli import backup_engines as engines
from bot.cli.backup_engines import BackupError, Counts
from bot.cli.reach import DATABASE_ERRORS, database_problem
from bot.cli.say import fail, say
from bot.clock import SystemClock
from bot.config import Settings, mask_url
from bot.startup import StartupError
from db.setup import sqlite_path

DEFAULT_FOLDER = Path("/var/backups/carebot")
PATTERNS = ("carebot-*.sqlite3", "carebot-*.dump", "before-restore-*.sqlite3",
            "before-restore-*.dump")
SHOWN = ("customer", "vehicle", "touchpoint", "ticket", "staff")  # named in the summary


def summary(counts: Counts) -> str:
    """``37 tables, 1234 rows (customer 120, vehicle 130, …)``: the line a drill compares."""
    shown = ", ".join(f"{t} {counts[t]}" for t in SHOWN if t in counts)
    return f"{len(counts)} tables, {sum(counts.values())} rows ({shown})"


def _stamp() -> str:
    return SystemClock().now().strftime("%Y-%m-%dT%H%M%SZ")


def _suffix(settings: Settings) -> str:
    return ".sqlite3" if sqlite_path(settings.database_url) else ".dump"


async def write_backup(settings: Settings, folder: Path, name: str) -> tuple[Path, Counts]:
    """One backup into ``folder/name``: written as ``.partial``, renamed once checked."""
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)  # noqa: ASYNC240 - once, in a one-shot command
    final = folder / name
    partial = folder / (name + ".partial")
    url = settings.database_url
    path = sqlite_path(url)
    try:
        if path is not None:
            counts = await asyncio.to_thread(engines.sqlite_backup, Path(path), partial)
        else:
            counts = await engines.pg_backup(url, partial)
    except DATABASE_ERRORS as exc:
        raise StartupError(database_problem(exc, url)) from exc
    partial.rename(final)
    return final, counts


def prune(folder: Path, keep_days: int, spare: Path) -> list[Path]:
    """Delete carebot's backups in ``folder`` older than ``keep_days`` (by modification
    time), never ``spare`` (the one just written); those deleted."""
    cutoff = (SystemClock().now() - timedelta(days=keep_days)).timestamp()
    removed = []
    for pattern in PATTERNS:
        for file in sorted(folder.glob(pattern)):
            if file != spare and file.is_file() and file.stat().st_mtime < cutoff:
                file.unlink()
                removed.append(file)
    return removed


async def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    folder: Path = args.to
    try:
        file, counts = await write_backup(settings, folder,
                                          f"carebot-{_stamp()}{_suffix(settings)}")
    except (BackupError, OSError) as exc:
        fail("backup", "backup.failed", why=exc)
        return 1
    say("backup.done", database=mask_url(settings.database_url), file=file,
        summary=summary(counts))
    if args.keep_days is not None:
        removed = prune(folder, args.keep_days, file)
        say("backup.pruned", n=len(removed), days=args.keep_days, folder=folder)
    return 0


async def _has_data(settings: Settings) -> bool:
    path = sqlite_path(settings.database_url)
    if path is not None:
        return await asyncio.to_thread(engines.sqlite_has_data, Path(path))
    return await engines.pg_has_data(settings.database_url)


async def _put_back(settings: Settings, file: Path) -> Counts:
    url = settings.database_url
    path = sqlite_path(url)
    expected = ".sqlite3" if path is not None else ".dump"
    if file.suffix != expected:
        what = "SQLite" if path is not None else "PostgreSQL"
        raise BackupError(f"{file} is not a {what} backup ({expected}): CAREBOT_DATABASE_URL "
                          f"is {mask_url(url)}")
    if path is not None:
        return await asyncio.to_thread(engines.sqlite_restore, file, Path(path))
    return await engines.pg_restore(file, url)


async def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    file: Path = args.file
    url = settings.database_url
    if not file.is_file():  # noqa: ASYNC240 - one stat at start
        fail("restore", "backup.no_file", file=file)
        return 1
    saved: Path | None = None
    try:
        if await _has_data(settings):
            saved, _ = await write_backup(settings, file.parent,
                                          f"before-restore-{_stamp()}{_suffix(settings)}")
            say("backup.saved_before", database=mask_url(url), file=saved)
        counts = await _put_back(settings, file)
    except DATABASE_ERRORS as exc:
        raise StartupError(database_problem(exc, url)) from exc
    except (BackupError, OSError) as exc:
        if saved:
            fail("restore", "backup.failed_saved", why=exc, saved=saved)
        else:
            fail("restore", "backup.failed", why=exc)
        return 1
    say("backup.restored", file=file, database=mask_url(url), summary=summary(counts))
    say("backup.next")
    return 0


def add_commands(sub: Any) -> None:
    backup = sub.add_parser(
        "backup", help="back up the database (SQLite or PostgreSQL) into a folder, safe "
                       "while carebot runs")
    backup.add_argument("--to", type=Path, default=DEFAULT_FOLDER, metavar="FOLDER",
                        help=f"where the backup goes (default {DEFAULT_FOLDER})")
    backup.add_argument("--keep-days", type=int, default=None, metavar="N",
                        help="then delete carebot's backups there older than N days")
    backup.set_defaults(run=cmd_backup)
    restore = sub.add_parser(
        "restore", help="put a backup back into the database (stop carebot first); what "
                        "it held is saved beside FILE first")
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.set_defaults(run=cmd_restore)
