"""The sandbox chat (issue 7 point 9): act as a demo owner in a phone-like view.

Exists only while ``carebot sandbox`` runs: the sandbox hangs a
:class:`bot.sandbox.live.Sandbox` on ``services.sandbox`` and every route here
answers 404 without it (production). A staff member picks a demo owner (among those their
role may see: ``access.customer_scope``), then types, presses the bot's buttons, shares the
contact or opens the personal link as that owner: the emulator turns each act into an update
the running bot receives, exactly as from Telegram. The phone view polls
``/sandbox/chat/messages`` about once a second. "Move time forward" advances the sandbox's
clock and runs at once what the scheduler would have run meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp_session import get_session

from bot.sandbox.driver import UserDriver
from bot.sandbox.live import DemoOwner, Sandbox, sandbox_of
from bot.web.console import access, console_of, forbidden, render, requires, staff_of
from db.models import AuditLog, Customer, Staff, Touchpoint, TouchpointStatus

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# "Move time forward" steps: key -> how far (the "next" step goes to the next due message).
STEPS: dict[str, timedelta] = {
    "2h": timedelta(hours=2),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
NEXT_STEP = "next"
MAX_MESSAGES = 200  # the phone view shows the chat's latest messages
MAX_TEXT = 4096  # Telegram's limit for one message
# Entities the phone view draws (others show as plain text).
SHOWN_ENTITIES = frozenset({"bold", "italic", "underline", "strikethrough", "code", "pre",
                            "text_link", "url", "spoiler", "blockquote"})


# --------------------------------------------------------------------------- helpers


def _sandbox(request: web.Request) -> Sandbox | None:
    return sandbox_of(console_of(request).services)


def sandbox_only(view: Handler) -> Handler:
    """404 unless the sandbox runs: in production these pages do not exist."""

    @wraps(view)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if _sandbox(request) is None:
            return await render(request, "error.html", status=404, code=404,
                                message_key="error.404")
        return await view(request)

    return guarded


def _need_sandbox(request: web.Request) -> Sandbox:
    sandbox = _sandbox(request)
    if sandbox is None:  # sandbox_only stands in front of every view
        raise web.HTTPNotFound()
    return sandbox


async def owners_in_scope(staff: Staff, owners: tuple[DemoOwner, ...]
                          ) -> list[tuple[DemoOwner, Customer]]:
    """The demo owners whose customer file this person may see, with the file (one query)."""
    rows = Customer.filter(phone__in=[o.phone for o in owners])
    scope = access.customer_scope(staff)
    if scope is not None:
        rows = rows.filter(scope)
    files = {c.phone: c for c in await rows}
    return [(o, files[o.phone]) for o in owners if o.phone in files]


async def _owner_file(request: web.Request, sandbox: Sandbox, value: object
                      ) -> tuple[DemoOwner, Customer] | web.Response:
    """The demo owner named by ``value`` (their Telegram user id) and their file; 404 for
    no such demo owner, 403 when the file is outside the person's customers."""
    try:
        user_id = int(str(value))
    except ValueError:
        return _problem(400, "owner: a demo owner's Telegram user id")
    owner = sandbox.owner(user_id)
    if owner is None:
        return _problem(404, f"no demo owner {user_id}")
    found = await owners_in_scope(staff_of(request), (owner,))
    if not found:
        log.info("sandbox chat: %s may not act as owner %s", staff_of(request).login, user_id)
        return await forbidden(request)
    return found[0]


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def clock_view(now: datetime, tz: ZoneInfo) -> dict[str, str]:
    local = now.astimezone(tz)
    return {"iso": now.isoformat(), "local": f"{local:%Y-%m-%d %H:%M}", "tz": str(tz)}


def _owner_view(owner: DemoOwner, customer: Customer) -> dict[str, Any]:
    return {"user_id": owner.user_id, "name": customer.name, "phone": customer.phone,
            "advisor": customer.advisor, "language": customer.language,
            "linked": customer.telegram_user_id == owner.user_id,
            "linked_other": customer.telegram_user_id not in (None, owner.user_id)}


