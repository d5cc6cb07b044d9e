"""``mileage``: the daily service-due scan (by time or mileage) over a million cars, in a
child process, beside the naive way: every day, every car's visits read and its forecast
worked out again in Python."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.common import (
    MB,
    Databases,
    Figure,
    check_ids,
    child_params,
    child_settings,
    in_child,
    peak,
    reset_peak,
    rss,
    seed,
    stream,
    vin,
)
from bot.clock import SystemClock
from bot.config import Settings

MILEAGE_CARS = 1_000_000
REFRESH_SAMPLE = 10_000


def _history(i: int, rng: random.Random, today: date) -> tuple[date, list[tuple[str, date, int]]]:
    """A car delivered 1-5 years ago, driven 5-120 km a day, with a maintenance visit in the
    last year and a repair after it: (delivered on, [(kind, day, km)])."""
    delivered = today - timedelta(days=365 + rng.randrange(4 * 365))
    per_day = rng.uniform(5, 120)
    service = today - timedelta(days=rng.randrange(1, 365))
    repair = service + timedelta(days=rng.randrange(0, max(1, (today - service).days)))
    return delivered, [
        ("maintenance", service, int((service - delivered).days * per_day)),
        ("repair", repair, int((repair - delivered).days * per_day)),
    ]


async def _seed(cars: int, now: datetime, tz: ZoneInfo) -> None:
    """``cars`` owners with one car each, two visits per car (2 × ``cars`` visits) and the
    forecast each car's visits give (as the import would have stored it)."""
    from bot.journeys.forecasts import CarHistory, car_forecast
    from bot.journeys.plans import JourneyRules
    from bot.journeys.timing import at_local
    from db.models import Customer, ServiceForecast, Vehicle, Visit

    rng = random.Random(3)
    today = now.astimezone(tz).date()
    rules = JourneyRules(tz=tz, quiet=None)
    histories = [_history(i, rng, today) for i in range(cars)]
    await seed(Customer, ("name", "phone", "link_token", "telegram_user_id", "telegram_chat_id"),
               ([f"车主{i}", f"+86137{i:08d}", f"km{i}", 2_000_000_000 + i, 2_000_000_000 + i]
                for i in range(cars)), now)
    await check_ids(Customer, cars)
    await seed(Vehicle, ("vin", "customer_id", "model", "delivered_at", "status"), (
        [vin(i), i + 1, "星辰 S7", at_local(h[0], datetime.min.time(), tz), "active"]
        for i, h in enumerate(histories)), now)
    await seed(Visit, ("vehicle_id", "kind", "left_at", "mileage", "advisor", "major_repair"), (
        [i + 1, kind, at_local(day, datetime.min.time().replace(hour=16), tz), km, "李娜", False]
        for i, h in enumerate(histories) for kind, day, km in h[1]), now)

    def forecasts() -> Iterable[list[Any]]:
        for i, (delivered, visits) in enumerate(histories):
            car = CarHistory(vehicle_id=i + 1, customer_id=i + 1, model="星辰 S7",
                             delivered_on=delivered, owner_readings=(), visits=tuple(
                                 (2 * i + n + 1, day, kind, km, None, None)
                                 for n, (kind, day, km) in enumerate(visits)))
            fc = car_forecast(car, rules)
            assert fc is not None
            f = fc.forecast
            yield [fc.vehicle_id, fc.customer_id, fc.last_service_on, f.due_on,
                   f.due_on - timedelta(days=rules.service_due_lead_days), f.by, f.due_km,
                   fc.interval_km, f.km_per_day, fc.cycle, now]

    await seed(ServiceForecast, ("vehicle_id", "customer_id", "last_service_on", "due_on",
                                 "remind_on", "by", "due_km", "interval_km", "km_per_day",
                                 "cycle", "updated_at"), forecasts(), now)


async def child_mileage(params: dict[str, Any]) -> dict[str, Any]:
    """The child's task: the daily scan over each database in turn, peak RSS reset first."""
    from bot.journeys.occasions import occasion_rules, run_scan
    from db.setup import close_database, open_database

    settings = child_settings(params)
    now = datetime.fromisoformat(params["now"])
    runs: list[dict[str, Any]] = []
    for url in params["dbs"]:
        await open_database(url, apply_migrations=False)
        try:
            rules = occasion_rules(settings)
            before = rss()
            reset_peak()
            started = time.perf_counter()
            report = await run_scan(now, rules)
            seconds = time.perf_counter() - started
            top = peak()
        finally:
            await close_database()
        runs.append({"seconds": seconds, "before": before, "peak": top,
                     "written": report.service_due})
    return {"runs": runs}


