"""The aiohttp side: Telegram webhook, intake API; health and metrics in ``ops``.

Routes are thin: they validate, then enqueue or call a domain function.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.campaigns.journeys import journey_rules
from bot.config import DEFAULT_WEBHOOK_PATH, Settings
from bot.intake import ImportResult, import_deliveries_records, import_visits_records
from bot.services import Services

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
PTB = web.AppKey("ptb", Application)  # type: ignore[type-arg]
MAX_BODY = 20 * 1024 * 1024
QUEUE_WAIT = 20.0  # seconds a webhook post waits for room before "busy" (Telegram retries)


def webhook_path(settings: Settings) -> str:
    """The route Telegram posts to: the path of the webhook URL, the same one setWebhook gets."""
    return urlparse(settings.webhook_endpoint).path or DEFAULT_WEBHOOK_PATH


def _problem(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def telegram_webhook(request: web.Request) -> web.Response:
    """Telegram's POST: check the secret header, then hand the update to PTB's queue."""
    svc = request.app[SERVICES]
    secret = svc.settings.webhook_secret
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return web.Response(status=403, text="forbidden")
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.Response(status=400, text="body is not JSON")
    application = request.app[PTB]
    if not await _room_for_one_more(application.update_queue, svc.settings.update_queue_limit):
        log.warning("webhook: %d updates waiting; answered busy, Telegram will resend",
                    svc.settings.update_queue_limit)
        return web.Response(status=503, text="busy")
    update = Update.de_json(data, application.bot)
    await application.update_queue.put(update)
    return web.Response(text="ok")


async def _room_for_one_more(queue: asyncio.Queue[object], limit: int) -> bool:
    """Hold the post while ``limit`` updates are received and not yet handled, so memory stays
    bounded after an outage, when Telegram delivers its backlog as fast as we answer: the
    rest waits at Telegram. False after ``QUEUE_WAIT``: the update is not taken, and Telegram
    posts it again later (never both, so never handled twice)."""
    deadline = time.monotonic() + QUEUE_WAIT
    while getattr(queue, "_unfinished_tasks", queue.qsize()) >= limit:  # put, not task_done
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _authorized(request: web.Request) -> bool:
    key = request.app[SERVICES].settings.api_key
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    return bool(key) and scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), key.encode()
    )


ImportRecords = Callable[..., Awaitable[ImportResult]]


async def _intake(request: web.Request, key: str, import_records: ImportRecords) -> web.Response:
    """One intake route for every kind of record: auth, JSON, shape, then the shared import.

    200 when every row is good; 422 with per-row, per-field errors (good rows stored all the
    same); 400 for a body that is not JSON; 401 without the key."""
    svc = request.app[SERVICES]
    if not _authorized(request):
        return _problem(401, "missing or wrong API key: send 'Authorization: Bearer <API_KEY>'"
                        if svc.settings.api_key else
                        "the intake API is off: set CAREBOT_API_KEY to enable it")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _problem(400, "the body is not valid JSON")
    records = body.get(key) if isinstance(body, dict) else body
    if not isinstance(records, list):
        return _problem(422, f'send a JSON array of {key}, or {{"{key}": [...]}}')
    result = await import_records(records, rules=journey_rules(svc.settings), now=svc.clock.now())
    return web.json_response(result.to_dict(), status=422 if result.errors else 200)


async def post_deliveries(request: web.Request) -> web.Response:
    """POST /api/v1/deliveries: a JSON array of deliveries (or {"deliveries": [...]})."""
    return await _intake(request, "deliveries", import_deliveries_records)


async def post_visits(request: web.Request) -> web.Response:
    """POST /api/v1/visits: a JSON array of workshop visits (or {"visits": [...]})."""
    return await _intake(request, "visits", import_visits_records)


def make_web_app(services: Services, application: Application) -> web.Application:  # type: ignore[type-arg]
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[PTB] = application
    app.router.add_post(webhook_path(services.settings), telegram_webhook)
    app.router.add_post("/api/v1/deliveries", post_deliveries)
    app.router.add_post("/api/v1/visits", post_visits)
    from bot.web import campaigns_api, ops  # campaigns (issue 6), /healthz and /metrics

    campaigns_api.add_routes(app)
    ops.add_routes(app)
    from bot.web.console import MACHINE_PREFIXES, setup_console  # the console (issue 7)

    setup_console(app, services, MACHINE_PREFIXES + (webhook_path(services.settings),))
    return app
