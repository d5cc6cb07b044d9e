"""`carebot bench`: performance figures measured side by side with a naive baseline.

Each benchmark runs against real parts on this machine (SQLite in a temporary folder, the
Telegram emulator over loopback HTTP) and reports its figure beside the target and the
baseline's figure from the same run, then writes ``docs/benchmarks.md``. When a PostgreSQL
server answers (``CAREBOT_BENCH_POSTGRES_URL``, ``--postgres``) every benchmark runs again
there, each in a database of its own created from a migrated template and dropped after it;
those figures are reported beside, the targets being judged on SQLite.

Benchmarks: ``dispatch`` (the outbox against the emulator's enforced rate), ``import``
(deliveries with their journeys from CSV), ``scan`` (the daily occasions scan), ``kpi`` (a
month's report), ``campaign`` (audience and launch) and ``webhook`` (owners' replies POSTed to
carebot in its own process by a load generator in another). ``--scale`` multiplies every size, so
the test suite runs them all in seconds. Data is seeded with plain ``executemany`` inserts
into a copy of one freshly migrated database; measurements that need a process of their own
(peak memory) run in a child ``python`` whose peak RSS is read from ``/proc/self/status``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import resource
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import Tortoise
from tortoise.models import Model

from bot.clock import FakeClock, SystemClock
from bot.config import Settings
from bot.vin import check_digit

BENCHMARKS_MD = Path("docs/benchmarks.md")

# Full sizes (``--scale 1``) and the sizes of the one-row-at-a-time baselines' samples.
IMPORT_ROWS = 100_000
IMPORT_SAMPLE = 2_000
SCAN_OWNERS = 1_000_000
KPI_SCORES = 1_000_000
CAMPAIGN_OWNERS = 100_000
CAMPAIGN_SAMPLE = 2_000
DISPATCH_OWNERS = 3_000
MB = 1024 * 1024


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


def _cell(value: float) -> str:
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def _size(full: int, scale: float, minimum: int) -> int:
    return max(minimum, round(full * scale))


# --------------------------------------------------------------------------- helpers


class _Databases:
    """Fresh SQLite databases in one folder, each a copy of a database migrated once per
    process (the migrations take longer than most smoke runs)."""

    _template: bytes | None = None

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def fresh(self, name: str) -> str:
        from db.setup import migrate_database

        if _TARGET.server is not None:  # the PostgreSQL pass: a database of its own
            return await _TARGET.fresh_postgres(name)
        if _Databases._template is None:
            template = self.folder / "template.sqlite3"
            await migrate_database(f"sqlite://{template}")
            with sqlite3.connect(template) as conn:  # fold the WAL into the file
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _Databases._template = template.read_bytes()
            template.unlink()
        path = self.folder / f"{name}.sqlite3"
        path.write_bytes(_Databases._template)
        return f"sqlite://{path}"


class _Target:
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
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
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


_TARGET = _Target("SQLite")
POSTGRES_URL = os.environ.get("CAREBOT_BENCH_POSTGRES_URL",
                              "postgres://postgres@127.0.0.1:5432/test")


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss() -> int:
    """Resident memory now, in bytes (the peak so far where /proc is missing)."""
    kb = _proc_status_kb("VmRSS")
    return kb * 1024 if kb is not None else _maxrss()


def _maxrss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux: ``5`` into /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak() -> int:
    """Peak resident memory since the last reset, in bytes."""
    kb = _proc_status_kb("VmHWM")
    return kb * 1024 if kb is not None else _maxrss()


_CHILD_CODE = "import sys; from bot.bench import child_main; sys.exit(child_main(sys.argv[1:]))"


async def _in_child(task: str, params: dict[str, Any], *,
                    extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``task`` in a fresh ``python`` (its own memory), return what it reports."""
    root = Path(__file__).resolve().parent.parent
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, **(extra_env or {}),
           "PYTHONPATH": str(root) + (os.pathsep + path if path else "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD_CODE, task, json.dumps(params), cwd=str(root), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {task!r} failed ({proc.returncode}):\n"
                           f"{err.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _child_params(settings: Settings) -> dict[str, Any]:
    """What a child needs of the settings (never secrets: they would be on a command line)."""
    return {"timezone": settings.timezone, "quiet_hours": settings.quiet_hours}


def _child_settings(params: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {"_env_file": None, "timezone": params["timezone"],
                              "quiet_hours": params["quiet_hours"]}
    return Settings(**values)


async def _child_import(params: dict[str, Any]) -> dict[str, Any]:
    from bot.campaigns.journeys import journey_rules
    from bot.intake import import_deliveries_file
    from db.setup import close_database, open_database

    settings = _child_settings(params)
    now = datetime.fromisoformat(params["now"])
    await open_database(params["db"], apply_migrations=False)
    try:
        before = _rss()
        _reset_peak()
        started = time.perf_counter()
        result = await import_deliveries_file(Path(params["csv"]), rules=journey_rules(settings),
                                              now=now)
        seconds = time.perf_counter() - started
        peak = _peak()
    finally:
        await close_database()
    return {"seconds": seconds, "before": before, "peak": peak, "total": result.total,
            "created": result.created, "failed": result.failed}


async def _child_scan(params: dict[str, Any]) -> dict[str, Any]:
    """The scan over each database of ``params["dbs"]`` in turn, peak RSS reset before each."""
    from bot.campaigns.occasions import occasion_rules, run_scan
    from db.setup import close_database, open_database

    settings = _child_settings(params)
    now = datetime.fromisoformat(params["now"])
    runs: list[dict[str, Any]] = []
    for url in params["dbs"]:
        await open_database(url, apply_migrations=False)
        try:
            rules = occasion_rules(settings)
            before = _rss()
            _reset_peak()
            started = time.perf_counter()
            report = await run_scan(now, rules)
            seconds = time.perf_counter() - started
            peak = _peak()
        finally:
            await close_database()
        runs.append({"seconds": seconds, "before": before, "peak": peak,
                     "written": report.written})
    return {"runs": runs}


_CHILD_TASKS: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]] = {
    "import": _child_import,
    "scan": _child_scan,
    "webhook_app": lambda p: _child_webhook_app(p),
    "webhook_load": lambda p: _child_webhook_load(p),
}


def child_main(argv: Sequence[str]) -> int:
    """Entry point of a benchmark's child process: ``TASK PARAMS-JSON``; prints JSON."""
    task, params = argv[0], json.loads(argv[1])
    print(json.dumps(asyncio.run(_CHILD_TASKS[task](params))), flush=True)
    return 0


async def _seed(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]],
                now: datetime, chunk: int = 20_000) -> int:
    """Insert plain rows fast (``executemany``); other columns get the model's defaults."""
    from bot.intake import _Bulk

    bulk = _Bulk(Tortoise.get_connection("default"), now)
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


async def _check_ids(model: type[Model], count: int) -> None:
    """Seeding relies on a fresh table numbering its rows 1..count in insertion order."""
    table = model._meta.db_table
    _, rows = await Tortoise.get_connection("default").execute_query(
        f'SELECT MIN("id"), MAX("id"), COUNT(*) FROM "{table}"')
    low, high, n = tuple(rows[0])
    if (low, high, n) != (1, count, count):
        raise RuntimeError(f"{table}: ids {low}..{high} for {n} rows, expected 1..{count}")