def message_view(message: dict[str, Any], from_bot: bool, tz: ZoneInfo) -> dict[str, Any]:
    """What the phone view draws of one Bot API message (text, entities, buttons, contact)."""
    text = message.get("text", message.get("caption")) or ""
    entities = message.get("entities", message.get("caption_entities")) or []
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    sent = datetime.fromtimestamp(int(message.get("date", 0)), UTC).astimezone(tz)
    contact = message.get("contact") or {}
    return {
        "id": message.get("message_id"),
        "from_bot": from_bot,
        "text": text,
        "entities": [
            {"type": e["type"], "offset": e["offset"], "length": e["length"],
             **({"url": e["url"]} if e.get("url") else {})}
            for e in entities if e.get("type") in SHOWN_ENTITIES
        ],
        "buttons": [[{"text": b.get("text", ""), "url": b.get("url"),
                      "callback": "callback_data" in b} for b in row] for row in rows],
        "contact": contact.get("phone_number"),
        "photo": bool(message.get("photo")),
        "edited": "edit_date" in message,
        "time": f"{sent:%m-%d %H:%M}",
    }


def chat_view(sandbox: Sandbox, owner: DemoOwner, tz: ZoneInfo) -> dict[str, Any]:
    """The owner's chat with the bot as the phone shows it, and the bot's button answers."""
    driver = UserDriver(sandbox.emulator, owner.user_id)
    if owner.user_id not in sandbox.emulator.chats:
        return {"messages": [], "keyboard": [], "answers": []}
    transcript = driver.transcript()[-MAX_MESSAGES:]
    keyboard = driver.reply_keyboard or {}
    return {
        "messages": [message_view(m, bool(m["from_bot"]), tz) for m in transcript],
        "keyboard": [[{"text": b.get("text", "") if isinstance(b, dict) else str(b),
                       "contact": bool(isinstance(b, dict) and b.get("request_contact"))}
                      for b in row] for row in keyboard.get("keyboard", [])],
        "answers": [{"id": a["callback_query_id"], "text": a["text"]}
                    for a in driver.callback_answers if a["text"]][-20:],
    }


def _version(data: dict[str, Any]) -> str:
    raw = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:16]


# --------------------------------------------------------------------------- views


@sandbox_only
@requires(access.SANDBOX)
async def page(request: web.Request) -> web.Response:
    sandbox = _need_sandbox(request)
    services = console_of(request).services
    owners = await owners_in_scope(staff_of(request), sandbox.owners)
    selected: tuple[DemoOwner, Customer] | None = owners[0] if owners else None
    wanted = request.query.get("owner", "")
    for owner, customer in owners:
        if str(owner.user_id) == wanted:
            selected = (owner, customer)
    now = services.clock.now()
    return await render(
        request, "sandbox_chat.html",
        owners=[_owner_view(o, c) for o, c in owners],
        selected=_owner_view(*selected) if selected else None,
        steps=[*STEPS, NEXT_STEP],
        clock=clock_view(now, services.settings.tz),
        bot_username=sandbox.emulator.bot_username,
    )


@sandbox_only
@requires(access.SANDBOX)
async def messages(request: web.Request) -> web.Response:
    """GET: the chat as JSON; ``v`` = the version the page has (answered "same" if equal)."""
    sandbox = _need_sandbox(request)
    found = await _owner_file(request, sandbox, request.query.get("owner", ""))
    if isinstance(found, web.Response):
        return found
    owner, customer = found
    services = console_of(request).services
    tz = services.settings.tz
    chat = chat_view(sandbox, owner, tz)
    chat["owner"] = _owner_view(owner, customer)
    version = _version(chat)
    body: dict[str, Any] = {"v": version, "clock": clock_view(services.clock.now(), tz)}
    if request.query.get("v") == version:
        body["same"] = True
    else:
        body.update(chat)
    return web.json_response(body)