async def _naive(now: datetime, settings: Settings) -> int:
    """Every car's visits read (streamed, in id order: a car's visits are consecutive) and
    its forecast worked out in Python; what is due today written."""
    from bot.journeys.forecasts import CarHistory, car_forecast, due_now
    from bot.journeys.plans import journey_rules, write_touchpoints
    from bot.journeys.timing import local_date

    rules = journey_rules(settings)
    today = local_date(now, rules.tz)
    cars: dict[int, tuple[int, date | None]] = {}
    async for rows in stream("vehicle", ("customer_id", "delivered_at")):
        for vid, cid, at in rows:
            cars[vid] = (cid, local_date(_aware(at), rules.tz) if at else None)
    plans: list[Any] = []
    current: list[tuple[int, date, str, int | None, date | None, int | None]] = []
    car_id = 0

    def close() -> None:
        if not current:
            return
        cid, delivered = cars[car_id]
        fc = car_forecast(CarHistory(vehicle_id=car_id, customer_id=cid, model="星辰 S7",
                                     delivered_on=delivered, visits=tuple(current),
                                     owner_readings=()), rules)
        plan = due_now(fc, today, rules) if fc is not None else None
        if plan is not None and fc is not None and fc.forecast.due_on - timedelta(
                days=rules.service_due_lead_days) == today:
            plans.append(plan)

    async for rows in stream("visit", ("vehicle_id", "left_at", "kind", "mileage")):
        for visit_id, vid, at, kind, km in rows:
            if vid != car_id:
                close()
                current, car_id = [], vid
            current.append((visit_id, local_date(_aware(at), rules.tz), str(kind), km, None,
                            None))
    close()
    await write_touchpoints(plans, now=now)
    return len(plans)


def _aware(value: Any) -> datetime:
    """A raw column value as an aware datetime (SQLite hands back ISO text)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, datetime)
    return at


async def _refresh_sample(cars: int, now: datetime, settings: Settings) -> float:
    """What a visit import pays per car: ``refresh_forecasts`` on a sample, seconds a car."""
    from bot.journeys.forecasts import refresh_forecasts
    from bot.journeys.plans import journey_rules

    sample = list(range(1, min(cars, REFRESH_SAMPLE) + 1))
    started = time.perf_counter()
    await refresh_forecasts(sample, now=now, rules=journey_rules(settings))
    return (time.perf_counter() - started) / len(sample)


async def bench_mileage(settings: Settings, *, cars: int) -> list[Figure]:
    """The daily scan over ``cars`` cars' forecasts (and over a tenth, for memory) in a child
    process; baseline: the forecast worked out again for every car, same database."""
    from db.models import ScanState, Touchpoint
    from db.setup import close_database, open_database

    now = SystemClock().now()
    small = max(10, cars // 10)
    with tempfile.TemporaryDirectory() as tmp:
        dbs = Databases(Path(tmp))
        urls: dict[int, str] = {}
        for n in (small, cars):
            urls[n] = await dbs.fresh(f"mileage_{n}")
            await open_database(urls[n], apply_migrations=False)
            try:
                await _seed(n, now, settings.tz)
            finally:
                await close_database()
        params = {"now": now.isoformat(), **child_params(settings)}
        little, run = (await in_child("mileage", {"dbs": [urls[small], urls[cars]],
                                                  **params}))["runs"]
        await open_database(urls[cars], apply_migrations=False)
        try:
            await Touchpoint.all().delete()
            await ScanState.all().delete()
            started = time.perf_counter()
            written = await _naive(now, settings)
            base = time.perf_counter() - started
            per_car = await _refresh_sample(cars, now, settings)
        finally:
            await close_database()
    return _figures(cars, small, run, little, written, base, per_car)


def _figures(cars: int, small: int, run: dict[str, Any], little: dict[str, Any],
             written: int, base: float, per_car: float) -> list[Figure]:
    seconds = run["seconds"]
    grown = (run["peak"] - run["before"]) / MB
    grown_small = (little["peak"] - little["before"]) / MB
    check = "" if written == run["written"] else \
        f"; CHECK: the loop wrote {written:,}, the scan {run['written']:,}"
    return [
        Figure(f"mileage: daily service-due scan (time or km) over {cars:,} cars", seconds, "s",
               "≤ 10 s", seconds <= 10, base,
               f"{run['written']:,} reminders written (the whole occasions scan timed); "
               f"{2 * cars:,} visits; baseline: every car's visits streamed in id order and its "
               f"forecast worked out again in Python, same rules{check}; what a visit import "
               f"pays instead: refresh_forecasts {per_car * 1000:.2f} ms a car "
               f"(on {min(cars, REFRESH_SAMPLE):,} cars)"),
        Figure(f"mileage: RSS growth during the scan, {cars:,} cars", grown, "MB",
               "flat (≤ +16 MB vs a tenth)", grown - grown_small <= 16, grown_small,
               f"baseline column: the same scan over {small:,} cars; peak RSS minus RSS "
               "before, in a child process (peak reset before each scan)"),
    ]
