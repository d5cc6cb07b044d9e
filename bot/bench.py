"""`carebot bench`: performance figures measured side by side with a naive baseline.

Each benchmark runs against real parts on this machine (SQLite in a temporary folder, the
Telegram emulator over loopback HTTP) and reports its figure beside the target and the
baseline's figure from the same run, then writes ``docs/benchmarks.md``.

Benchmarks: ``dispatch`` (the outbox against the emulator's enforced rate), ``import``
(deliveries with their journeys from CSV), ``scan`` (the daily occasions scan), ``kpi`` (a
month's report) and ``campaign`` (audience and launch). ``--scale`` multiplies every size, so
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


async def _in_child(task: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` in a fresh ``python`` (its own memory), return what it reports."""
    root = Path(__file__).resolve().parent.parent
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(root) + (os.pathsep + path if path else "")}
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



async def bench_dispatch(*, owners: int, rate: float, doubles: float = 0.1) -> list[Figure]:
    """Dispatch ``owners`` touchpoints (+ a second one for some owners) through the emulator
    enforcing ``rate`` msg/s and 1 s per chat; baseline: PTB's AIORateLimiter send loop."""
    from telegram import Bot
    from telegram.error import RetryAfter
    from telegram.ext import AIORateLimiter, ExtBot

    from bot.campaigns.dispatcher import Dispatcher
    from bot.sandbox.emulator import TelegramEmulator
    from bot.texts import Scripts
    from db.models import Customer, Touchpoint
    from db.setup import close_database, open_database

    clock = FakeClock(SystemClock().now())
    with tempfile.TemporaryDirectory() as tmp:
        scripts_dir = Path(tmp) / "scripts"
        (scripts_dir / "zh_CN").mkdir(parents=True)
        (scripts_dir / "zh_CN" / "bench.html").write_text(
            "{{ customer.name }}您好！这是{{ dealer.name }}的测试消息。", encoding="utf-8"
        )
        await open_database(f"sqlite://{tmp}/bench.sqlite3")
        emu = TelegramEmulator(global_rate=rate, per_chat_interval=1.0)
        await emu.start()
        try:
            base_id = 10_000_000
            for i in range(owners):
                emu.user(base_id + i)
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
            values: dict[str, Any] = {
                "_env_file": None, "bot_token": emu.token, "telegram_api_url": emu.api_url,
                "send_rate": rate * 0.98, "per_chat_interval": 1.0, "quiet_hours": "off",
                "dispatch_batch": 500, "dispatch_concurrency": 64,
            }
            settings = Settings(**values)
            bot = Bot(emu.token, base_url=f"{emu.api_url}/bot")
            async with bot:
                dispatcher = Dispatcher(bot, settings, clock, Scripts(scripts_dir))
                started = time.perf_counter()
                sent = 0
                while sent < total:
                    report = await dispatcher.dispatch_due()
                    sent += report.sent
                    if report.sent == 0:
                        clock.advance(timedelta(seconds=5))  # only retries left
                elapsed = time.perf_counter() - started
            ours_rate = total / elapsed
            ours_429 = emu.stats["429"]
            ours_gap = emu.min_send_gap() or 0.0

            # Baseline: PTB's AIORateLimiter, every message gathered at once.
            emu.stats["429"] = 0
            emu.send_times.clear()
            limiter: Any = AIORateLimiter(overall_max_rate=rate, overall_time_period=1,
                                          max_retries=10)
            ext = ExtBot(emu.token, base_url=f"{emu.api_url}/bot", rate_limiter=limiter)
            targets = [base_id + i for i in range(owners)] + \
                [base_id + i for i in range(second)]
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
            base_rate = total / base_elapsed
            base_429 = emu.stats["429"]
        finally:
            await emu.stop()
            await close_database()
    share = ours_rate / rate
    return [
        Figure(f"dispatch: share of the enforced {rate:g} msg/s ({total:,} messages)",
               share * 100, "%", "≥ 95 %", share >= 0.95, base_rate / rate * 100),
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
    return [Figure(f"kpi: report for {period.label} over {scores:,} scores", seconds, "s",
                   "≤ 3 s", seconds <= 3, base,
                   f"{ours.scores:,} current CSI scores, {ours.followups_due:,} follow-ups; "
                   f"baseline: the month's rows loaded with the ORM and counted in "
                   f"Python{check}")]


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
    from bot.campaigns.dispatcher import dealer_context
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
}


def write_report(figures: list[Figure], path: Path = BENCHMARKS_MD, *, scale: float = 1.0
                 ) -> None:
    now = SystemClock().now()
    scaled = "" if scale == 1 else f"; sizes scaled by {scale:g}"
    lines = [
        "# Benchmarks",
        "",
        "Written by `carebot bench`; every figure is measured in the same run as its baseline.",
        "",
        f"- date: {now:%Y-%m-%d %H:%M} UTC",
        (f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
         f"Python {platform.python_version()}, {platform.system()} {platform.release()}"),
        f"- database: SQLite {sqlite3.sqlite_version} in a temporary folder{scaled}",
        "",
        "| benchmark | result | target | met | baseline | ours / baseline | note |",
        "| --- | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for f in figures:
        base = f"{_cell(f.baseline)} {f.unit}" if f.baseline is not None else "–"
        lines.append(f"| {f.name} | {_cell(f.value)} {f.unit} | {f.target} | "
                     f"{'yes' if f.met else '**no**'} | {base} | {f.ratio} | {f.note} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.only or BENCHMARKS))
    figures: list[Figure] = []
    for name in names:
        print(f"running {name} …", flush=True)
        started = time.perf_counter()
        figures.extend(await BENCHMARKS[name](settings, args))
        print(f"  {name} done in {time.perf_counter() - started:.1f} s", flush=True)
    width = max(len(f.name) for f in figures)
    for f in figures:
        base = f"   baseline {_cell(f.baseline)} {f.unit} ({f.ratio})" \
            if f.baseline is not None else ""
        print(f"{f.name:<{width}}  {_cell(f.value):>10} {f.unit:<3} target {f.target:<8} "
              f"{'ok' if f.met else 'MISSED'}{base}")
    if not args.no_write:
        write_report(figures, args.output, scale=args.scale)
        print(f"written to {args.output}")
    return 0 if all(f.met for f in figures) else 1


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
    bench.set_defaults(run=cmd_bench)
