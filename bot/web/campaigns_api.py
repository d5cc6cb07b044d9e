"""``/api/v1/campaigns…`` (bearer key) and the OpenAPI document at ``/api/v1/openapi.json``.

Thin: each route checks the key and the body, then calls bot.campaigns.promotions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from jinja2 import TemplateError

from bot.campaigns import audiences, content, policy, promotions
from bot.campaigns.policy import CampaignError
from bot.delivery.limits import Lane
from bot.keyboards import keyboard
from bot.templating import render_off_loop
from bot.web.auth import api_key_ok
from bot.web.bodies import BodyError, read_json
from bot.web.keys import SERVICES
from db.models import Campaign, Staff

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]
# What rendering a template can raise (TemplateOverBudget is a TemplateError).
RENDER_ERRORS = (TemplateError, ArithmeticError, LookupError, TypeError, ValueError)
MAX_BODY = 1024 * 1024  # a campaign with its messages in every language fits many times
MAX_DEPTH = 16  # a campaign is a flat object with lists of buttons and filters


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guarded(fn: Handler) -> Handler:
    """Bearer key first; a CampaignError is the caller's mistake (422), said plainly."""
    async def wrapper(request: web.Request) -> web.Response:
        if not api_key_ok(request):
            return _error(401, "missing or wrong API key: send 'Authorization: Bearer <API_KEY>'"
                          if request.app[SERVICES].settings.api_key else
                          "the API is off: set CAREBOT_API_KEY to enable it")
        try:
            return await fn(request)
        except BodyError as exc:  # not usable JSON (400) or too large (413)
            return _error(exc.status, exc.message)
        except CampaignError as exc:
            return _error(422, str(exc))
    return wrapper


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    data = await read_json(request, limit=MAX_BODY, max_depth=MAX_DEPTH)
    if not isinstance(data, dict):
        raise CampaignError("send a JSON object")
    return data


async def _campaign(request: web.Request) -> Any:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPNotFound(text=json.dumps({"error": f"no campaign {raw}"}),
                               content_type="application/json")
    try:
        return await promotions.get_campaign(int(raw))
    except CampaignError as exc:
        raise web.HTTPNotFound(text=json.dumps({"error": str(exc)}),
                               content_type="application/json") from None


def _send_at(value: Any, request: web.Request) -> datetime:
    svc = request.app[SERVICES]
    if value in (None, ""):
        return svc.clock.now()
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise CampaignError(f"send_at {value!r}: use ISO 8601, e.g. 2026-11-10T10:00") from None
    return when if when.tzinfo else when.replace(tzinfo=svc.settings.tz)


async def list_campaigns(request: web.Request) -> web.Response:
    campaigns = await Campaign.all().order_by("-id")
    return web.json_response({"campaigns": [promotions.describe(c) for c in campaigns]})