async def _stream(table: str, columns: Sequence[str], batch: int = 10_000
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


def _vin(i: int) -> str:
    """A distinct valid VIN for each ``i`` below 8,000,000 (check digit right)."""
    body = f"LSVAU2180T{'ABCDEFGH'[(i // 1_000_000) % 8]}{i % 1_000_000:06d}"
    return body[:8] + check_digit(body) + body[9:]



@asynccontextmanager
async def _emulator_process(*, rate: float, users: range) -> AsyncIterator[dict[str, str]]:
    """The Telegram emulator in a process of its own (``python -m bot.sandbox.serve``),
    enforcing ``rate`` msg/s and 1 s per chat (no burst: the strictest reading), with
    ``users`` as owners who started the bot.
    Yields what it printed: ``api_url``, ``token`` and ``stats_url``."""
    root = Path(__file__).resolve().parent.parent
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(root) + (os.pathsep + path if path else "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sandbox.serve", "--global-rate", repr(rate),
        "--per-chat-interval", "1", "--per-chat-burst", "1", "--users", f"{users.start}:{len(users)}",
        "--until-stdin-closes", cwd=str(root), env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if not line:
            raise RuntimeError(f"the emulator process ended at start (code {await proc.wait()})")
        yield json.loads(line)
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _emulator_stats(stats_url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(stats_url) as response:
        response.raise_for_status()
        stats: dict[str, Any] = await response.json()
    return stats


async def bench_dispatch(*, owners: int, rate: float, doubles: float = 0.1) -> list[Figure]:
    """Dispatch ``owners`` touchpoints (+ a second one for some owners) through the emulator
    enforcing ``rate`` msg/s and 1 s per chat; baseline: PTB's AIORateLimiter send loop.

    Each run gets a fresh emulator in a process of its own, as Telegram would be: the limits
    are enforced by a server that shares neither the sender's event loop nor its process,
    and the figures (429s, gaps, the busiest second) are the server's own count."""
    from telegram import Bot
    from telegram.error import RetryAfter
    from telegram.ext import AIORateLimiter, ExtBot

    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.limits import Limits
    from bot.delivery.sender import Sender
    from bot.telegram_http import AiohttpRequest
    from bot.texts import Scripts
    from db.models import Customer, Touchpoint
    from db.setup import close_database, open_database

    clock = FakeClock(SystemClock().now())
    base_id = 10_000_000
    users = range(base_id, base_id + owners)
    with tempfile.TemporaryDirectory() as tmp:
        scripts_dir = Path(tmp) / "scripts"
        (scripts_dir / "zh_CN").mkdir(parents=True)
        (scripts_dir / "zh_CN" / "bench.html").write_text(
            "{{ customer.name }}您好！这是{{ dealer.name }}的测试消息。", encoding="utf-8"
        )
        await open_database(await _Databases(Path(tmp)).fresh("dispatch"),
                            apply_migrations=False)
        try:
            await Customer.bulk_create([
                Customer(name=f"车主{i}", phone=f"+86139{i:08d}", link_token=f"bench{i}",
                         telegram_user_id=base_id + i, telegram_chat_id=base_id + i)
                for i in range(owners)
            ], batch_size=1000)
            ids = await Customer.all().order_by("id").values_list("id", flat=True)
            second = int(owners * doubles)
            rows = [Touchpoint(customer_id=cid, kind="bench", occasion_key="a",
                               due_at=clock.now()) for cid in ids]
            rows += [Touchpoint(customer_id=cid, kind="bench", occasion_key="b",
                                due_at=clock.now()) for cid in ids[:second]]
            await Touchpoint.bulk_create(rows, batch_size=1000)
            total = len(rows)
            async with _emulator_process(rate=rate, users=users) as emu:
                # The limiter is given the enforced rate itself: it counts each send until
                # its answer is back, so the server never sees more (no margin needed).
                values: dict[str, Any] = {
                    "_env_file": None, "bot_token": emu["token"],
                    "telegram_api_url": emu["api_url"], "send_rate": rate,
                    "per_chat_interval": 1.0, "quiet_hours": "off",
                    "dispatch_batch": 500, "dispatch_concurrency": 64,
                }
                settings = Settings(**values)
                # the HTTP client the app's bot uses (bot.app), for ours and the baseline alike
                bot = Bot(emu["token"], base_url=f"{emu['api_url']}/bot",
                          request=AiohttpRequest(connection_pool_size=256))
                async with bot:
                    limits = Limits(rate, per_chat_interval=1.0, per_chat_burst=1)
                    dispatcher = Dispatcher(Sender(bot, limits), settings, clock,
                                            Scripts(scripts_dir))
                    started = time.perf_counter()
                    sent = 0
                    while sent < total:
                        report = await dispatcher.dispatch_due()
                        sent += report.sent
                        if report.sent == 0:
                            clock.advance(timedelta(seconds=5))  # only retries left
                    elapsed = time.perf_counter() - started
                ours = await _emulator_stats(emu["stats_url"])
        finally:
            await close_database()

    # Baseline: PTB's AIORateLimiter, every message gathered at once, on a fresh server.
    targets = [base_id + i for i in range(owners)] + [base_id + i for i in range(second)]
    async with _emulator_process(rate=rate, users=users) as emu:
        limiter: Any = AIORateLimiter(overall_max_rate=rate, overall_time_period=1,
                                      max_retries=10)
        ext = ExtBot(emu["token"], base_url=f"{emu['api_url']}/bot", rate_limiter=limiter,
                     request=AiohttpRequest(connection_pool_size=256))
        sem = asyncio.Semaphore(64)

        async def send(chat_id: int) -> None:
            async with sem:
                try:
                    await ext.send_message(chat_id, "baseline")
                except RetryAfter:
                    pass

        async with ext:
            started = time.perf_counter()
            await asyncio.gather(*(send(c) for c in targets))
            base_elapsed = time.perf_counter() - started
        base = await _emulator_stats(emu["stats_url"])
    ours_rate, base_rate = total / elapsed, total / base_elapsed
    ours_429, base_429 = int(ours["429"]), int(base["429"])
    ours_gap = float(ours["min_send_gap"] or 0.0)
    check = "" if ours["sent"] == total else f"; CHECK: the server got {ours['sent']:,}"
    share = ours_rate / rate
    return [
        Figure(f"dispatch: share of the enforced {rate:g} msg/s ({total:,} messages)",
               share * 100, "%", "≥ 95 %", share >= 0.95, base_rate / rate * 100,
               note=f"the emulator in a process of its own; busiest second as it counted: "
                    f"{ours['max_per_second']} (baseline {base['max_per_second']}){check}"),
        Figure("dispatch: 429 answers received", ours_429, "", "0", ours_429 == 0,
               float(base_429), note="baseline retries its 429s inside PTB"),
        Figure("dispatch: shortest gap between two messages to one chat", ours_gap, "s",
               "≥ 1 s", ours_gap >= 0.999),
    ]


# --------------------------------------------------------------------------- import

_CSV_COLUMNS = ("vin", "plate", "model", "owner_name", "phone", "birthday", "licence_expiry",
                "insurance_expiry", "delivered_at", "sales_advisor", "language")


def _write_deliveries_csv(path: Path, rows: int, now: datetime, tz: ZoneInfo) -> None:
    """A DMS export of ``rows`` deliveries over the last 30 days: valid VINs, unique phones."""
    rng = random.Random(1)
    today = now.astimezone(tz).date()
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(_CSV_COLUMNS)
        for i in range(rows):
            born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
            delivered = now.astimezone(tz) - timedelta(minutes=rng.randrange(30 * 24 * 60) + 60)
            out.writerow([
                _vin(i), f"粤A{i % 100_000:05d}", rng.choice(("星辰 S7", "星辰 S5", "星辰 X9")),
                f"车主{i}", f"139{i:08d}", born.isoformat(),
                (today + timedelta(days=rng.randrange(3650))).isoformat(),
                (today + timedelta(days=rng.randrange(365))).isoformat(),
                f"{delivered:%Y-%m-%d %H:%M}", f"顾问{i % 12}", rng.choice(("zh_CN", "en")),
            ])


async def _import_one_by_one(path: Path, sample: int, settings: Settings, now: datetime
                             ) -> float:
    """The naive importer: per row, validate, then Customer.create, Vehicle.create and one
    Touchpoint.create per journey step, in a transaction. Returns seconds per row."""
    from tortoise.transactions import in_transaction

    from bot.campaigns.journeys import journey_rules, plan_delivery
    from bot.campaigns.timing import birthday_key
    from bot.intake import validate_delivery
    from db.models import Customer, Touchpoint, Vehicle

    rules = journey_rules(settings)
    with path.open(encoding="utf-8", newline="") as f:
        records = [r for _, r in zip(range(sample), csv.DictReader(f), strict=False)]
    started = time.perf_counter()
    for number, record in enumerate(records, start=2):
        d, errors, _ = validate_delivery(record, row=number, tz=rules.tz, now=now)
        if d is None:
            raise RuntimeError(f"baseline row {number}: {errors}")
        async with in_transaction():
            lunar = bool(d.birthday_lunar)
            customer = await Customer.create(
                name=d.owner_name, phone=d.phone, birthday=d.birthday,
                licence_expiry=d.licence_expiry, birthday_lunar=lunar,
                birthday_md=birthday_key(d.birthday, lunar), language=d.language or "zh_CN",
                advisor=d.sales_advisor or "", link_token=secrets.token_urlsafe(24))
            vehicle = await Vehicle.create(
                vin=d.vin, plate=d.plate or "", model=d.model or "", customer=customer,
                delivered_at=d.delivered_at, sales_advisor=d.sales_advisor or "",
                insurance_expiry=d.insurance_expiry)
            for p in plan_delivery(customer_id=customer.id, vehicle_id=vehicle.id, vin=d.vin,
                                   delivered_at=d.delivered_at, rules=rules):
                await Touchpoint.create(
                    customer_id=p.customer_id, vehicle_id=p.vehicle_id, kind=p.kind,
                    occasion_key=p.occasion_key, due_at=p.due_at, expires_at=p.expires_at,
                    priority=p.priority, payload=p.payload)
    return (time.perf_counter() - started) / len(records)


async def bench_import(settings: Settings, *, rows: int, sample: int) -> list[Figure]:
    """Import ``rows`` deliveries from CSV in a child process (time, peak RSS); baseline:
    one-row-at-a-time ORM creates on ``sample`` rows, extrapolated per row."""
    from db.setup import close_database, open_database

    now = SystemClock().now()
    sample = min(sample, rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dbs = _Databases(folder)
        csv_path = folder / "deliveries.csv"
        _write_deliveries_csv(csv_path, rows, now, settings.tz)
        run = await _in_child("import", {"db": await dbs.fresh("import"), "csv": str(csv_path),
                                         "now": now.isoformat(), **_child_params(settings)})
        await open_database(await dbs.fresh("import_baseline"), apply_migrations=False)
        try:
            per_row = await _import_one_by_one(csv_path, sample, settings, now)
        finally:
            await close_database()
    seconds, peak_mb = run["seconds"], run["peak"] / MB
    check = "" if (run["created"], run["failed"]) == (rows, 0) else \
        f"; CHECK: {run['created']:,} created, {run['failed']:,} failed of {rows:,}"
    return [
        Figure(f"import: {rows:,} deliveries with journeys from CSV", seconds, "s", "≤ 30 s",
               seconds <= 30, per_row * rows,
               f"{rows / seconds:,.0f} rows/s; baseline: per row Customer/Vehicle/4× Touchpoint "
               f".create in a transaction, timed on {sample:,} rows and extrapolated per row "
               f"({per_row * 1000:.2f} ms/row){check}"),
        Figure("import: peak RSS of the importing process", peak_mb, "MB", "≤ 500 MB",
               peak_mb <= 500, None,
               f"VmHWM of a child process doing only the import (reset just before; "
               f"{run['before'] / MB:.0f} MB of it is the interpreter and modules)"),
    ]


# --------------------------------------------------------------------------- scan


async def _seed_scan(owners: int, now: datetime, tz: ZoneInfo) -> None:
    """``owners`` owners with one car each: birthdays over 55 years (5 % lunar), licences
    expiring over the next 10 years, policies over the next year, 70 % linked."""
    from bot.campaigns.timing import birthday_key
    from db.models import Customer, Vehicle, VehicleStatus

    rng = random.Random(2)
    today = now.astimezone(tz).date()

    def customers() -> Iterable[list[Any]]:
        for i in range(owners):
            born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000)) \
                if rng.random() < 0.85 else None
            lunar = born is not None and rng.random() < 0.05
            licence = today + timedelta(days=rng.randrange(3650)) if rng.random() < 0.9 else None
            linked = 1_000_000_000 + i if rng.random() < 0.7 else None
            yield [f"车主{i}", f"+86139{i:08d}", born, licence, lunar, birthday_key(born, lunar),
                   f"scan{i}", linked, linked]

    await _seed(Customer, ("name", "phone", "birthday", "licence_expiry", "birthday_lunar",
                           "birthday_md", "link_token", "telegram_user_id", "telegram_chat_id"),
                customers(), now)
    await _check_ids(Customer, owners)
    active, scrapped = VehicleStatus.ACTIVE.value, VehicleStatus.SCRAPPED.value
    await _seed(Vehicle, ("vin", "customer_id", "model", "insurance_expiry", "status"), (
        [_vin(i), i + 1, "星辰 S7", today + timedelta(days=rng.randrange(365)),
         scrapped if rng.random() < 0.02 else active]
        for i in range(owners)), now)


async def _scan_in_python(now: datetime, settings: Settings) -> int:
    """The naive scan: read every owner and car (streamed), check the rules in Python, write
    what is due. The same rules as bot.campaigns.occasions for a first scan (today only)."""
    from bot.campaigns.journeys import (
        BIRTHDAY,
        GREETING_PRIORITY,
        HOLIDAY,
        INSURANCE,
        LICENCE,
        SERVICE_PRIORITY,
        TouchpointPlan,
        write_touchpoints,
    )
    from bot.campaigns.occasions import _expiry_payload, occasion_rules
    from bot.campaigns.timing import (
        at_local,
        birthday_keys_on,
        end_of_local_day,
        expiry_reminders_due,
        local_date,
    )
    from bot.schedule import shift_out_of_quiet_hours
    from db.models import VehicleStatus

    rules = occasion_rules(settings)
    tz = rules.tz
    today = local_date(now, tz)
    due = shift_out_of_quiet_hours(at_local(today, rules.scan_time, tz), tz, rules.quiet)
    end_today = end_of_local_day(today, tz)
    stamp = f"{today:%Y%m%d}"
    birthdays = set(birthday_keys_on(today))
    licences = {e.isoformat(): (e, lead)
                for e, lead in expiry_reminders_due([today], today, rules.licence_leads)}
    insurances = {e.isoformat(): (e, lead)
                  for e, lead in expiry_reminders_due([today], today, rules.insurance_leads)}
    holidays = [h.name for h in rules.holidays if h.falls_on(today)]
    plans: list[TouchpointPlan] = []
    async for rows in _stream("customer", ("birthday_md", "licence_expiry", "telegram_chat_id",
                                           "unreachable_at", "followups_refused")):
        for cid, md, licence, chat, unreachable, refused in rows:
            if md in birthdays:
                plans.append(TouchpointPlan(cid, None, BIRTHDAY, f"birthday:{stamp}", due,
                                            end_today, GREETING_PRIORITY,
                                            {"day": today.isoformat()}))
            hit = licences.get(str(licence)[:10]) if licence is not None else None
            if hit is not None:
                e, lead = hit
                plans.append(TouchpointPlan(cid, None, LICENCE, f"licence:{e:%Y%m%d}:{lead}",
                                            due, end_of_local_day(e, tz), SERVICE_PRIORITY,
                                            _expiry_payload(e, lead, today)))
            if holidays and chat is not None and unreachable is None and not refused:
                plans.append(TouchpointPlan(cid, None, HOLIDAY, f"holiday:{stamp}", due,
                                            end_today, GREETING_PRIORITY,
                                            {"name": holidays[0], "day": today.isoformat()}))
    async for rows in _stream("vehicle", ("customer_id", "insurance_expiry", "status")):
        for vid, cid, insurance, status in rows:
            hit = insurances.get(str(insurance)[:10]) if insurance is not None else None
            if hit is not None and status == VehicleStatus.ACTIVE.value:
                e, lead = hit
                plans.append(TouchpointPlan(cid, vid, INSURANCE,
                                            f"insurance:{e:%Y%m%d}:{lead}:{vid}", due,
                                            end_of_local_day(e, tz), SERVICE_PRIORITY,
                                            _expiry_payload(e, lead, today)))
    await write_touchpoints(plans, now=now)
    return len(plans)


async def bench_scan(settings: Settings, *, owners: int) -> list[Figure]:
    """The daily scan over ``owners`` owners (and over a tenth of them, for memory), each in
    a child process; baseline: a Python loop over every owner and car, same database."""
    from db.models import ScanState, Touchpoint
    from db.setup import close_database, open_database

    now = SystemClock().now()
    small = max(10, owners // 10)
    with tempfile.TemporaryDirectory() as tmp:
        dbs = _Databases(Path(tmp))
        urls: dict[int, str] = {}
        for n in (small, owners):
            urls[n] = await dbs.fresh(f"scan_{n}")
            await open_database(urls[n], apply_migrations=False)
            try:
                await _seed_scan(n, now, settings.tz)
            finally:
                await close_database()
        params = {"now": now.isoformat(), **_child_params(settings)}
        little, run = (await _in_child("scan", {"dbs": [urls[small], urls[owners]],
                                                **params}))["runs"]
        await open_database(urls[owners], apply_migrations=False)
        try:
            await Touchpoint.all().delete()
            await ScanState.all().delete()
            started = time.perf_counter()
            written = await _scan_in_python(now, settings)
            base = time.perf_counter() - started
        finally:
            await close_database()
    seconds = run["seconds"]
    grown, grown_small = (run["peak"] - run["before"]) / MB, (little["peak"] - little["before"]) / MB
    check = "" if written == run["written"] else \
        f"; CHECK: the loop wrote {written:,}, the scan {run['written']:,}"
    return [
        Figure(f"scan: daily occasions scan over {owners:,} owners", seconds, "s", "≤ 10 s",
               seconds <= 10, base,
               f"{run['written']:,} touchpoints written; baseline: Python loop over every owner "
               f"and car streamed in id order (keyset pages of 10,000), same rules{check}"),
        Figure(f"scan: RSS growth during the scan, {owners:,} owners", grown, "MB",
               "flat (≤ +16 MB vs a tenth)", grown - grown_small <= 16, grown_small,
               f"baseline column: the same scan over {small:,} owners; peak RSS minus RSS "
               "before, in a child process (peak reset before each scan)"),
    ]


# --------------------------------------------------------------------------- kpi

_ADVISORS = tuple(f"顾问{k}" for k in range(12))
_SCORE_WEIGHTS = (1, 1, 1, 1, 2, 3, 6, 15, 30, 40)


async def _seed_kpi(scores: int, start: datetime, end: datetime, now: datetime) -> None:
    """A month with ``scores`` score rows (CSI scores on follow-ups, 2 % superseded, 1 %
    complaint handling), the follow-up touchpoints they answer (+10 % unanswered, half of
    them the month before), a workshop visit for 30 % of them, owners, cars and tickets."""
    from bot.surveys import CSI_CATEGORIES
    from db.models import Customer, Score, Ticket, Touchpoint, Vehicle, Visit

    rng = random.Random(3)
    span = (end - start).total_seconds()
    owners = max(10, scores // 4)
    superseded, handling = scores // 50, scores // 100
    answered = scores - superseded - handling  # touchpoints 1..answered carry a CSI score
    visits = int(answered * 0.3)  # touchpoints 1..visits are workshop follow-ups
    extra = max(1, answered // 10)
    total = answered + extra

    def due(k: int) -> datetime:
        return start + timedelta(seconds=span * 0.95 * ((k * 7919) % total) / total)

    def owner_of(k: int) -> int:
        return visit_car[k] if k < visits else (k * 31) % owners + 1

    await _seed(Customer, ("name", "phone", "link_token", "advisor", "telegram_chat_id"), (
        [f"车主{i}", f"+86137{i:08d}", f"kpi{i}", _ADVISORS[i % 12], 1_000_000_000 + i]
        for i in range(owners)), now)
    await _check_ids(Customer, owners)
    await _seed(Vehicle, ("vin", "customer_id", "model", "sales_advisor", "delivered_at"), (
        [_vin(i), i + 1, "星辰 S7", _ADVISORS[i % 12],
         start + timedelta(seconds=span * rng.random()) if i % 10 < 3
         else start - timedelta(days=1 + rng.randrange(900))]
        for i in range(owners)), now)
    visit_car = [rng.randrange(owners) + 1 for _ in range(visits)]
    await _seed(Visit, ("vehicle_id", "kind", "advisor", "left_at"), (
        [visit_car[j], "maintenance", _ADVISORS[j % 12],
         start + timedelta(seconds=span * 0.9 * j / max(1, visits))]
        for j in range(visits)), now)
    await _check_ids(Visit, visits)
    unanswered = (("sent", ""), ("unreachable", ""), ("expired", ""),
                  ("skipped", "owner declined follow-ups"), ("skipped", "owner unreachable"))

    def touchpoints() -> Iterable[list[Any]]:
        for k in range(total):
            kind = "service_followup" if k < visits else "followup_3d"
            payload = json.dumps({"visit_id": k + 1} if k < visits else {"vin": _vin(k)})
            status, reason = ("sent", "") if k < answered else unanswered[k % 5]
            at = due(k) if k < answered or k % 2 else due(k) - timedelta(days=31)
            yield [owner_of(k), owner_of(k), kind, f"b{k}", at, status, reason, payload]

    await _seed(Touchpoint, ("customer_id", "vehicle_id", "kind", "occasion_key", "due_at",
                             "status", "status_reason", "payload"), touchpoints(), now)
    await _check_ids(Touchpoint, total)
    low_categories = (*CSI_CATEGORIES, None)
    tickets: list[list[Any]] = []

    def score_rows() -> Iterable[list[Any]]:
        for i in range(scores):
            k = i if i < answered else rng.randrange(answered)
            rates = "complaint" if i >= answered + superseded else \
                "visit" if k < visits else "delivery"
            value = rng.choices(range(1, 11), _SCORE_WEIGHTS)[0]
            category = rng.choice(low_categories) if value <= 6 else None
            at = min(due(k) + timedelta(hours=2), end - timedelta(seconds=1))
            gone = at + timedelta(hours=1) if answered <= i < answered + superseded else None
            if value <= 6 and rates != "complaint" and i % 10 == 0:
                tickets.append([f"T-{len(tickets) + 1:07d}", owner_of(k), owner_of(k), "survey",
                                category or "other", at + timedelta(minutes=30),
                                at + timedelta(hours=2, minutes=30), i + 1])
            yield [k + 1, owner_of(k), owner_of(k), k + 1 if k < visits else None, rates,
                   _ADVISORS[k % 12], value, category, at, at, gone]

    await _seed(Score, ("touchpoint_id", "customer_id", "vehicle_id", "visit_id", "rates",
                        "advisor", "score", "category", "first_answered_at", "created_at",
                        "superseded_at"), score_rows(), now)
    await _check_ids(Score, scores)
    await _seed(Ticket, ("number", "customer_id", "vehicle_id", "channel", "category",
                         "created_at", "first_answer_due", "score_id"), tickets, now)
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "postgres":
        # A bulk load PostgreSQL's autovacuum has not analysed yet: without statistics its
        # planner guesses thousands of scores per owner and picks the wrong indexes. (SQLite
        # databases are never analysed; the report's queries are planned well without.)
        await conn.execute_script("ANALYZE")


async def _kpi_in_python(start: datetime, end: datetime, low: int) -> dict[str, Any]:
    """The naive report: load the month's rows with the ORM, count in Python (dealership)."""
    from bot.kpi import CSI_RATES, DELIGHT_SETTLE, FOLLOWUP_KINDS
    from bot.surveys import CSI_CATEGORIES, DELIGHTED_FROM
    from db.models import Score, Ticket, Touchpoint, Vehicle, Visit

    out: dict[str, Any] = {}
    followups = await Touchpoint.filter(
        kind__in=list(FOLLOWUP_KINDS), due_at__gte=start, due_at__lt=end,
    ).values_list("id", "status", "status_reason", "customer_id")
    answered = set(await Score.all().values_list("touchpoint_id", flat=True))
    counted = [r for r in followups
               if not (r[1] == "skipped" and str(r[2]).startswith("owner declined"))]
    out["followups_due"] = len(counted)
    out["followups_sent"] = sum(1 for r in counted if r[1] in ("sent", "unreachable", "failed"))
    out["followups_reached"] = sum(1 for r in counted if r[1] == "sent")
    out["responses"] = sum(1 for r in counted if r[1] == "sent" and r[0] in answered)
    out["unreachable_owners"] = len({
        r[3] for r in counted if r[1] in ("unreachable", "failed", "expired")
        or (r[1] == "skipped" and str(r[2]).startswith("owner unreachable"))})
    rows = await Score.filter(
        superseded_at__isnull=True, first_answered_at__gte=start, first_answered_at__lt=end,
    ).values_list("rates", "score", "category", "customer_id")
    csi = [r for r in rows if str(r[0]) in CSI_RATES]
    values = [r[1] for r in csi]
    out["scores"] = len(values)
    out["average"] = sum(values) / len(values) if values else None
    out["distribution"] = {n: values.count(n) for n in range(1, 11)}
    out["very_satisfied"] = sum(1 for v in values if v >= DELIGHTED_FROM)
    out["low_scores"] = sum(1 for v in values if v <= low)
    out["uncategorised_low"] = sum(1 for r in csi if r[1] <= low and r[2] is None)
    out["categories"] = {c: sum(1 for r in csi if r[1] <= low and r[2] == c)
                         for c in CSI_CATEGORIES}
    handling = [r[1] for r in rows if str(r[0]) == "complaint"]
    out["handling_scores"] = len(handling)
    served = set(await Vehicle.filter(delivered_at__gte=start, delivered_at__lt=end)
                 .values_list("customer_id", flat=True))
    served |= set(await Visit.filter(left_at__gte=start, left_at__lt=end)
                  .values_list("vehicle__customer_id", flat=True))
    earlier = set(await Vehicle.filter(delivered_at__lt=start).values_list("customer_id",
                                                                           flat=True))
    earlier |= set(await Visit.filter(left_at__lt=start).values_list("vehicle__customer_id",
                                                                     flat=True))
    out["owners_served"] = len(served)
    # Delighted: owners served in the period who gave a 9-10 by the time its surveys closed.
    late = await Score.filter(
        superseded_at__isnull=True, rates__in=list(CSI_RATES), score__gte=DELIGHTED_FROM,
        first_answered_at__gte=end, first_answered_at__lt=end + DELIGHT_SETTLE,
    ).values_list("customer_id", flat=True)
    out["delighted_owners"] = len(served & ({r[3] for r in csi if r[1] >= DELIGHTED_FROM}
                                            | set(late)))
    out["returning_owners"] = len(served & earlier)
    out["tickets_opened"] = len(await Ticket.filter(created_at__gte=start, created_at__lt=end)
                                .values_list("id", flat=True))
    return out


async def bench_kpi(settings: Settings, *, scores: int) -> list[Figure]:
    """Last month's KPI report (``carebot report --month``) over ``scores`` scores; baseline:
    the month's rows loaded into Python and counted there."""
    from bot.campaigns.timing import local_date
    from bot.kpi import compute, month_period
    from db.setup import close_database, open_database

    now = SystemClock().now()
    first = local_date(now, settings.tz).replace(day=1) - timedelta(days=1)
    period = month_period(f"{first:%Y-%m}")
    start, end = period.utc_bounds(settings.tz)
    low = settings.survey_low_threshold
    with tempfile.TemporaryDirectory() as tmp:
        await open_database(await _Databases(Path(tmp)).fresh("kpi"), apply_migrations=False)
        try:
            await _seed_kpi(scores, start, end, now)
            started = time.perf_counter()
            report = await compute(period, settings.tz, low_threshold=low)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            per_advisor = await compute(period, settings.tz, by_advisor=True, low_threshold=low)
            advisor_seconds = time.perf_counter() - started
            started = time.perf_counter()
            naive = await _kpi_in_python(start, end, low)
            base = time.perf_counter() - started
        finally:
            await close_database()
    ours = report.dealership
    differ = [name for name, value in naive.items()
              if (round(value, 9) if isinstance(value, float) else value)
              != (round(got, 9) if isinstance(got := getattr(ours, name), float) else got)]
    check = f"; CHECK: figures differ: {', '.join(differ)}" if differ else \
        "; same figures from both"
    # Each follow-up, score and complaint is in exactly one advisor's column (owners are not:
    # one served by two advisors counts for each), so these columns add up to the total.
    additive = ("followups_due", "followups_sent", "followups_reached", "responses", "scores",
                "very_satisfied", "low_scores", "uncategorised_low", "handling_scores",
                "tickets_opened")
    split = [name for name in additive
             if sum(getattr(k, name) for k in per_advisor.advisors) != getattr(ours, name)]
    check += f"; CHECK: the advisors' columns do not add up: {', '.join(split)}" if split else ""
    return [Figure(f"kpi: report for {period.label} over {scores:,} scores", seconds, "s",
                   "≤ 3 s", seconds <= 3, base,
                   f"{ours.scores:,} current CSI scores, {ours.followups_due:,} follow-ups; "
                   f"per advisor (--by advisor, {len(per_advisor.advisors)} columns) "
                   f"{advisor_seconds:.1f} s; baseline: the month's rows loaded with the ORM "
                   f"and counted in Python{check}")]


# --------------------------------------------------------------------------- campaign


async def _seed_campaign(owners: int, now: datetime) -> int:
    """``owners`` consenting, linked owners of a 星辰 S7 (2 % already at the weekly cap) and
    a tenth more who are not eligible (no consent, not linked, unreachable). Returns how
    many owners are in the audience."""
    from bot.campaigns.promotions import KIND, PRIORITY
    from db.models import Customer, Touchpoint, Vehicle

    extra = max(3, owners // 10)
    total = owners + extra

    def customers() -> Iterable[list[Any]]:
        for i in range(total):
            why = -1 if i < owners else i % 3
            chat = None if why == 1 else 1_000_000_000 + i
            consent = why != 0
            yield [f"车主{i}", f"+86136{i:08d}", f"cmp{i}", chat, chat, consent,
                   now - timedelta(days=30) if consent else None, "import" if consent else "",
                   now - timedelta(days=3) if why == 2 else None, "en" if i % 7 == 0 else "zh_CN"]

    await _seed(Customer, ("name", "phone", "link_token", "telegram_user_id",
                           "telegram_chat_id", "marketing_consent", "marketing_consent_at",
                           "marketing_consent_source", "unreachable_at", "language"),
                customers(), now)
    await _check_ids(Customer, total)
    await _seed(Vehicle, ("vin", "customer_id", "model", "delivered_at"), (
        [_vin(i), i + 1, "星辰 S7", now - timedelta(days=30 + i % 900)] for i in range(total)),
        now)
    sent = now - timedelta(days=2)
    await _seed(Touchpoint, ("customer_id", "kind", "occasion_key", "priority", "due_at",
                             "status", "sent_at"), (
        [i + 1, KIND, f"campaign:{900_000 + n}", PRIORITY, sent, "sent", sent]
        for i in range(0, owners, 50) for n in range(2)), now)
    return total


async def bench_campaign(settings: Settings, *, owners: int, sample: int) -> list[Figure]:
    """Create, schedule and launch (audience count by reason + bulk insert) a campaign to
    ``owners`` owners; baseline: the same audience query, then one Touchpoint.create per
    owner, timed on ``sample`` owners and extrapolated."""
    from bot.delivery.dispatcher import dealer_context
    from bot.campaigns.promotions import (
        KIND,
        PRIORITY,
        campaign_rules,
        classify,
        create_campaign,
        due_time,
        expiry,
        launch_due,
        parse_audience,
        schedule_campaign,
    )
    from db.models import Campaign, Touchpoint
    from db.setup import close_database, open_database

    now = SystemClock().now()
    rules = campaign_rules(settings)
    with tempfile.TemporaryDirectory() as tmp:
        await open_database(await _Databases(Path(tmp)).fresh("campaign"),
                            apply_migrations=False)
        try:
            audience_size = await _seed_campaign(owners, now)
            started = time.perf_counter()
            campaign = await create_campaign(
                name="双十二保养季", messages={"zh_CN": "{{ customer.name }}您好！保养八折。",
                                             "en": "Hello {{ customer.name }}: 20% off."},
                now=now, dealer=dealer_context(settings), buttons=["interested", "book"],
                audience={"models": ["星辰 S7"]})
            await schedule_campaign(campaign, send_at=now, now=now, rules=rules)
            launched = await launch_due(now=now, rules=rules)
            seconds = time.perf_counter() - started
            campaign = await Campaign.get(id=campaign.id)
            queued = int(campaign.launch.get("queued", 0))
            stored = await Touchpoint.filter(occasion_key=f"campaign:{campaign.id}").count()

            started = time.perf_counter()
            due = due_time(now, now, rules)
            eligible, _ = await classify(parse_audience(campaign.audience), now=now, due=due,
                                         rules=rules, campaign_id=None)
            ids: list[int] = await eligible.values_list("id", flat=True)  # type: ignore[assignment]
            audience_seconds = time.perf_counter() - started
            expires = expiry(due, None, rules)
            part = ids[:sample]
            started = time.perf_counter()
            for cid in part:
                await Touchpoint.create(customer_id=cid, kind=KIND, occasion_key="campaign:0",
                                        priority=PRIORITY, due_at=due, expires_at=expires,
                                        payload={"campaign_id": 0})
            per_row = (time.perf_counter() - started) / max(1, len(part))
        finally:
            await close_database()
    base = audience_seconds + per_row * len(ids)
    check = "" if launched and stored == queued == len(ids) else \
        f"; CHECK: launched {launched}, {stored:,} stored, {queued:,} queued, {len(ids):,} eligible"
    return [Figure(f"campaign: audience + launch to {queued:,} owners", seconds, "s", "≤ 10 s",
                   seconds <= 10, base,
                   f"audience of {audience_size:,} counted by exclusion reason; baseline: the "
                   f"same audience query ({audience_seconds:.1f} s), then Touchpoint.create per "
                   f"owner timed on {len(part):,} and extrapolated ({per_row * 1000:.2f} "
                   f"ms/row){check}")]


# --------------------------------------------------------------------------- webhook

WEBHOOK_UPDATES = 2_000
WEBHOOK_CONNECTIONS = 40  # Telegram's default max_connections for a webhook
_WEBHOOK_SECRET_ENV = "CAREBOT_WEBHOOK_SECRET"
_WEBHOOK_TIMEOUT = 600.0  # seconds a run may take before it is reported as failed


def _letters(i: int) -> str:
    """A digit-free tag for owner ``i`` (a free text must not read as a score)."""
    out = ""
    for _ in range(4):
        i, r = divmod(i, 26)
        out += chr(ord("a") + r)
    return out


def _queue_owner_updates(emu: Any, user_ids: Sequence[int], contact_label: str
                         ) -> tuple[int, int]:
    """One update per owner, queued in the emulator: 40 % score presses, 20 % typed scores,
    20 % free texts (a quarter long enough to be offered to staff), 20 % "Contact us"
    presses. Returns (scores, free texts) expected to be stored."""
    typed = ("{n}", "{n}分", "打{n}分！", "{n}/10")
    scores = texts = 0
    for k, user_id in enumerate(user_ids):
        score = k % 10 + 1
        kind = k % 5
        if kind in (0, 1):
            emu.press_button(user_id, user_id, str(score))
            scores += 1
        elif kind == 2:
            emu.user(user_id).send_text(typed[k % len(typed)].format(n=score))
            scores += 1
        elif kind == 3:
            text = f"谢谢，车开着很顺 {_letters(k)}"
            if k % 4 == 3:
                text += "，就是中控屏偶尔会卡一下，希望下次保养的时候帮忙看看"
            emu.user(user_id).send_text(text)
            texts += 1
        else:
            emu.press_button(user_id, user_id, contact_label)
    return scores, texts


async def _take_updates(emu: Any) -> list[dict[str, Any]]:
    """Every update the emulator holds, exactly as Telegram would post it (getUpdates)."""
    import aiohttp

    updates: list[dict[str, Any]] = []
    offset = 0
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.post(f"{emu.api_url}/bot{emu.token}/getUpdates",
                                 json={"offset": offset, "limit": 100, "timeout": 0}) as r:
                batch = (await r.json())["result"]
            if not batch:
                return updates
            updates.extend(batch)
            offset = batch[-1]["update_id"] + 1


async def _child_webhook_app(params: dict[str, Any]) -> dict[str, Any]:
    """carebot in webhook mode (its own process): serve until ``updates`` were accepted and
    every one was handled; report when that was (``time.monotonic``, one clock for every
    process of the machine)."""
    from bot.app import create_app
    from bot.web.ops import STATS
    from db.setup import close_database, open_database

    port = int(params["port"])
    values: dict[str, Any] = {
        "_env_file": None, "bot_token": params["token"], "telegram_api_url": params["api"],
        "database_url": params["db"], "web_port": port, "web_host": "127.0.0.1",
        "webhook_url": f"http://127.0.0.1:{port}", "staff_chat_id": params["staff"],
        "update_concurrency": params["concurrency"], "timezone": params["timezone"],
        "quiet_hours": params["quiet_hours"],
        # carebot's own cost per update: Telegram's limits off on both sides (the emulator's
        # too), or the replies would wait for 30 a second
        "send_rate": 10_000.0, "per_chat_interval": 0.0, "group_per_minute": 600,
    }  # the secret comes from the environment (CAREBOT_WEBHOOK_SECRET)
    settings = Settings(**values)
    await open_database(params["db"], apply_migrations=False)
    carebot = create_app(settings)
    try:
        await carebot.start(serve_web=True, receive_updates=True, schedule=False)
        stats = carebot.web_app[STATS]
        deadline = time.monotonic() + float(params["timeout"])
        cpu = time.process_time()
        while stats.results["accepted"] < params["updates"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {stats.results['accepted']} updates accepted")
            await asyncio.sleep(0.005)
        await asyncio.wait_for(_inbox_drained(), max(1.0, deadline - time.monotonic()))
        done = time.monotonic()
        cpu = time.process_time() - cpu
    finally:
        await carebot.stop()
        await close_database()
    return {"done": done, "cpu": cpu, "results": dict(stats.results)}


async def _inbox_drained() -> None:
    from db.models import InboxStatus, InboxUpdate

    waiting = (InboxStatus.PENDING, InboxStatus.HANDLING)
    while await InboxUpdate.filter(status__in=waiting).exists():
        await asyncio.sleep(0.005)


async def _child_webhook_load(params: dict[str, Any]) -> dict[str, Any]:
    """The load generator (its own process): wait for /healthz, then POST every update over
    ``connections`` connections as fast as answers come; time each POST."""
    import aiohttp

    bodies = [json.dumps(u).encode() for u in
              json.loads(Path(params["updates"]).read_text(encoding="utf-8"))]
    headers = {"Content-Type": "application/json",
               "X-Telegram-Bot-Api-Secret-Token": os.environ[_WEBHOOK_SECRET_ENV]}
    base = f"http://127.0.0.1:{params['port']}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=params["connections"])
    async with aiohttp.ClientSession(connector=connector) as http:
        deadline = time.monotonic() + 120
        while True:
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the app never answered /healthz")
            await asyncio.sleep(0.05)
        pending = iter(bodies)

        async def worker() -> None:
            for body in pending:
                started = time.perf_counter()
                async with http.post(f"{base}{params['path']}", data=body,
                                     headers=headers) as r:
                    await r.read()
                latencies.append(time.perf_counter() - started)
                statuses[r.status] = statuses.get(r.status, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(params["connections"])))
        finished = time.monotonic()
    latencies.sort()
    return {"started": started, "finished": finished, "statuses": statuses,
            "p50": latencies[len(latencies) // 2],
            "p99": latencies[max(0, -(-len(latencies) * 99 // 100) - 1)],
            "max": latencies[-1]}


async def _webhook_run(emu: Any, url: str, updates_file: Path, count: int, settings: Settings,
                       staff: int, concurrency: int) -> dict[str, Any]:
    """One run: carebot in a child process, the load generator in another."""
    import socket

    from bot.config import DEFAULT_WEBHOOK_PATH

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    secret = {_WEBHOOK_SECRET_ENV: secrets.token_urlsafe(24)}
    app = asyncio.ensure_future(_in_child("webhook_app", {
        "port": port, "token": emu.token, "api": emu.api_url, "db": url, "staff": staff,
        "concurrency": concurrency, "updates": count, "timeout": _WEBHOOK_TIMEOUT,
        **_child_params(settings)}, extra_env=secret))
    try:
        load = await _in_child("webhook_load", {
            "port": port, "path": DEFAULT_WEBHOOK_PATH, "updates": str(updates_file),
            "connections": WEBHOOK_CONNECTIONS}, extra_env=secret)
    except BaseException:
        app.cancel()
        raise
    served = await app
    return {**load, "rate": count / (served["done"] - load["started"]),
            "accepted": served["results"].get("accepted", 0), "cpu": served["cpu"] / count}


def _distant_emulator() -> Any:
    """The emulator as a server some way from Telegram sees it: every Bot API call answers
    ``latency`` seconds later (the network round trip), calls overlapping freely."""
    from aiohttp import web

    from bot.sandbox.emulator import TelegramEmulator

    class DistantEmulator(TelegramEmulator):
        latency = 0.0

        def make_app(self) -> web.Application:
            app = super().make_app()

            @web.middleware
            async def round_trip(request: web.Request, handler: Any) -> web.StreamResponse:
                if self.latency:
                    await asyncio.sleep(self.latency)
                response: web.StreamResponse = await handler(request)
                return response

            app.middlewares.append(round_trip)
            return app

    # limits off: the webhook benchmark measures carebot's cost per update, not Telegram's pace
    return DistantEmulator(global_rate=None, per_chat_interval=None, group_per_minute=None)


WEBHOOK_LATENCY = 0.05  # seconds per Bot API call: a server near a Telegram data centre
WEBHOOK_SAMPLE = 200  # updates in the one-at-a-time baseline run (its rate is per update)


async def bench_webhook(settings: Settings, *, updates: int, sample: int) -> list[Figure]:
    """Owners' replies through the real webhook route: ``updates`` updates (score presses,
    typed scores, free texts, other presses) from as many owners with an open survey, POSTed
    over 40 connections by a load generator in its own process to carebot in another, which
    answers through the emulator (in this process, each call 50 ms away). Baseline: the same
    mix handled strictly one update at a time (``CAREBOT_UPDATE_CONCURRENCY=1``), timed on
    a sample."""
    from bot.app import create_app
    from bot.surveys import LOG_COMMENT
    from db.models import Customer, MessageLog, Score, Touchpoint
    from db.setup import close_database, open_database

    staff = -1001000000777
    first = 8_000_000
    sample = min(updates, sample)
    clock = FakeClock(SystemClock().now())
    emu = _distant_emulator()
    await emu.start()
    halves: dict[str, list[int]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url = await _Databases(folder).fresh("webhook")
            await open_database(url, apply_migrations=False)
            try:
                values: dict[str, Any] = {
                    "_env_file": None, "bot_token": emu.token, "telegram_api_url": emu.api_url,
                    "database_url": url, "send_rate": 10_000.0, "per_chat_interval": 0.0,
                    "group_per_minute": 600, "quiet_hours": "off", "dispatch_batch": 500, "dispatch_concurrency": 64,
                    "staff_chat_id": staff,
                }
                seeder = create_app(Settings(**values), clock)
                await seeder.initialize()
                emu.group(staff, "客服中心", is_forum=True)
                owners = [first + i for i in range(updates + sample)]
                halves = {"ours": owners[:updates], "one by one": owners[updates:]}
                now = clock.now()
                await Customer.bulk_create([
                    Customer(name=f"车主{u - first}", phone=f"+86134{u - first:08d}",
                             link_token=f"hook{u}", telegram_user_id=u, telegram_chat_id=u,
                             linked_at=now) for u in owners], batch_size=1000)
                for u in owners:
                    emu.user(u, first_name=f"车主{u - first}")
                await Touchpoint.bulk_create([
                    Touchpoint(customer_id=cid, kind="followup_3d", occasion_key="bench",
                               due_at=now, expires_at=now + timedelta(days=1))
                    for cid in await Customer.all().values_list("id", flat=True)
                ], batch_size=1000)
                while (await seeder.dispatcher.dispatch_due()).sent:
                    pass
                surveys_sent = await Touchpoint.filter(status="sent").count()
                await seeder.stop()
                label = seeder.services.scripts.label("contact_us_button", "zh_CN")
                runs: dict[str, dict[str, Any]] = {}
                expected: dict[str, tuple[int, int]] = {}
                files: dict[str, Path] = {}
                for half, part in halves.items():
                    expected[half] = _queue_owner_updates(emu, part, label)
                    files[half] = folder / f"updates_{len(files)}.json"
                    files[half].write_text(json.dumps(await _take_updates(emu)),
                                           encoding="utf-8")
            finally:
                await close_database()
            emu.latency = WEBHOOK_LATENCY
            for half, concurrency in (("ours", settings.update_concurrency), ("one by one", 1)):
                runs[half] = await _webhook_run(emu, url, files[half], len(halves[half]),
                                                settings, staff, concurrency)
            await open_database(url, apply_migrations=False)
            try:
                stored: dict[str, tuple[int, int]] = {}
                for half, part in halves.items():
                    n_scores = await Score.filter(customer__telegram_user_id__in=part).count()
                    n_texts = await MessageLog.filter(
                        direction="in", kind=LOG_COMMENT, chat_id__in=part).count()
                    stored[half] = (n_scores, n_texts)
            finally:
                await close_database()
    finally:
        await emu.stop()
    ours, base = runs["ours"], runs["one by one"]
    problems = [f"{half}: {stored[half]} scores/texts stored, {expected[half]} expected"
                for half in runs if stored[half] != expected[half]]
    problems += [f"{half}: answers {run['statuses']}" for half, run in runs.items()
                 if run["statuses"] != {"200": len(halves[half])}]  # (JSON keys are strings)
    if surveys_sent != len(halves["ours"]) + len(halves["one by one"]):
        problems.append(f"{surveys_sent} surveys sent")
    check = f"; CHECK: {'; '.join(problems)}" if problems else \
        "; every score and comment stored once"
    return [
        Figure(f"webhook: owners' updates recorded per second ({updates:,} updates)",
               ours["rate"], "/s", "≥ 300/s", ours["rate"] >= 300, base["rate"],
               f"{settings.update_concurrency} updates handled at once; each answered through "
               f"the emulator, {WEBHOOK_LATENCY * 1000:.0f} ms a call; {ours['cpu'] * 1000:.1f} "
               f"ms of CPU per update in carebot's process; POSTed over {WEBHOOK_CONNECTIONS} "
               f"connections by a load generator in its own process; baseline: one update at "
               f"a time, on {sample:,} updates{check}"),
        Figure("webhook: p99 latency of the POST", ours["p99"] * 1000, "ms", "≤ 200 ms",
               ours["p99"] <= 0.2, base["p99"] * 1000,
               f"p50 {ours['p50'] * 1000:.1f} ms, max {ours['max'] * 1000:.0f} ms, measured "
               f"by the load generator; baseline: the one-at-a-time run"),
    ]


# --------------------------------------------------------------------------- the rush

RUSH_OWNERS = 1_000
RUSH_HELPERS = 100


async def bench_rush(settings: Settings, args: argparse.Namespace) -> list[Figure]:
    """Replies while a campaign goes out at full rate (``bot.bench_rush``)."""
    from bot.bench_rush import bench_rush as run

    with tempfile.TemporaryDirectory() as tmp:
        return list(await run(_Databases(Path(tmp)).fresh,
                              owners=_size(RUSH_OWNERS, args.scale, 60),
                              helpers=_size(RUSH_HELPERS, args.scale, 5)))


# --------------------------------------------------------------------------- the command

Bench = Callable[[Settings, argparse.Namespace], Awaitable[list[Figure]]]

BENCHMARKS: dict[str, Bench] = {
    "dispatch": lambda s, a: bench_dispatch(
        owners=a.owners if a.owners is not None else _size(DISPATCH_OWNERS, a.scale, 20),
        rate=a.rate),
    "import": lambda s, a: bench_import(s, rows=_size(IMPORT_ROWS, a.scale, 20),
                                        sample=_size(IMPORT_SAMPLE, a.scale, 10)),
    "scan": lambda s, a: bench_scan(s, owners=_size(SCAN_OWNERS, a.scale, 100)),
    "kpi": lambda s, a: bench_kpi(s, scores=_size(KPI_SCORES, a.scale, 200)),
    "campaign": lambda s, a: bench_campaign(s, owners=_size(CAMPAIGN_OWNERS, a.scale, 50),
                                            sample=_size(CAMPAIGN_SAMPLE, a.scale, 10)),
    "webhook": lambda s, a: bench_webhook(s, updates=_size(WEBHOOK_UPDATES, a.scale, 50),
                                          sample=_size(WEBHOOK_SAMPLE, a.scale, 20)),
    "rush": bench_rush,
}


def write_report(figures: list[Figure], path: Path = BENCHMARKS_MD, *, scale: float = 1.0,
                 databases: dict[str, str] | None = None) -> None:
    """The report: machine and date, then one table per database (``databases`` maps each
    figure's database to a description; the targets are judged on SQLite)."""
    now = SystemClock().now()
    scaled = "" if scale == 1 else f"; sizes scaled by {scale:g}"
    databases = databases or {"SQLite": _Target("SQLite").description}
    lines = [
        "# Benchmarks",
        "",
        "Written by `carebot bench`; every figure is measured in the same run as its baseline.",
        "",
        f"- date: {now:%Y-%m-%d %H:%M} UTC",
        (f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
         f"Python {platform.python_version()}, {platform.system()} {platform.release()}"),
        f"- databases: {', '.join(databases)}{scaled}",
    ]
    for label, description in databases.items():
        judged = "the targets are judged here" if label == "SQLite" else \
            "reported beside SQLite; the targets are judged on SQLite"
        lines += [
            "", f"## {label}", "", f"{description}; {judged}.", "",
            "| benchmark | result | target | met | baseline | ours / baseline | note |",
            "| --- | ---: | --- | --- | ---: | ---: | --- |",
        ]
        for f in figures:
            if f.database != label:
                continue
            base = f"{_cell(f.baseline)} {f.unit}" if f.baseline is not None else "–"
            lines.append(f"| {f.name} | {_cell(f.value)} {f.unit} | {f.target} | "
                         f"{'yes' if f.met else '**no**'} | {base} | {f.ratio} | {f.note} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _targets(args: argparse.Namespace) -> list[_Target]:
    """SQLite always; PostgreSQL too when asked for and its server answers."""
    wanted = args.db or ["sqlite", "postgres"]
    targets = [_Target("SQLite")] if "sqlite" in wanted else []
    if "postgres" in wanted:
        pg = _Target("PostgreSQL", args.postgres)
        why = await pg.reachable()
        if why:
            print(f"{why}: PostgreSQL figures skipped", flush=True)
        else:
            targets.append(pg)
    return targets


async def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    global _TARGET
    names = list(dict.fromkeys(args.only or BENCHMARKS))
    figures: list[Figure] = []
    targets = await _targets(args)
    for target in targets:
        _TARGET = target
        try:
            for name in names:
                print(f"running {name} on {target.label} …", flush=True)
                started = time.perf_counter()
                try:
                    got = await BENCHMARKS[name](settings, args)
                finally:
                    await target.drop_created()
                for f in got:
                    f.database = target.label
                figures.extend(got)
                print(f"  {name} done in {time.perf_counter() - started:.1f} s", flush=True)
        finally:
            await target.drop_created(template=True)
            _TARGET = _Target("SQLite")
    if not figures:
        print("no database to run the benchmarks on")
        return 1
    width = max(len(f.name) for f in figures)
    for f in figures:
        base = f"   baseline {_cell(f.baseline)} {f.unit} ({f.ratio})" \
            if f.baseline is not None else ""
        print(f"{f.database:<10} {f.name:<{width}}  {_cell(f.value):>10} {f.unit:<3} "
              f"target {f.target:<8} {'ok' if f.met else 'MISSED'}{base}")
    if not args.no_write:
        write_report(figures, args.output, scale=args.scale,
                     databases={t.label: t.description for t in targets})
        print(f"written to {args.output}")
    judged = [f for f in figures if f.database == "SQLite"] or figures
    return 0 if all(f.met for f in judged) else 1


def _scale(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError("the scale is a number above 0, at most 10")
    return value


def add_commands(sub: Any) -> None:
    bench = sub.add_parser("bench", help="run the benchmarks, write docs/benchmarks.md")
    bench.add_argument("--only", action="append", choices=list(BENCHMARKS),
                       help="run only this benchmark (repeatable)")
    bench.add_argument("--scale", type=_scale, default=1.0,
                       help="multiply every size by this (0.002 for a smoke run)")
    bench.add_argument("--owners", type=int, default=None,
                       help=f"owners in the dispatch run (default {DISPATCH_OWNERS} × scale)")
    bench.add_argument("--rate", type=float, default=100.0,
                       help="the emulator's enforced global rate, msg/s")
    bench.add_argument("--output", type=Path, default=BENCHMARKS_MD,
                       help="where to write the report (default docs/benchmarks.md)")
    bench.add_argument("--no-write", action="store_true", help="print only")
    bench.add_argument("--db", action="append", choices=["sqlite", "postgres"],
                       help="run on this database only (repeatable; default: SQLite, and "
                            "PostgreSQL when it answers)")
    bench.add_argument("--postgres", default=POSTGRES_URL, metavar="URL",
                       help="a database on the PostgreSQL server to use (default "
                            "$CAREBOT_BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/"
                            "test); each benchmark creates and drops a database of its own there")
    bench.set_defaults(run=cmd_bench)
