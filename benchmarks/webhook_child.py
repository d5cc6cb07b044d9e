"""The webhook benchmark's child processes: carebot serving its webhook, and the load
generator posting to it (each its own process, as Telegram and carebot would be)."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

from bot.config import Settings

WEBHOOK_SECRET_ENV = "CAREBOT_WEBHOOK_SECRET"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _app_settings(params: dict[str, Any]) -> Settings:
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
        "survey_questionnaires": False,  # the single-score survey, as the seeder's
    }  # the secret comes from the environment (CAREBOT_WEBHOOK_SECRET)
    return Settings(**values)


def direct_route(carebot: Any, *, answer_first: bool) -> Any:
    """The webhook without the inbox, for the baselines only (a middleware added to the
    app in a benchmark's child process, never a setting): the secret checked, the body
    read, the update handed straight to PTB's ``process_update`` (SQLite statements on the
    loop, up to ``update_concurrency`` at once, as the inbox's workers and carebot before
    the inbox did), answered 200 after handling, or at once (``answer_first``: PTB's own
    webhook server). It sits innermost, so the same middlewares time and count the POST."""
    from aiohttp import web
    from telegram import Update

    from bot.web.server import webhook_path
    from db.sqlite import inline_statements

    application = carebot.application
    path = webhook_path(carebot.settings)
    secret = carebot.settings.webhook_secret.encode()
    room = asyncio.Semaphore(carebot.settings.update_concurrency)
    in_hand: set[asyncio.Task[None]] = set()

    async def handle(update: Update) -> None:
        async with room:
            with inline_statements():
                await application.process_update(update)

    @web.middleware
    async def direct(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method != "POST" or request.path != path:
            response: web.StreamResponse = await handler(request)
            return response
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret):
            return web.Response(status=403, text="forbidden")
        data = await request.json()
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not a Telegram update (no update_id)")
        update = Update.de_json(data, application.bot)
        if answer_first:
            task = asyncio.create_task(handle(update))
            in_hand.add(task)
            task.add_done_callback(in_hand.discard)
        else:
            await handle(update)
        return web.Response(text="ok")

    return direct


async def child_webhook_app(params: dict[str, Any]) -> dict[str, Any]:
    """carebot in webhook mode (its own process): serve until ``updates`` were accepted and
    every one was handled; report when that was (``time.monotonic``, one clock for every
    process of the machine). ``inbox`` false: the route hands each update straight to PTB
    and answers after handling (``direct_route``)."""
    from bot.app import create_app
    from bot.web.ops import STATS
    from db.setup import close_database, open_database

    settings = _app_settings(params)
    await open_database(params["db"], apply_migrations=False)
    carebot = create_app(settings)
    if not params.get("inbox", True):
        carebot.web_app.middlewares.append(direct_route(carebot, answer_first=False))
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


async def _healthy(http: Any, base: str) -> None:
    """Wait until the app answers /healthz (two minutes at most)."""
    import aiohttp

    deadline = time.monotonic() + 120
    while True:
        try:
            async with http.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the app never answered /healthz")
        await asyncio.sleep(0.05)


async def child_webhook_load(params: dict[str, Any]) -> dict[str, Any]:
    """The load generator (its own process): wait for /healthz, then POST every update over
    ``connections`` connections as fast as answers come; time each POST."""
    import aiohttp

    bodies = [json.dumps(u).encode() for u in
              json.loads(Path(params["updates"]).read_text(encoding="utf-8"))]
    headers = {"Content-Type": "application/json",
               SECRET_HEADER: os.environ[WEBHOOK_SECRET_ENV]}
    base = f"http://127.0.0.1:{params['port']}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=params["connections"])
    async with aiohttp.ClientSession(connector=connector) as http:
        await _healthy(http, base)
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
