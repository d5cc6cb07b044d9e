"""Scripts: every message template in every language; admins edit one, with validation
and a preview before saving.

An edit is kept in the database (``ScriptEdit`` rows), never in the package, so an upgrade
keeps it, every running instance takes it up within seconds without a restart
(:meth:`bot.texts.Scripts.refresh`), and "revert" is a row saying "back to the packaged
text". Templates in the dealership's own folder (``CAREBOT_SCRIPTS_DIR``) stay below the
console's edits, managed as files. Validation is the same
as ``carebot scripts check`` (sandboxed Jinja2 with a step budget, sample data, ≤ 4096
characters) plus Telegram's HTML rules; nothing is written while a problem remains. The
check renders in a worker thread, so a template that loops too long never stalls the bot.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from aiohttp import web

from bot.script_check import preview_template
from bot.templating import render_off_loop
from bot.texts import LANGUAGES, Scripts
from bot.web.console import access, console_of, forbidden, render, requires, staff_of
from bot.web.console.access import can
from db.models import AuditLog

log = logging.getLogger(__name__)

KEY = re.compile(r"^[a-z0-9_]{1,64}$")
_SIMPLE_TAG = re.compile(r"&lt;(/?)(b|strong|i|em|u|ins|s|del|code|pre|blockquote)&gt;")


def safe_preview(message: str) -> str:
    """The message as HTML for the page: everything escaped, then Telegram's plain
    formatting tags (no attributes) let through, so bold shows bold and nothing runs."""
    return _SIMPLE_TAG.sub(r"<\1\2>", html.escape(message, quote=False))
MAX_SOURCE = 20_000


def _scripts(request: web.Request) -> Scripts:
    return console_of(request).services.scripts


def _key_and_lang(request: web.Request, scripts: Scripts) -> tuple[str, str]:
    key, lang = request.match_info["key"], request.match_info["lang"]
    if lang not in LANGUAGES or not KEY.match(key) or key not in scripts.template_keys():
        raise web.HTTPNotFound(text="no such script")
    return key, lang


def recipient(key: str) -> str:
    """Who a template is for: the owner, the staff group (the ticket card) or staff reading
    a phone script aloud."""
    if key.startswith("phone_"):
        return "phone"
    return "staff_group" if key.startswith("staff_") else "owner"


@requires(access.SCRIPTS)
async def scripts_list(request: web.Request) -> web.Response:
    scripts = _scripts(request)
    rows = []
    for key in scripts.template_keys():
        cells = []
        for lang in LANGUAGES:
            found = scripts.source(key, lang)
            cells.append((lang, found[1] if found else "fallback"))
        rows.append((key, recipient(key), cells))
    return await render(request, "scripts.html", rows=rows, script_languages=LANGUAGES,
                        override_dir=scripts.override_dir)


async def _editor(request: web.Request, key: str, lang: str, *, status: int = 200,
                  text: str | None = None, problems: list[str] | None = None,
                  preview: str | None = None, notice_key: str = "",
                  error_key: str = "") -> web.Response:
    scripts = _scripts(request)
    found = scripts.source(key, lang)
    origin = found[1] if found else "fallback"
    current = found[0] if found else (scripts.source(key, "zh_CN") or ("", ""))[0]
    if text is None:
        text = current
    if preview is None and problems is None:
        preview, problems = await render_off_loop(preview_template, text, key, lang)
    history = await AuditLog.filter(target=f"script:{lang}/{key}") \
        .order_by("-created_at", "-id").limit(10).prefetch_related("staff")
    return await render(
        request,
        "script.html",
        status=status,
        key=key,
        script_lang=lang,
        origin=origin,
        text=text,
        problems=problems or [],
        preview=safe_preview(preview or ""),
        preview_chars=len(preview or ""),
        notice_key=notice_key,
        error_key=error_key,
        override_dir=scripts.override_dir,
        history=history,
        recipient=recipient(key),
        editable=can(staff_of(request), access.SCRIPTS_EDIT),
    )


@requires(access.SCRIPTS)
async def script_view(request: web.Request) -> web.Response:
    key, lang = _key_and_lang(request, _scripts(request))
    return await _editor(request, key, lang)


@requires(access.SCRIPTS)
async def script_post(request: web.Request) -> web.Response:
    scripts = _scripts(request)
    key, lang = _key_and_lang(request, scripts)
    if not can(staff_of(request), access.SCRIPTS_EDIT):
        return await forbidden(request)
    form = await request.post()
    action = str(form.get("action", "preview"))
    text = str(form.get("text", "")).replace("\r\n", "\n")
    if action == "revert":
        return await _revert(request, scripts, key, lang)
    if len(text) > MAX_SOURCE:
        return await _editor(request, key, lang, status=422, text=text[:MAX_SOURCE],
                             problems=[], preview="", error_key="scripts.too_long")
    preview, problems = await render_off_loop(preview_template, text, key, lang)
    if action != "save" or problems:
        return await _editor(request, key, lang, status=422 if problems else 200, text=text,
                             problems=problems, preview=preview)
    before = scripts.source(key, lang)
    await scripts.save(key, lang, text.rstrip("\n") + "\n",
                       console_of(request).services.clock.now())
    await _audit(request, "script.edit", key, lang, before[0] if before else "", text)
    log.info("%s edited script %s/%s", staff_of(request).login, lang, key)
    return await _editor(request, key, lang, notice_key="scripts.saved")


async def _revert(request: web.Request, scripts: Scripts, key: str, lang: str
                  ) -> web.Response:
    found = scripts.source(key, lang)
    if found is None or found[1] != "edited":
        return await _editor(request, key, lang, status=409, error_key="scripts.nothing_to_revert")
    await scripts.save(key, lang, None, console_of(request).services.clock.now())
    await _audit(request, "script.revert", key, lang, found[0], "")
    return await _editor(request, key, lang, notice_key="scripts.reverted")


async def _audit(request: web.Request, action: str, key: str, lang: str, old: str,
                 new: str) -> None:
    detail: dict[str, Any] = {"text": [old, new]}
    await AuditLog.create(staff_id=staff_of(request).id, action=action,
                          target=f"script:{lang}/{key}", detail=detail,
                          created_at=console_of(request).services.clock.now())


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/scripts", scripts_list)
    router.add_get("/scripts/{lang}/{key}", script_view)
    router.add_post("/scripts/{lang}/{key}", script_post)
