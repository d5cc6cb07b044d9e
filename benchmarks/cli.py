"""``carebot bench``: the command (``bot.cli`` adds it when this checkout's suite is there)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.campaign import CAMPAIGN_OWNERS, CAMPAIGN_SAMPLE, bench_campaign
from benchmarks.common import POSTGRES_URL, Figure, Target, cell, size, use_target
from benchmarks.crash import CRASH_UPDATES, bench_crash
from benchmarks.dispatch import DISPATCH_OWNERS, bench_dispatch
from benchmarks.importing import IMPORT_ROWS, IMPORT_SAMPLE, bench_import
from benchmarks.kpi import KPI_SCORES, bench_kpi
from benchmarks.mileage import MILEAGE_CARS, bench_mileage
from benchmarks.report import BENCHMARKS_MD, read_earlier, write_report
from benchmarks.rush import bench_rush
from benchmarks.scan import SCAN_OWNERS, bench_scan
from benchmarks.webhook import WEBHOOK_SAMPLE, WEBHOOK_UPDATES, bench_webhook
from bot.config import Settings

Bench = Callable[[Settings, argparse.Namespace], Awaitable[list[Figure]]]

BENCHMARKS: dict[str, Bench] = {
    "dispatch": lambda s, a: bench_dispatch(
        owners=a.owners if a.owners is not None else size(DISPATCH_OWNERS, a.scale, 20),
        rate=a.rate),
    "import": lambda s, a: bench_import(s, rows=size(IMPORT_ROWS, a.scale, 20),
                                        sample=size(IMPORT_SAMPLE, a.scale, 10)),
    "scan": lambda s, a: bench_scan(s, owners=size(SCAN_OWNERS, a.scale, 100)),
    "mileage": lambda s, a: bench_mileage(s, cars=size(MILEAGE_CARS, a.scale, 100)),
    "kpi": lambda s, a: bench_kpi(s, scores=size(KPI_SCORES, a.scale, 200)),
    "campaign": lambda s, a: bench_campaign(s, owners=size(CAMPAIGN_OWNERS, a.scale, 50),
                                            sample=size(CAMPAIGN_SAMPLE, a.scale, 10)),
    "webhook": lambda s, a: bench_webhook(s, updates=size(WEBHOOK_UPDATES, a.scale, 50),
                                          sample=size(WEBHOOK_SAMPLE, a.scale, 20)),
    "rush": bench_rush,
    "crash": lambda s, a: bench_crash(s, updates=size(CRASH_UPDATES, a.scale, 20)),
}


async def _targets(args: argparse.Namespace) -> list[Target]:
    """SQLite always; PostgreSQL too when asked for and its server answers."""
    wanted = args.db or ["sqlite", "postgres"]
    targets = [Target("SQLite")] if "sqlite" in wanted else []
    if "postgres" in wanted:
        pg = Target("PostgreSQL", args.postgres)
        why = await pg.reachable()
        if why:
            print(f"{why}: PostgreSQL figures skipped", flush=True)
        else:
            targets.append(pg)
    return targets


async def _run_pass(target: Target, names: list[str], settings: Settings,
                    args: argparse.Namespace) -> list[Figure]:
    """Every benchmark asked for, on one database; its databases dropped after each."""
    figures: list[Figure] = []
    use_target(target)
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
        use_target(Target("SQLite"))
    return figures


def _print(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    for f in figures:
        base = f"   baseline {cell(f.baseline)} {f.unit} ({f.ratio})" \
            if f.baseline is not None else ""
        print(f"{f.database:<10} {f.name:<{width}}  {cell(f.value):>10} {f.unit:<3} "
              f"target {f.target:<8} {'ok' if f.met else 'MISSED'}{base}")


async def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.only or BENCHMARKS))
    figures: list[Figure] = []
    targets = await _targets(args)
    for target in targets:
        figures += await _run_pass(target, names, settings, args)
    if not figures:
        print("no database to run the benchmarks on")
        return 1
    _print(figures)
    if not args.no_write:
        # Some benchmarks only, at full size: the report keeps the others' last figures.
        earlier = read_earlier(args.output, names, [t.label for t in targets]) \
            if args.only and args.scale == 1 else None
        write_report(figures, args.output, scale=args.scale,
                     databases={t.label: t.description for t in targets},
                     order=list(BENCHMARKS), earlier=earlier)
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
