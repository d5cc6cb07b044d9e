"""``scan``: the daily occasions scan (and its memory), each in a child process, beside a
Python loop over every owner and car."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
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

SCAN_OWNERS = 1_000_000


async def _seed_scan(owners: int, now: datetime, tz: ZoneInfo) -> None:
    """``owners`` owners with one car each: birthdays over 55 years (5 % lunar), licences
    expiring over the next 10 years, policies over the next year, 70 % linked."""
    from bot.journeys.timing import birthday_key
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

    await seed(Customer, ("name", "phone", "birthday", "licence_expiry", "birthday_lunar",
                          "birthday_md", "link_token", "telegram_user_id", "telegram_chat_id"),
               customers(), now)
    await check_ids(Customer, owners)
    active, scrapped = VehicleStatus.ACTIVE.value, VehicleStatus.SCRAPPED.value
    await seed(Vehicle, ("vin", "customer_id", "model", "insurance_expiry", "status"), (
        [vin(i), i + 1, "星辰 S7", today + timedelta(days=rng.randrange(365)),
         scrapped if rng.random() < 0.02 else active]
        for i in range(owners)), now)


async def child_scan(params: dict[str, Any]) -> dict[str, Any]:
    """The child's task: the scan over each database of ``params["dbs"]`` in turn, peak RSS
    reset before each."""
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
                     "written": report.written})
    return {"runs": runs}


@dataclass
class _Today:
    """What the naive scan checks each row against (the same rules as the real scan's
    first run: today only)."""

    today: date
    tz: ZoneInfo
    due: datetime
    end_today: datetime
    stamp: str
    birthdays: set[str]
    licences: dict[str, tuple[date, int]]
    insurances: dict[str, tuple[date, int]]
    holidays: list[str]


def _today(now: datetime, settings: Settings) -> _Today:
    from bot.journeys.occasions import occasion_rules
    from bot.journeys.timing import (
        at_local,
        birthday_keys_on,
        end_of_local_day,
        expiry_reminders_due,
        local_date,
    )
    from bot.schedule import shift_out_of_quiet_hours

    rules = occasion_rules(settings)
    tz = rules.tz
    today = local_date(now, tz)
    return _Today(
        today, tz, shift_out_of_quiet_hours(at_local(today, rules.scan_time, tz), tz,
                                            rules.quiet),
        end_of_local_day(today, tz), f"{today:%Y%m%d}", set(birthday_keys_on(today)),
        {e.isoformat(): (e, lead)
         for e, lead in expiry_reminders_due([today], today, rules.licence_leads)},
        {e.isoformat(): (e, lead)
         for e, lead in expiry_reminders_due([today], today, rules.insurance_leads)},
        [h.name for h in rules.holidays if h.falls_on(today)])


async def _owner_plans(t: _Today) -> list[Any]:
    from bot.journeys.occasions import _expiry_payload
    from bot.journeys.plans import (
        BIRTHDAY,
        GREETING_PRIORITY,
        HOLIDAY,
        LICENCE,
        SERVICE_PRIORITY,
        TouchpointPlan,
    )
    from bot.journeys.timing import end_of_local_day

    plans: list[Any] = []
    async for rows in stream("customer", ("birthday_md", "licence_expiry", "telegram_chat_id",
                                          "unreachable_at", "followups_refused")):
        for cid, md, licence, chat, unreachable, refused in rows:
            if md in t.birthdays:
                plans.append(TouchpointPlan(cid, None, BIRTHDAY, f"birthday:{t.stamp}", t.due,
                                            t.end_today, GREETING_PRIORITY,
                                            {"day": t.today.isoformat()}))
            hit = t.licences.get(str(licence)[:10]) if licence is not None else None
            if hit is not None:
                e, lead = hit
                plans.append(TouchpointPlan(cid, None, LICENCE, f"licence:{e:%Y%m%d}:{lead}",
                                            t.due, end_of_local_day(e, t.tz), SERVICE_PRIORITY,
                                            _expiry_payload(e, lead, t.today)))
            if t.holidays and chat is not None and unreachable is None and not refused:
                plans.append(TouchpointPlan(cid, None, HOLIDAY, f"holiday:{t.stamp}", t.due,
                                            t.end_today, GREETING_PRIORITY,
                                            {"name": t.holidays[0],
                                             "day": t.today.isoformat()}))
    return plans


async def _vehicle_plans(t: _Today) -> list[Any]:
    from bot.journeys.occasions import _expiry_payload
    from bot.journeys.plans import INSURANCE, SERVICE_PRIORITY, TouchpointPlan
    from bot.journeys.timing import end_of_local_day
    from db.models import VehicleStatus

    plans: list[Any] = []
    async for rows in stream("vehicle", ("customer_id", "insurance_expiry", "status")):
        for vid, cid, insurance, status in rows:
            hit = t.insurances.get(str(insurance)[:10]) if insurance is not None else None
            if hit is not None and status == VehicleStatus.ACTIVE.value:
                e, lead = hit
                plans.append(TouchpointPlan(cid, vid, INSURANCE,
                                            f"insurance:{e:%Y%m%d}:{lead}:{vid}", t.due,
                                            end_of_local_day(e, t.tz), SERVICE_PRIORITY,
                                            _expiry_payload(e, lead, t.today)))
    return plans


async def _scan_in_python(now: datetime, settings: Settings) -> int:
    """The naive scan: read every owner and car (streamed), check the rules in Python, write
    what is due. The same rules as bot.journeys.occasions for a first scan (today only)."""
    from bot.journeys.plans import write_touchpoints

    t = _today(now, settings)
    plans = await _owner_plans(t) + await _vehicle_plans(t)
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
        dbs = Databases(Path(tmp))
        urls: dict[int, str] = {}
        for n in (small, owners):
            urls[n] = await dbs.fresh(f"scan_{n}")
            await open_database(urls[n], apply_migrations=False)
            try:
                await _seed_scan(n, now, settings.tz)
            finally:
                await close_database()
        params = {"now": now.isoformat(), **child_params(settings)}
        little, run = (await in_child("scan", {"dbs": [urls[small], urls[owners]],
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
    return _figures(owners, small, run, little, written, base)


def _figures(owners: int, small: int, run: dict[str, Any], little: dict[str, Any],
             written: int, base: float) -> list[Figure]:
    seconds = run["seconds"]
    grown = (run["peak"] - run["before"]) / MB
    grown_small = (little["peak"] - little["before"]) / MB
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
