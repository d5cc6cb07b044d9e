"""``dispatch``: the outbox against the emulator's enforced rate, beside PTB's AIORateLimiter.

Each run gets a fresh emulator in a process of its own, as Telegram would be: the limits
are enforced by a server that shares neither the sender's event loop nor its process, and
the figures (429s, gaps, the busiest second) are the server's own count.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Databases, Figure, child_env
from bot.clock import FakeClock, SystemClock
from bot.config import Settings

DISPATCH_OWNERS = 3_000


@asynccontextmanager
async def emulator_process(*, rate: float, users: range) -> AsyncIterator[dict[str, str]]:
    """The Telegram emulator in a process of its own (``python -m bot.sandbox.serve``),
    enforcing ``rate`` msg/s and 1 s per chat (no burst: the strictest reading), with
    ``users`` as owners who started the bot.
    Yields what it printed: ``api_url``, ``token`` and ``stats_url``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sandbox.serve", "--global-rate", repr(rate),
        "--per-chat-interval", "1", "--per-chat-burst", "1",
        "--users", f"{users.start}:{len(users)}",
        "--until-stdin-closes", cwd=str(ROOT), env=child_env(),
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


async def emulator_stats(stats_url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(stats_url) as response:
        response.raise_for_status()
        stats: dict[str, Any] = await response.json()
    return stats


async def _seed_dispatch(owners: int, base_id: int, doubles: float, clock: FakeClock
                         ) -> tuple[int, int]:
    """``owners`` owners with a due touchpoint each, a second one for some; (total, second)."""
    from db.models import Customer, Touchpoint

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
    return len(rows), second


async def _dispatch_ours(emu: dict[str, str], rate: float, total: int, clock: FakeClock,
                         scripts_dir: Path) -> float:
    """Our dispatcher and sender until every touchpoint went out; the seconds it took."""
    from telegram import Bot

    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.limits import Limits
    from bot.delivery.sender import Sender
    from bot.telegram_http import AiohttpRequest
    from bot.texts import Scripts

    # The limiter is given the enforced rate itself: it counts each send until its answer
    # is back, so the server never sees more (no margin needed).
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
        dispatcher = Dispatcher(Sender(bot, limits), settings, clock, Scripts(scripts_dir))
        started = time.perf_counter()
        sent = 0
        while sent < total:
            report = await dispatcher.dispatch_due()
            sent += report.sent
            if report.sent == 0:
                clock.advance(timedelta(seconds=5))  # only retries left
        return time.perf_counter() - started


async def _dispatch_baseline(targets: list[int], rate: float, users: range
                             ) -> tuple[float, dict[str, Any]]:
    """PTB's AIORateLimiter, every message gathered at once, on a fresh server."""
    from telegram.error import RetryAfter
    from telegram.ext import AIORateLimiter, ExtBot

    from bot.telegram_http import AiohttpRequest

    async with emulator_process(rate=rate, users=users) as emu:
        limiter: Any = AIORateLimiter(overall_max_rate=rate, overall_time_period=1,
                                      max_retries=10)
        ext = ExtBot(emu["token"], base_url=f"{emu['api_url']}/bot", rate_limiter=limiter,
                     request=AiohttpRequest(connection_pool_size=256))
        sem = asyncio.Semaphore(64)

        async def send(chat_id: int) -> None:
            async with sem:
                with suppress(RetryAfter):
                    await ext.send_message(chat_id, "baseline")

        async with ext:
            started = time.perf_counter()
            await asyncio.gather(*(send(c) for c in targets))
            elapsed = time.perf_counter() - started
        return elapsed, await emulator_stats(emu["stats_url"])


async def bench_dispatch(*, owners: int, rate: float, doubles: float = 0.1) -> list[Figure]:
    """Dispatch ``owners`` touchpoints (+ a second one for some owners) through the emulator
    enforcing ``rate`` msg/s and 1 s per chat; baseline: PTB's AIORateLimiter send loop."""
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
        await open_database(await Databases(Path(tmp)).fresh("dispatch"),
                            apply_migrations=False)
        try:
            total, second = await _seed_dispatch(owners, base_id, doubles, clock)
            async with emulator_process(rate=rate, users=users) as emu:
                elapsed = await _dispatch_ours(emu, rate, total, clock, scripts_dir)
                ours = await emulator_stats(emu["stats_url"])
        finally:
            await close_database()
    targets = [base_id + i for i in range(owners)] + [base_id + i for i in range(second)]
    base_elapsed, base = await _dispatch_baseline(targets, rate, users)
    return _figures(total, rate, total / elapsed, total / base_elapsed, ours, base)


def _figures(total: int, rate: float, ours_rate: float, base_rate: float,
             ours: dict[str, Any], base: dict[str, Any]) -> list[Figure]:
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
