"""What the benchmarks share: the figure, where their data lives, child processes, seeding.

Data is seeded with plain ``executemany`` inserts into a copy of one freshly migrated
database; measurements that need a process of their own (peak memory, carebot serving a
webhook) run in a child ``python`` (``benchmarks.child``) whose peak RSS is read from
``/proc/self/status``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.models import Model

from bot.config import Settings
from bot.vin import check_digit

ROOT = Path(__file__).resolve().parent.parent  # the checkout: bot/, db/ and benchmarks/
MB = 1024 * 1024
POSTGRES_URL = os.environ.get("CAREBOT_BENCH_POSTGRES_URL",
                              "postgres://postgres@127.0.0.1:5432/test")


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str
    met: bool
    baseline: float | None = None
    note: str = ""
    database: str = "SQLite"  # set by cmd_bench for each pass

    @property
    def ratio(self) -> str:
        if not self.baseline:
            return "–"
        return f"{self.value / self.baseline:.2f}×"


def cell(value: float) -> str:
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def size(full: int, scale: float, minimum: int) -> int:
    return max(minimum, round(full * scale))


# --------------------------------------------------------------------------- databases


class Target:
    """Where one pass of the benchmarks keeps its data: SQLite files in a temporary folder,
    or databases on a PostgreSQL server, each benchmark's own (created from a template
    migrated once, dropped when the benchmark ends)."""

    def __init__(self, label: str, server: str | None = None) -> None:
        self.label = label
        self.server = server  # a URL of an existing database on the server, to connect through
        self.description = f"SQLite {sqlite3.sqlite_version}, a file in a temporary folder"
        self._template: str | None = None
        self._created: list[str] = []

    def _url(self, dbname: str) -> str:
        assert self.server is not None
        return f"{self.server.rpartition('/')[0]}/{dbname}"

    async def _admin(self, *statements: str) -> str:
        import asyncpg

        assert self.server is not None
        url = self.server.replace("postgres://", "postgresql://", 1)
        conn = await asyncpg.connect(url, timeout=5)
        try:
            for sql in statements:
                await conn.execute(sql)
            version: str = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        return version

    async def reachable(self) -> str:
        """'' when the server answers (and describes it), else why not."""
        try:
            version = await self._admin()
        except Exception as exc:
            return f"PostgreSQL not reachable at {self.server}: {exc!r}"
        host = self.server.rpartition("@")[2].rpartition("/")[0] if self.server else ""
        self.description = (f"PostgreSQL {version.split()[0]} at {host}, a database created "
                            "and dropped per benchmark")
        return ""

    async def fresh_postgres(self, name: str) -> str:
        from db.setup import migrate_database

        prefix = f"carebot_bench_{os.getpid()}"
        if self._template is None:
            template = f"{prefix}_template"
            await self._admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)',
                              f'CREATE DATABASE "{template}"')
            self._template = template
            await migrate_database(self._url(template))
        dbname = f"{prefix}_{name}"
        await self._admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)',
                          f'CREATE DATABASE "{dbname}" TEMPLATE "{self._template}"')
        self._created.append(dbname)
        return self._url(dbname)

    async def drop_created(self, *, template: bool = False) -> None:
        """Drop the benchmark's databases (and the template, at the end of the pass)."""
        names, self._created = self._created, []
        if template and self._template is not None:
            names.append(self._template)
            self._template = None
        if names and self.server is not None:
            await self._admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names))


_current = Target("SQLite")


def current_target() -> Target:
    """The pass being run (set by ``cmd_bench``): SQLite unless it is PostgreSQL's."""
    return _current


def use_target(target: Target) -> None:
    global _current
    _current = target


class Databases:
    """Fresh SQLite databases in one folder, each a copy of a database migrated once per
    process (the migrations take longer than most smoke runs); on the PostgreSQL pass, a
    database of its own on the server instead."""

    _template: bytes | None = None

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def fresh(self, name: str) -> str:
        from db.setup import migrate_database

        target = current_target()
        if target.server is not None:  # the PostgreSQL pass: a database of its own
            return await target.fresh_postgres(name)
        if Databases._template is None:
            template = self.folder / "template.sqlite3"
            await migrate_database(f"sqlite://{template}")
            with sqlite3.connect(template) as conn:  # fold the WAL into the file
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            Databases._template = template.read_bytes()
            template.unlink()
        path = self.folder / f"{name}.sqlite3"
        path.write_bytes(Databases._template)
        return f"sqlite://{path}"


