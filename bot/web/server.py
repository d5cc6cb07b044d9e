"""The aiohttp side: Telegram webhook, intake API; health and metrics in ``ops``.

Routes are thin: they validate, then enqueue or call a domain function.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram.ext import Application

from bot import inbox
from bot.campaigns.journeys import journey_rules
from bot.config import DEFAULT_WEBHOOK_PATH, Settings
from bot.intake import ImportResult, import_deliveries_records, import_visits_records
from bot.services import Services

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
PTB = web.AppKey("ptb", Application)  # type: ignore[type-arg]
INBOX = web.AppKey("inbox", inbox.Inbox)
MAX_BODY = 20 * 1024 * 1024


def webhook_path(settings: Settings) -> str:
    """The route Telegram posts to: the path of the webhook URL, the same one setWebhook gets."""
    return urlparse(settings.webhook_endpoint).path or DEFAULT_WEBHOOK_PATH


def _problem(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def telegram_webhook(request: web.Request) -> web.Response:
    """Telegram's POST: check the secret header, commit the update to the inbox, then 200.

    An update not stored (the database failed) is answered 503: Telegram posts it again."""
    svc = request.app[SERVICES]
    secret = svc.settings.webhook_secret
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return web.Response(status=403, text="forbidden")
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.Response(status=400, text="body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return web.Response(status=400, text="not a Telegram update (no update_id)")
    try:
        await inbox.store([data], svc.clock.now())
    except Exception:
        log.exception("webhook: update %s not stored; answered busy", data["update_id"])
        return web.Response(status=503, text="busy")
    request.app[INBOX].wake()
    return web.Response(text="ok")


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


def make_web_app(services: Services, application: Application,  # type: ignore[type-arg]
                 updates: inbox.Inbox) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[PTB] = application
    app[INBOX] = updates
    app.router.add_post(webhook_path(services.settings), telegram_webhook)
    app.router.add_post("/api/v1/deliveries", post_deliveries)
    app.router.add_post("/api/v1/visits", post_visits)
    from bot.web import campaigns_api, ops  # campaigns (issue 6), /healthz and /metrics

    campaigns_api.add_routes(app)
    ops.add_routes(app)
    from bot.web.console import MACHINE_PREFIXES, setup_console  # the console (issue 7)

    setup_console(app, services, MACHINE_PREFIXES + (webhook_path(services.settings),))
    return app
