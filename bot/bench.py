"""`carebot bench`: performance figures measured side by side with a naive baseline.

Each benchmark runs against real parts on this machine (SQLite in a temporary folder, the
Telegram emulator over loopback HTTP) and reports its figure beside the target and the
baseline's figure from the same run, then writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.clock import FakeClock, SystemClock
from bot.config import Settings

BENCHMARKS_MD = Path("docs/benchmarks.md")


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
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


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


BENCHMARKS: dict[str, Callable[[argparse.Namespace], Awaitable[list[Figure]]]] = {
    "dispatch": lambda a: bench_dispatch(owners=a.owners, rate=a.rate),
}


def write_report(figures: list[Figure], path: Path = BENCHMARKS_MD) -> None:
    now = SystemClock().now()
    lines = [
        "# Benchmarks",
        "",
        "Written by `carebot bench`; every figure is measured in the same run as its baseline.",
        "",
        f"- date: {now:%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}",
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
    names = args.only or list(BENCHMARKS)
    figures: list[Figure] = []
    for name in names:
        print(f"running {name} …", flush=True)
        figures.extend(await BENCHMARKS[name](args))
    width = max(len(f.name) for f in figures)
    for f in figures:
        base = f"   baseline {_cell(f.baseline)} {f.unit}" if f.baseline is not None else ""
        print(f"{f.name:<{width}}  {_cell(f.value):>10} {f.unit:<3} target {f.target:<8} "
              f"{'ok' if f.met else 'MISSED'}{base}")
    if not args.no_write:
        write_report(figures)
        print(f"written to {BENCHMARKS_MD}")
    return 0 if all(f.met for f in figures) else 1


def add_commands(sub: Any) -> None:
    bench = sub.add_parser("bench", help="run the benchmarks, write docs/benchmarks.md")
    bench.add_argument("--only", action="append", choices=sorted(BENCHMARKS),
                       help="run only this benchmark (repeatable)")
    bench.add_argument("--owners", type=int, default=3000, help="owners in the dispatch run")
    bench.add_argument("--rate", type=float, default=100.0,
                       help="the emulator's enforced global rate, msg/s")
    bench.add_argument("--no-write", action="store_true", help="print only")
    bench.set_defaults(run=cmd_bench)