# --------------------------------------------------------------------------- memory


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss() -> int:
    """Resident memory now, in bytes (the peak so far where /proc is missing)."""
    kb = _proc_status_kb("VmRSS")
    return kb * 1024 if kb is not None else _maxrss()


def _maxrss() -> int:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_kb if sys.platform == "darwin" else peak_kb * 1024


def reset_peak() -> bool:
    """Reset this process's peak RSS (Linux: ``5`` into /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak() -> int:
    """Peak resident memory since the last reset, in bytes."""
    kb = _proc_status_kb("VmHWM")
    return kb * 1024 if kb is not None else _maxrss()


# --------------------------------------------------------------------------- child processes

CHILD_CODE = ("import sys; from benchmarks.child import child_main; "
              "sys.exit(child_main(sys.argv[1:]))")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with the checkout first on the path (``bot`` and ``benchmarks``)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, **(extra or {}),
            "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


async def in_child(task: str, params: dict[str, Any], *,
                   extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``task`` in a fresh ``python`` (its own memory), return what it reports."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD_CODE, task, json.dumps(params), cwd=str(ROOT),
        env=child_env(extra_env), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {task!r} failed ({proc.returncode}):\n"
                           f"{err.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def child_params(settings: Settings) -> dict[str, Any]:
    """What a child needs of the settings (never secrets: they would be on a command line)."""
    return {"timezone": settings.timezone, "quiet_hours": settings.quiet_hours}


def child_settings(params: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {"_env_file": None, "timezone": params["timezone"],
                              "quiet_hours": params["quiet_hours"]}
    return Settings(**values)


# --------------------------------------------------------------------------- seeding


async def seed(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]],
               now: datetime, chunk: int = 20_000) -> int:
    """Insert plain rows fast (``executemany``); other columns get the model's defaults."""
    from bot.intake.bulk import Bulk

    bulk = Bulk(Tortoise.get_connection("default"), now)
    batch: list[Sequence[Any]] = []
    count = 0
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            await bulk.insert(model, fields, batch)
            count += len(batch)
            batch = []
    if batch:
        await bulk.insert(model, fields, batch)
        count += len(batch)
    return count


async def check_ids(model: type[Model], count: int) -> None:
    """Seeding relies on a fresh table numbering its rows 1..count in insertion order."""
    table = model._meta.db_table
    _, rows = await Tortoise.get_connection("default").execute_query(
        f'SELECT MIN("id"), MAX("id"), COUNT(*) FROM "{table}"')
    low, high, n = tuple(rows[0])
    if (low, high, n) != (1, count, count):
        raise RuntimeError(f"{table}: ids {low}..{high} for {n} rows, expected 1..{count}")


async def stream(table: str, columns: Sequence[str], batch: int = 10_000
                 ) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Every row of ``table`` in id order, ``batch`` at a time (keyset paging: flat memory)."""
    conn = Tortoise.get_connection("default")
    mark = "$1" if conn.capabilities.dialect == "postgres" else "?"
    names = ", ".join(f'"{c}"' for c in ("id", *columns))
    sql = f'SELECT {names} FROM "{table}" WHERE "id" > {mark} ORDER BY "id" LIMIT {batch}'
    last = 0
    while True:
        _, rows = await conn.execute_query(sql, [last])
        if not rows:
            return
        out = [tuple(r) for r in rows]
        last = out[-1][0]
        yield out


def vin(i: int) -> str:
    """A distinct valid VIN for each ``i`` below 8,000,000 (check digit right)."""
    body = f"LSVAU2180T{'ABCDEFGH'[(i // 1_000_000) % 8]}{i % 1_000_000:06d}"
    return body[:8] + check_digit(body) + body[9:]
