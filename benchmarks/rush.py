"""``rush``: owners' replies while a campaign goes out at full rate.

A campaign to ``owners`` owners is sent at Telegram's enforced 30 messages a second while
``helpers`` other owners, spread over the campaign, type /help or press a button. Every reply
must arrive, the 95th percentile of the replies' latency (the owner's message queued at
"Telegram" to the reply counted there) must stay within 1.5 s, Telegram must never answer
429, and the campaign must take at least 90 % of the rate the replies leave.

The baseline is the same run with handlers sending straight through PTB's ``AIORateLimiter``
(its overall rate, retries inside PTB), as before the sender: carebot's own limits are
lifted and the bot gets PTB's limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Databases, Figure, size
from bot.clock import FakeClock, SystemClock
from bot.config import Settings

RATE = 30.0
RUSH_OWNERS = 1_000
RUSH_HELPERS = 100


async def _seed(owners: int, helpers: int, first: int, now: Any) -> None:
    from db.models import Customer, Touchpoint

    await Customer.bulk_create([
        Customer(name=f"车主{i}", phone=f"+86131{i:08d}", link_token=secrets.token_urlsafe(9),
                 telegram_user_id=first + i, telegram_chat_id=first + i, linked_at=now,
                 marketing_consent=i < owners)
        for i in range(owners + helpers)], batch_size=1000)
    ids = await Customer.filter(marketing_consent=True).values_list("id", flat=True)
    await Touchpoint.bulk_create([
        Touchpoint(customer_id=cid, kind="bench_campaign", occasion_key="rush", due_at=now,
                   priority=10) for cid in ids], batch_size=1000)


async def _run(*, owners: int, helpers: int, baseline: bool, db_url: str) -> dict[str, Any]:
    """One run on a fresh database and a fresh emulator; what the emulator counted."""
    from telegram.ext import AIORateLimiter, ExtBot

    from bot.app import create_app
    from bot.delivery.limits import Limits
    from bot.sandbox.emulator import TelegramEmulator
    from bot.telegram_http import AiohttpRequest
    from db.setup import close_database, open_database

    first = 6_000_000
    emu = TelegramEmulator(per_chat_burst=1)  # strict: 30/s, 1/s per chat, 20/min per group
    await emu.start()
    await open_database(db_url, apply_migrations=False)
    clock = FakeClock(SystemClock().now())
    with tempfile.TemporaryDirectory() as tmp:
        scripts = Path(tmp)
        for lang in ("zh_CN", "en"):
            (scripts / lang).mkdir()
            (scripts / lang / "bench_campaign.html").write_text(
                "{{ customer.name }}您好！冬季保养特惠。", encoding="utf-8")
        settings = Settings(_env_file=None, bot_token=emu.token,
                            telegram_api_url=emu.api_url, database_url=db_url,
                            quiet_hours="off", dispatch_concurrency=64,
                            scripts_dir=scripts, per_chat_burst=1)
        app = create_app(settings, clock)
        ext: Any = None
        try:
            await app.initialize()
            await _seed(owners, helpers, first, clock.now())
            for i in range(owners + helpers):
                emu.user(first + i)
            if baseline:  # PTB's limiter, carebot's own lifted
                ext = ExtBot(emu.token, base_url=f"{emu.api_url}/bot",
                             rate_limiter=AIORateLimiter(overall_max_rate=RATE,
                                                         overall_time_period=1, max_retries=5),
                             request=AiohttpRequest(connection_pool_size=256))
                await ext.initialize()
                app.sender.bot = ext
                app.sender.limits = Limits(1e6, per_chat_interval=0.0, per_chat_burst=1000,
                                           group_per_minute=10**6)
            return await _rush(app, emu, owners, helpers, first)
        finally:
            if ext is not None:
                await ext.shutdown()
            await app.stop()
            await close_database()
            await emu.stop()


async def _rush(app: Any, emu: Any, owners: int, helpers: int, first: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    dispatch = asyncio.create_task(app.dispatcher.dispatch_due())
    polling = asyncio.Event()

    async def poll() -> None:
        while not polling.is_set():
            if not await app.poll_once():
                await asyncio.sleep(0.01)

    poller = asyncio.create_task(poll())
    asked: dict[int, float] = {}
    spread = max(1.0, owners / RATE * 0.6)  # within the campaign's first 60 %
    for n in range(helpers):
        await asyncio.sleep(spread / helpers)
        user = emu.user(first + owners + n)
        asked[user.chat_id] = loop.time()
        user.send_text("/help")
    await dispatch
    deadline = loop.time() + 60
    while loop.time() < deadline and any(
            not emu.send_times.get(chat) for chat in asked):
        await asyncio.sleep(0.05)
    polling.set()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    finished = loop.time()
    latencies = sorted(
        min((t for t in emu.send_times.get(chat, []) if t >= at), default=finished + 60) - at
        for chat, at in asked.items())
    campaign = sum(len(emu.send_times.get(first + i, [])) for i in range(owners))
    elapsed = max((t for i in range(owners) for t in emu.send_times.get(first + i, [])),
                  default=finished) - started
    return {"latencies": latencies, "campaign": campaign, "elapsed": elapsed,
            "replies": sum(1 for chat in asked if emu.send_times.get(chat)),
            "429": int(emu.stats["429"])}


def _p95(values: list[float]) -> float:
    return values[max(0, -(-len(values) * 95 // 100) - 1)] if values else float("inf")


async def bench_rush(settings: Settings, args: argparse.Namespace) -> list[Figure]:
    """Replies while a campaign goes out at full rate (sizes scaled by ``--scale``)."""
    with tempfile.TemporaryDirectory() as tmp:
        return await rush(Databases(Path(tmp)).fresh, owners=size(RUSH_OWNERS, args.scale, 60),
                          helpers=size(RUSH_HELPERS, args.scale, 5))


async def rush(fresh_db: Any, *, owners: int, helpers: int) -> list[Figure]:
    """Ours, then the baseline, each on a fresh database and emulator."""
    runs = {}
    for name, baseline in (("ours", False), ("baseline", True)):
        runs[name] = await _run(owners=owners, helpers=helpers, baseline=baseline,
                                db_url=await fresh_db(f"rush_{name}"))
    ours, base = runs["ours"], runs["baseline"]

    def share(run: dict[str, Any]) -> float:  # of what the replies leave of 30 a second
        elapsed = max(run["elapsed"], 1e-9)
        return float(run["campaign"] / elapsed / (RATE - run["replies"] / elapsed))

    ours_share, base_share = share(ours), share(base)
    check = "" if ours["campaign"] == owners else \
        f"; CHECK: {ours['campaign']:,} of {owners:,} campaign messages arrived"
    return [
        Figure(f"rush: replies delivered during a {owners:,}-owner campaign",
               ours["replies"], "", f"= {helpers}", ours["replies"] == helpers,
               float(base["replies"]), note=f"{helpers} owners type /help while it runs"),
        Figure("rush: reply latency, 95th percentile", _p95(ours["latencies"]), "s",
               "≤ 1.5 s", _p95(ours["latencies"]) <= 1.5, _p95(base["latencies"]),
               note="from the owner's message to the reply, as the emulator counted; "
                    "baseline: handlers through PTB's AIORateLimiter"),
        Figure("rush: 429 answers received", ours["429"], "", "0", ours["429"] == 0,
               float(base["429"])),
        Figure("rush: campaign's share of the rate the replies leave", ours_share * 100, "%",
               "≥ 90 %", ours_share >= 0.9, base_share * 100,
               note=f"30 msg/s enforced; {ours['campaign']:,} messages in "
                    f"{ours['elapsed']:.1f} s{check}"),
    ]
