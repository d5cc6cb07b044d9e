"""The aiohttp side: Telegram webhook, intake API; health and metrics in ``ops``.

Routes are thin: they validate, then enqueue or call a domain function.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram.ext import Application

from bot import inbox
from bot.config import DEFAULT_WEBHOOK_PATH, Settings
from bot.intake import ImportResult, import_deliveries_records, import_visits_records
from bot.services import Services
from bot.web import campaigns_api, ops
from bot.web.auth import api_key_ok
from bot.web.bodies import BodyError, read_json
from bot.web.console import MACHINE_PREFIXES, setup_console
from bot.web.keys import INBOX, PTB, SERVICES, WEBHOOK_PATH

log = logging.getLogger(__name__)

MAX_BODY = 20 * 1024 * 1024  # any request (a console upload is the largest)
UPDATE_MAX_BODY = 1024 * 1024  # a Telegram update is a few kilobytes
UPDATE_MAX_DEPTH = 64
API_MAX_BODY = 5 * 1024 * 1024  # about 10,000 delivery records
API_MAX_RECORDS = 5_000
API_MAX_DEPTH = 16  # records are flat objects in an array, perhaps in an object
BIGINT = 2**63


def webhook_path(settings: Settings) -> str:
    """The route Telegram posts to: the path of the webhook URL, the same one setWebhook gets."""
    return urlparse(settings.webhook_endpoint).path or DEFAULT_WEBHOOK_PATH


def _problem(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def telegram_webhook(request: web.Request) -> web.Response:
    """Telegram's POST: check the secret header, commit the update to the inbox, then 200.

    An update not stored (the database failed) is answered 503: Telegram posts it again.
    A body that is no Telegram update (not JSON, no integer ``update_id``, nested too deep,
    too big) is answered 4xx and logged without its content: never a 500."""
    svc = request.app[SERVICES]
    secret = svc.settings.webhook_secret
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return web.Response(status=403, text="forbidden")
    try:
        data = await read_json(request, limit=UPDATE_MAX_BODY, max_depth=UPDATE_MAX_DEPTH)
    except BodyError as exc:
        log.warning("webhook: refused a body of %s bytes: %s",
                    request.content_length if request.content_length is not None else "?",
                    exc.message)
        return web.Response(status=exc.status, text=exc.message)
    problem = update_problem(data)
    if problem:
        log.warning("webhook: refused a body that is not a Telegram update: %s", problem)
        return web.Response(status=400, text=f"not a Telegram update: {problem}")
    try:
        await inbox.store([data], svc.clock.now())
    except Exception:
        log.exception("webhook: update %s not stored; answered busy", data["update_id"])
        return web.Response(status=503, text="busy")
    request.app[INBOX].wake()
    return web.Response(text="ok")


def update_problem(data: Any) -> str:
    """What keeps ``data`` out of the inbox ("" when nothing): an object with an integer
    ``update_id`` whose chat the inbox can file, every id within the database's 64 bits."""
    if not isinstance(data, dict):
        return f"the body is a JSON {type(data).__name__}, not an object"
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return "no integer update_id"
    if not 0 <= update_id < BIGINT:
        return "update_id out of range"
    try:
        chat = inbox.chat_key(data)
    except (AttributeError, TypeError, ValueError):
        return "its chat or sender is not an object"
    if not -BIGINT <= chat < BIGINT:
        return "chat id out of range"
    return ""


ImportRecords = Callable[..., Awaitable[ImportResult]]


async def _intake(request: web.Request, key: str, import_records: ImportRecords) -> web.Response:
    """One intake route for every kind of record: auth, JSON, shape, then the shared import.

    200 when every row is good; 422 with per-row, per-field errors (good rows stored all the
    same); 400 for a body that is not usable JSON; 413 for a body over ``API_MAX_BODY`` or
    more than ``API_MAX_RECORDS`` records; 401 without the key."""
    svc = request.app[SERVICES]
    if not api_key_ok(request):
        return _problem(401, "missing or wrong API key: send 'Authorization: Bearer <API_KEY>'"
                        if svc.settings.api_key else
                        "the intake API is off: set CAREBOT_API_KEY to enable it")
    try:
        body = await read_json(request, limit=API_MAX_BODY, max_depth=API_MAX_DEPTH)
    except BodyError as exc:
        return _problem(exc.status, exc.message)
    records = body.get(key) if isinstance(body, dict) else body
    if not isinstance(records, list):
        return _problem(422, f'send a JSON array of {key}, or {{"{key}": [...]}}')
    if len(records) > API_MAX_RECORDS:
        return _problem(413, f"{len(records):,} {key} in one request; send at most "
                             f"{API_MAX_RECORDS:,} per request (split the batch)")
    result = await import_records(records, rules=svc.rules.journeys, now=svc.clock.now())
    return web.json_response(result.to_dict(), status=422 if result.errors else 200)


async def post_deliveries(request: web.Request) -> web.Response:
    """POST /api/v1/deliveries: a JSON array of deliveries (or {"deliveries": [...]})."""
    return await _intake(request, "deliveries", import_deliveries_records)


async def post_visits(request: web.Request) -> web.Response:
    """POST /api/v1/visits: a JSON array of workshop visits (or {"visits": [...]})."""
    return await _intake(request, "visits", import_visits_records)


async def hardening_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer (pages, API, errors, redirects): no framing (clickjacking would get
    round the CSRF tokens), no type sniffing, no referrer to other sites; nothing but the
    static files is kept in a cache (pages, previews and exports hold owners' data)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


def make_web_app(services: Services, application: Application,  # type: ignore[type-arg]
                 updates: inbox.Inbox) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[PTB] = application
    app[INBOX] = updates
    app[WEBHOOK_PATH] = webhook_path(services.settings)
    app.on_response_prepare.append(hardening_headers)
    app.router.add_post(app[WEBHOOK_PATH], telegram_webhook)
    app.router.add_post("/api/v1/deliveries", post_deliveries)
    app.router.add_post("/api/v1/visits", post_visits)
    campaigns_api.add_routes(app)  # campaigns (issue 6)
    ops.add_routes(app)  # /healthz and /metrics
    setup_console(app, services, (*MACHINE_PREFIXES, app[WEBHOOK_PATH]))  # issue 7
    return app