@sandbox_only
@requires(access.SANDBOX)
async def act(request: web.Request) -> web.Response:
    """POST as the owner: ``action`` = text | press | keyboard | link."""
    sandbox = _need_sandbox(request)
    data = await _json_body(request)
    found = await _owner_file(request, sandbox, data.get("owner", ""))
    if isinstance(found, web.Response):
        return found
    owner, customer = found
    driver = UserDriver(sandbox.emulator, owner.user_id)
    action = data.get("action")
    try:
        if action == "text":
            text = str(data.get("text", "")).strip()
            if not text or len(text) > MAX_TEXT:
                return _problem(400, f"text: 1 to {MAX_TEXT} characters")
            driver.send_text(text)
        elif action == "press":
            sandbox.emulator.press_button_at(owner.user_id, owner.user_id,
                                             int(data.get("message_id", 0)),
                                             int(data.get("row", -1)),
                                             int(data.get("column", -1)))
        elif action == "keyboard":
            _press_reply_key(driver, owner, int(data.get("row", -1)),
                             int(data.get("column", -1)))
        elif action == "link":
            driver.send_text(f"/start {customer.link_token}")
        else:
            return _problem(400, "action: text, press, keyboard or link")
    except (TypeError, ValueError) as exc:
        return _problem(400, str(exc))
    return web.json_response({"ok": True})


def _press_reply_key(driver: UserDriver, owner: DemoOwner, row: int, column: int) -> None:
    """A reply-keyboard key: a "share contact" key shares the owner's own contact (the phone
    of their file, as their Telegram account would); any other key sends its text."""
    rows = (driver.reply_keyboard or {}).get("keyboard") or []
    if not (0 <= row < len(rows) and 0 <= column < len(rows[row])):
        raise ValueError(f"no key at ({row}, {column}) on the keyboard shown")
    key = rows[row][column]
    if isinstance(key, dict) and key.get("request_contact"):
        driver.share_contact(owner.phone)
        return
    driver.send_text(str(key.get("text", "")) if isinstance(key, dict) else str(key))


@sandbox_only
@requires(access.SANDBOX)
async def move_time(request: web.Request) -> web.Response:
    """POST ``step`` (2h, 1d, 3d, 7d, next): move the sandbox clock forward and run what is
    due now (occasions scan, campaign and deadline ticks, the dispatcher). The mover's
    session moves along; others signed in elsewhere age with the clock as usual."""
    sandbox = _need_sandbox(request)
    services = console_of(request).services
    step = str((await _json_body(request)).get("step", ""))
    now = services.clock.now()
    if step == NEXT_STEP:
        upcoming = await Touchpoint.filter(status=TouchpointStatus.PENDING, due_at__gt=now) \
            .order_by("due_at").first()
        if upcoming is None:
            return _problem(409, "nothing is waiting to be sent")
        delta = upcoming.due_at - now + timedelta(minutes=1)
    elif step in STEPS:
        delta = STEPS[step]
    else:
        return _problem(400, f"step: one of {', '.join([*STEPS, NEXT_STEP])}")
    report = await sandbox.move_time(delta)
    after = services.clock.now()
    # The session's age is measured on this clock: keep the one who moved time signed in.
    session = await get_session(request)
    session["auth_at"] = float(session.get("auth_at", 0)) + delta.total_seconds()
    staff = staff_of(request)
    await AuditLog.create(staff_id=staff.id, action="sandbox.time", target="sandbox",
                          detail={"step": step, "from": now.isoformat(),
                                  "to": after.isoformat()}, created_at=after)
    log.info("sandbox time moved %s by %s to %s: %s", step, staff.login, after,
             report.as_dict())
    return web.json_response({"clock": clock_view(after, services.settings.tz),
                              "report": report.as_dict()})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/sandbox/chat", page, name="sandbox_chat")
    router.add_get("/sandbox/chat/messages", messages, name="sandbox_chat_messages")
    router.add_post("/sandbox/chat/act", act, name="sandbox_chat_act")
    router.add_post("/sandbox/chat/time", move_time, name="sandbox_chat_time")
