"""``webhook``: owners' replies POSTed to carebot in its own process by a load generator in
another, with the inbox in place, beside the same updates handled without it and the mix
handled strictly one update at a time."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Databases, Figure, child_params, in_child
from benchmarks.webhook_child import WEBHOOK_SECRET_ENV
from bot.clock import FakeClock, SystemClock
from bot.config import Settings

WEBHOOK_UPDATES = 2_000
WEBHOOK_SAMPLE = 200  # updates in the one-at-a-time baseline run (its rate is per update)
WEBHOOK_CONNECTIONS = 40  # Telegram's default max_connections for a webhook
WEBHOOK_LATENCY = 0.05  # seconds per Bot API call: a server near a Telegram data centre
WEBHOOK_TIMEOUT = 600.0  # seconds a run may take before it is reported as failed
STAFF_CHAT = -1001000000777
FIRST_OWNER = 8_000_000


def _letters(i: int) -> str:
    """A digit-free tag for owner ``i`` (a free text must not read as a score)."""
    out = ""
    for _ in range(4):
        i, r = divmod(i, 26)
        out += chr(ord("a") + r)
    return out


def queue_owner_updates(emu: Any, user_ids: Sequence[int], contact_label: str
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


async def take_updates(emu: Any) -> list[dict[str, Any]]:
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _webhook_run(emu: Any, url: str, updates_file: Path, count: int, settings: Settings,
                       concurrency: int, *, inbox: bool = True) -> dict[str, Any]:
    """One run: carebot in a child process (``inbox`` false: the route hands each update
    straight to PTB), the load generator in another."""
    from bot.config import DEFAULT_WEBHOOK_PATH

    port = free_port()
    secret = {WEBHOOK_SECRET_ENV: secrets.token_urlsafe(24)}
    app = asyncio.ensure_future(in_child("webhook_app", {
        "port": port, "token": emu.token, "api": emu.api_url, "db": url, "staff": STAFF_CHAT,
        "concurrency": concurrency, "updates": count, "timeout": WEBHOOK_TIMEOUT,
        "inbox": inbox, **child_params(settings)}, extra_env=secret))
    try:
        load = await in_child("webhook_load", {
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


@dataclass
class _Halves:
    """The owners of each run, what each run's updates should store, and their files."""

    owners: dict[str, list[int]]
    expected: dict[str, tuple[int, int]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    surveys_sent: int = 0


async def _seed_owners(emu: Any, url: str, clock: FakeClock, owners: list[int]) -> Any:
    """The owners, each with a 3-day survey sent to them; returns the seeding app."""
    from bot.app import create_app
    from db.models import Customer, Touchpoint

    values: dict[str, Any] = {
        "_env_file": None, "bot_token": emu.token, "telegram_api_url": emu.api_url,
        "database_url": url, "send_rate": 10_000.0, "per_chat_interval": 0.0,
        "group_per_minute": 600, "quiet_hours": "off", "dispatch_batch": 500,
        "dispatch_concurrency": 64, "staff_chat_id": STAFF_CHAT,
        # the owners answer the single-score survey with one press or a typed score
        "survey_questionnaires": False,
    }
    seeder = create_app(Settings(**values), clock)
    await seeder.initialize()
    emu.group(STAFF_CHAT, "客服中心", is_forum=True)
    now = clock.now()
    await Customer.bulk_create([
        Customer(name=f"车主{u - FIRST_OWNER}", phone=f"+86134{u - FIRST_OWNER:08d}",
                 link_token=f"hook{u}", telegram_user_id=u, telegram_chat_id=u,
                 linked_at=now) for u in owners], batch_size=1000)
    for u in owners:
        emu.user(u, first_name=f"车主{u - FIRST_OWNER}")
    await Touchpoint.bulk_create([
        Touchpoint(customer_id=cid, kind="followup_3d", occasion_key="bench",
                   due_at=now, expires_at=now + timedelta(days=1))
        for cid in await Customer.all().values_list("id", flat=True)
    ], batch_size=1000)
    while (await seeder.dispatcher.dispatch_due()).sent:
        pass
    return seeder


async def _prepare(emu: Any, url: str, folder: Path, sizes: dict[str, int]) -> _Halves:
    """Owners with an open survey for each run, and each run's updates in a file."""
    from db.models import Touchpoint
    from db.setup import close_database, open_database

    clock = FakeClock(SystemClock().now())
    everyone = [FIRST_OWNER + i for i in range(sum(sizes.values()))]
    halves = _Halves({})
    for half, n in sizes.items():
        taken = sum(len(p) for p in halves.owners.values())
        halves.owners[half] = everyone[taken:taken + n]
    await open_database(url, apply_migrations=False)
    try:
        seeder = await _seed_owners(emu, url, clock, everyone)
        halves.surveys_sent = await Touchpoint.filter(status="sent").count()
        await seeder.stop()
        label = seeder.services.scripts.label("contact_us_button", "zh_CN")
        for half, part in halves.owners.items():
            halves.expected[half] = queue_owner_updates(emu, part, label)
            halves.files[half] = folder / f"updates_{len(halves.files)}.json"
            halves.files[half].write_text(json.dumps(await take_updates(emu)),
                                          encoding="utf-8")
    finally:
        await close_database()
    return halves


async def _stored(url: str, halves: _Halves) -> dict[str, tuple[int, int]]:
    """Scores and free texts each run's owners have stored."""
    from bot.surveys import LOG_COMMENT
    from db.models import MessageLog, Score
    from db.setup import close_database, open_database

    await open_database(url, apply_migrations=False)
    try:
        stored: dict[str, tuple[int, int]] = {}
        for half, part in halves.owners.items():
            n_scores = await Score.filter(customer__telegram_user_id__in=part).count()
            n_texts = await MessageLog.filter(
                direction="in", kind=LOG_COMMENT, chat_id__in=part).count()
            stored[half] = (n_scores, n_texts)
    finally:
        await close_database()
    return stored


def _check(halves: _Halves, runs: dict[str, dict[str, Any]],
           stored: dict[str, tuple[int, int]]) -> str:
    """'; every score and comment stored once', or what went wrong (marked CHECK)."""
    problems = [f"{half}: {stored[half]} scores/texts stored, {halves.expected[half]} expected"
                for half in runs if stored[half] != halves.expected[half]]
    problems += [f"{half}: answers {run['statuses']}" for half, run in runs.items()
                 if run["statuses"] != {"200": len(halves.owners[half])}]  # JSON keys: str
    if halves.surveys_sent != sum(len(p) for p in halves.owners.values()):
        problems.append(f"{halves.surveys_sent} surveys sent")
    return f"; CHECK: {'; '.join(problems)}" if problems else \
        "; every score and comment stored once"


# Each run: whether the route stores the update in the inbox, and how many at once.
_RUNS: dict[str, tuple[bool, int | None]] = {
    "ours": (True, None), "no inbox": (False, None), "one by one": (True, 1)}


async def bench_webhook(settings: Settings, *, updates: int, sample: int) -> list[Figure]:
    """Owners' replies through the real webhook route: ``updates`` updates (score presses,
    typed scores, free texts, other presses) from as many owners with an open survey, POSTed
    over 40 connections by a load generator in its own process to carebot in another, which
    answers through the emulator (in this process, each call 50 ms away). Beside it, in the
    same run: the same number of updates handled without the inbox (the route hands each to
    PTB's ``process_update`` and answers after handling, as ``webhook_child.direct_route``),
    and the mix handled strictly one update at a time (``CAREBOT_UPDATE_CONCURRENCY=1``),
    timed on a sample."""
    sample = min(updates, sample)
    emu = _distant_emulator()
    await emu.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url = await Databases(folder).fresh("webhook")
            halves = await _prepare(emu, url, folder, {"ours": updates, "no inbox": updates,
                                                       "one by one": sample})
            emu.latency = WEBHOOK_LATENCY
            runs: dict[str, dict[str, Any]] = {}
            for half, (inbox, concurrency) in _RUNS.items():
                runs[half] = await _webhook_run(
                    emu, url, halves.files[half], len(halves.owners[half]), settings,
                    concurrency or settings.update_concurrency, inbox=inbox)
            stored = await _stored(url, halves)
    finally:
        await emu.stop()
    return _figures(settings, updates, sample, runs, _check(halves, runs, stored))


def _figures(settings: Settings, updates: int, sample: int, runs: dict[str, dict[str, Any]],
             check: str) -> list[Figure]:
    ours, bare, base = runs["ours"], runs["no inbox"], runs["one by one"]
    added = ours["cpu"] / bare["cpu"] - 1 if bare["cpu"] else float("inf")
    return [
        Figure(f"webhook: owners' updates recorded per second ({updates:,} updates)",
               ours["rate"], "/s", "≥ 300/s", ours["rate"] >= 300, base["rate"],
               f"{settings.update_concurrency} updates handled at once; each answered through "
               f"the emulator, {WEBHOOK_LATENCY * 1000:.0f} ms a call; {ours['cpu'] * 1000:.1f} "
               f"ms of CPU per update in carebot's process; POSTed over {WEBHOOK_CONNECTIONS} "
               f"connections by a load generator in its own process; without the inbox "
               f"{bare['rate']:,.1f}/s; baseline: one update at a time, on {sample:,} "
               f"updates{check}"),
        Figure("webhook: p99 latency of the POST", ours["p99"] * 1000, "ms", "≤ 200 ms",
               ours["p99"] <= 0.2, bare["p99"] * 1000,
               f"p50 {ours['p50'] * 1000:.1f} ms, max {ours['max'] * 1000:.0f} ms, measured "
               f"by the load generator; baseline: the same updates without the inbox, "
               f"answered after handling (p50 {bare['p50'] * 1000:.1f} ms); one at a time "
               f"with the inbox: p99 {base['p99'] * 1000:.1f} ms"),
        Figure("webhook: CPU per update, with the inbox beside without it",
               ours["cpu"] * 1000, "ms", "≤ +25 % (1.25×)", added <= 0.25, bare["cpu"] * 1000,
               f"the inbox adds {added * 100:+.0f} %; carebot's process time (user + system) "
               f"from serving until every update was handled, per update; without the "
               f"inbox: the same {updates:,} updates in the same run, the route handing each "
               f"to PTB's process_update and answering after handling (a middleware in the "
               f"benchmark's child process, not a setting), {bare['rate']:,.1f}/s"),
    ]
