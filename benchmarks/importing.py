"""``import``: deliveries with their journeys from CSV, in a child process (time, peak RSS),
beside one-row-at-a-time ORM creates."""

from __future__ import annotations

import csv
import random
import secrets
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.common import (
    MB,
    Databases,
    Figure,
    child_params,
    child_settings,
    in_child,
    peak,
    reset_peak,
    rss,
    vin,
)
from bot.clock import SystemClock
from bot.config import Settings

IMPORT_ROWS = 100_000
IMPORT_SAMPLE = 2_000  # rows the one-at-a-time baseline is timed on

_CSV_COLUMNS = ("vin", "plate", "model", "owner_name", "phone", "birthday", "licence_expiry",
                "insurance_expiry", "delivered_at", "sales_advisor", "language")


def write_deliveries_csv(path: Path, rows: int, now: datetime, tz: ZoneInfo) -> None:
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
                vin(i), f"粤A{i % 100_000:05d}", rng.choice(("星辰 S7", "星辰 S5", "星辰 X9")),
                f"车主{i}", f"139{i:08d}", born.isoformat(),
                (today + timedelta(days=rng.randrange(3650))).isoformat(),
                (today + timedelta(days=rng.randrange(365))).isoformat(),
                f"{delivered:%Y-%m-%d %H:%M}", f"顾问{i % 12}", rng.choice(("zh_CN", "en")),
            ])


async def child_import(params: dict[str, Any]) -> dict[str, Any]:
    """The child's task: the real import, peak RSS reset just before it."""
    from bot.intake import import_deliveries_file
    from bot.journeys.plans import journey_rules
    from db.setup import close_database, open_database

    settings = child_settings(params)
    now = datetime.fromisoformat(params["now"])
    await open_database(params["db"], apply_migrations=False)
    try:
        before = rss()
        reset_peak()
        started = time.perf_counter()
        result = await import_deliveries_file(Path(params["csv"]), rules=journey_rules(settings),
                                              now=now)
        seconds = time.perf_counter() - started
        top = peak()
    finally:
        await close_database()
    return {"seconds": seconds, "before": before, "peak": top, "total": result.total,
            "created": result.created, "failed": result.failed}


async def _import_one_by_one(path: Path, sample: int, settings: Settings, now: datetime
                             ) -> float:
    """The naive importer: per row, validate, then Customer.create, Vehicle.create and one
    Touchpoint.create per journey step, in a transaction. Returns seconds per row."""
    from tortoise.transactions import in_transaction

    from bot.intake import validate_delivery
    from bot.journeys.plans import journey_rules, plan_delivery
    from bot.journeys.timing import birthday_key
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
        dbs = Databases(folder)
        csv_path = folder / "deliveries.csv"
        write_deliveries_csv(csv_path, rows, now, settings.tz)
        run = await in_child("import", {"db": await dbs.fresh("import"), "csv": str(csv_path),
                                        "now": now.isoformat(), **child_params(settings)})
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