async def create(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    body = await _body(request)
    campaign = await promotions.create_campaign(
        name=str(body.get("name", "")), messages=body.get("messages"),
        buttons=body.get("buttons"), audience=body.get("audience"),
        marketer=str(body.get("marketer", "")), event_date=body.get("event_date"),
        now=svc.clock.now(),
        dealer={"name": svc.settings.dealer_name, "phone": svc.settings.dealer_phone},
    )
    return web.json_response(promotions.describe(campaign), status=201)


async def show(request: web.Request) -> web.Response:
    return web.json_response(promotions.describe(await _campaign(request)))


async def count_audience(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    body = await _body(request)
    audience = audiences.parse_audience(body.get("audience", body))
    count = await audiences.count_audience(audience, now=svc.clock.now(),
                                            rules=svc.rules.campaigns)
    return web.json_response(count.to_dict())


async def preview(request: web.Request) -> web.Response:
    """Rendered (off the event loop) from the owners' whitelisted fields: never a phone."""
    svc = request.app[SERVICES]
    try:
        result = await promotions.preview(
            await _campaign(request), now=svc.clock.now(),
            rules=svc.rules.campaigns, scripts=svc.scripts,
            settings=svc.settings)
    except RENDER_ERRORS as exc:  # e.g. a campaign saved before the checks it now fails
        return _error(422, f"the message does not render for a real owner: {exc}")
    return web.json_response(result)


async def test_send(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    campaign = await _campaign(request)
    body = await _body(request)
    ref = body.get("staff")
    staff = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.lstrip("-").isdigit()):
        staff = await Staff.get_or_none(telegram_id=int(ref))
    elif isinstance(ref, str) and ref:
        staff = await Staff.filter(name=ref).first()
    if staff is None or staff.telegram_id is None:
        raise CampaignError(f"no staff member {ref!r} with a Telegram id; "
                            'send {"staff": "<name or Telegram id>"}')
    try:
        [message] = await render_off_loop(content.trial_messages, campaign, staff.name,
                                          svc.settings, svc.scripts)
    except RENDER_ERRORS as exc:
        return _error(422, f"the message does not render: {exc}")
    sent = await svc.sender.text(staff.telegram_id, message.text, lane=Lane.STAFF,
                                         parse_mode="HTML",
                                         reply_markup=keyboard(message.buttons))
    if sent is None:  # the sender logged why (and recorded it, unless the chat blocked us)
        return _error(502, "Telegram refused the test message: not delivered")
    return web.json_response({"sent_to": staff.name})


async def schedule(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    campaign = await _campaign(request)
    body = await _body(request)
    await promotions.schedule_campaign(
        campaign, send_at=_send_at(body.get("send_at"), request), now=svc.clock.now(),
        rules=svc.rules.campaigns,
        force_reason=str(body.get("force_reason") or ""))
    return web.json_response(promotions.describe(campaign))


def _transition(name: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        svc = request.app[SERVICES]
        campaign = await _campaign(request)
        n = await getattr(promotions, name)(campaign, now=svc.clock.now())
        return web.json_response({**promotions.describe(campaign), "messages_affected": n})
    return handler


async def stats(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    campaign = await _campaign(request)
    await promotions.finish_done(now=svc.clock.now())
    return web.json_response(await promotions.stats(await promotions.get_campaign(campaign.id)))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/api/v1/campaigns", list_campaigns, "List campaigns"),
    ("POST", "/api/v1/campaigns", create, "Create a draft campaign"),
    ("POST", "/api/v1/campaigns/audience", count_audience,
     "Count an audience (excluded by reason)"),
    ("GET", "/api/v1/campaigns/{id}", show, "One campaign"),
    ("POST", "/api/v1/campaigns/{id}/preview", preview,
     "Count the audience and render the message for three owners"),
    ("POST", "/api/v1/campaigns/{id}/test", test_send,
     "Send the message to a staff member's own chat"),
    ("POST", "/api/v1/campaigns/{id}/schedule", schedule,
     "Schedule (send_at local ISO time; force_reason for a late event notice)"),
    ("POST", "/api/v1/campaigns/{id}/pause", _transition("pause"), "Hold unsent messages"),
    ("POST", "/api/v1/campaigns/{id}/resume", _transition("resume"), "Send held messages"),
    ("POST", "/api/v1/campaigns/{id}/cancel", _transition("cancel"),
     "Stop every message not yet sent"),
    ("GET", "/api/v1/campaigns/{id}/stats", stats, "Results"),
]


def _schemas() -> dict[str, Any]:
    """The request bodies' schemas: an audience, a button, a campaign, an error."""
    audience_props: dict[str, Any] = {name: {} for name in audiences.AUDIENCE_FIELDS}
    return {
        "Audience": {"type": "object", "additionalProperties": False, "properties": {
            **audience_props,
            "models": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "languages": {"type": "array", "items": {"enum": ["zh_CN", "en"]}},
            "delivered_from": {"type": "string", "format": "date"},
            "delivered_to": {"type": "string", "format": "date"},
            "last_visit_before": {"type": "string", "format": "date"},
            "last_visit_after": {"type": "string", "format": "date"},
            "min_visits": {"type": "integer", "minimum": 1},
            "no_visit_months": {"type": "integer", "minimum": 1},
            "insurance_within_days": {"type": "integer", "minimum": 0},
            "score_min": {"type": "integer", "minimum": 1, "maximum": 10},
            "score_max": {"type": "integer", "minimum": 1, "maximum": 10},
            "open_ticket": {"type": "boolean"},
        }},
        "Button": {"type": "object", "required": ["kind"], "properties": {
            "kind": {"enum": list(policy.BUTTON_KINDS)},
            "url": {"type": "string", "format": "uri"},
            "label": {"oneOf": [{"type": "string"},
                                {"type": "object", "additionalProperties": {"type": "string"}}]},
        }},
        "CampaignInput": {"type": "object", "required": ["name", "messages"], "properties": {
            "name": {"type": "string"},
            "marketer": {"type": "string"},
            "messages": {"type": "object", "required": ["zh_CN"],
                         "description": "Jinja2 per language (sandboxed, HTML-escaped, "
                                        "Telegram's HTML, at most 4096 characters rendered); "
                                        "customer (name, language), vehicle (model, "
                                        "plate), dealer (name, phone), campaign (name, "
                                        "event_date)",
                         "additionalProperties": {"type": "string"}},
            "buttons": {"type": "array", "maxItems": 3,
                        "items": {"$ref": "#/components/schemas/Button"}},
            "audience": {"$ref": "#/components/schemas/Audience"},
            "event_date": {"type": "string", "format": "date"},
        }},
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
    }


_BODIES = {"/api/v1/campaigns": "CampaignInput"}


def _operation(method: str, path: str, summary: str) -> dict[str, Any]:
    """One route's operation: its security, responses, path parameter and request body."""
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "OK"},
            "401": {"description": "missing or wrong API key",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
            "422": {"description": "refused, with the reason",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if "{id}" in path:
        op["parameters"] = [{"name": "id", "in": "path", "required": True,
                             "schema": {"type": "integer"}}]
        op["responses"]["404"] = {"description": "no such campaign"}
    if method == "POST" and path in _BODIES:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{_BODIES[path]}"}}}}
    elif path.endswith("/schedule"):
        op["requestBody"] = {"content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "send_at": {"type": "string", "description": "local time if no offset"},
                "force_reason": {"type": "string"}}}}}}
    elif path.endswith("/test"):
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"staff": {"type": ["string", "integer"]}}}}}}
    elif path.endswith("/audience"):
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Audience"}}}}
    if method == "POST" and path == "/api/v1/campaigns":  # create answers 201
        op["responses"] = {"201": {"description": "Created"},
                           **{k: v for k, v in op["responses"].items() if k != "200"}}
    return op


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for the campaign API (and the deliveries intake next to it)."""
    paths: dict[str, Any] = {}
    for method, path, _, summary in ROUTES:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, summary)
    paths["/api/v1/deliveries"] = {"post": {
        "summary": "Import deliveries (see docs/import-format.md)",
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "imported"}, "422": {"description": "row errors"}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "carebot API", "version": "1"},
        "paths": paths,
        "components": {"schemas": _schemas(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def add_routes(app: web.Application) -> None:
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, _guarded(handler))
    app.router.add_get("/api/v1/openapi.json", openapi)
