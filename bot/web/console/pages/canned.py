"""Canned replies: the dealer's library of ready answers (``bot.canned``).

Everyone who answers owners reads the library here (and picks from it on a conversation's
page); supervisors, managers and admins add, edit, switch off and on again
(``access.CANNED_EDIT``). A text is checked before it is saved — only the known variables,
no stray braces — and shown for a sample owner; what was typed stays on the form when it
is refused. Every change is in the audit log.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot import canned
from bot.texts import LANGUAGES
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.forms import posted_texts
from db.models import AuditLog, CannedReply, Customer, Staff, Vehicle

log = logging.getLogger(__name__)

DONE_KEYS = ("saved", "created", "deactivated", "activated")


def sample(language: str) -> tuple[Customer, Vehicle]:
    """The sample owner and car a reply is previewed for (never a real owner)."""
    name = "王伟" if language == "zh_CN" else "Wang Wei"
    return (Customer(name=name, advisor="李娜", language=language),
            Vehicle(model="星辰 S7", plate="粤A12345"))


def preview(reply: CannedReply, staff: Staff, request: web.Request) -> str:
    customer, vehicle = sample(reply.language)
    return canned.render(reply, customer, vehicle, staff, console_of(request).services.settings)


@requires(access.CONVERSATIONS)
async def library(request: web.Request) -> web.Response:
    staff = staff_of(request)
    now = console_of(request).services.clock.now()
    replies = await canned.library(now)
    await CannedReply.fetch_for_list(replies, "updated_by")
    done = request.query.get("done", "")
    return await render(
        request, "canned.html", rows=[(r, preview(r, staff, request)) for r in replies],
        editable=access.can(staff, access.CANNED_EDIT),
        variables=canned.VARIABLES, done=done if done in DONE_KEYS else "")


async def _reply_of(request: web.Request) -> CannedReply:
    reply = await CannedReply.get_or_none(id=int(request.match_info["id"]))
    if reply is None:
        raise web.HTTPNotFound(text="no such canned reply")
    return reply


async def _form_page(request: web.Request, reply: CannedReply | None, *, status: int = 200,
                     form: dict[str, str] | None = None,
                     problems: list[tuple[str, dict[str, Any]]] | None = None
                     ) -> web.Response:
    staff = staff_of(request)
    shown = preview(reply, staff, request) if reply is not None and not problems else ""
    return await render(
        request, "canned_edit.html", status=status, reply=reply, form=form or {},
        problems=problems or [], shown=shown, languages=LANGUAGES,
        variables=canned.VARIABLES, name_limit=32, title_limit=canned.TITLE_LIMIT,
        text_limit=canned.TEXT_LIMIT)


@requires(access.CANNED_EDIT)
async def new_form(request: web.Request) -> web.Response:
    return await _form_page(request, None)


@requires(access.CANNED_EDIT)
async def edit_form(request: web.Request) -> web.Response:
    return await _form_page(request, await _reply_of(request))


async def _audit(request: web.Request, action: str, reply: CannedReply,
                 **detail: Any) -> None:
    await AuditLog.create(staff_id=staff_of(request).id, action=f"canned.{action}",
                          target=f"canned:{reply.id}",
                          detail={"name": reply.name, "language": reply.language, **detail},
                          created_at=console_of(request).services.clock.now())


async def _save(request: web.Request, reply: CannedReply | None) -> web.StreamResponse:
    staff = staff_of(request)
    form = await posted_texts(request)
    before = (reply.name, reply.language, reply.title, reply.text) if reply else None
    try:
        saved = await canned.save(
            reply=reply, name=form.get("name", ""), language=form.get("language", ""),
            title=form.get("title", ""), text=form.get("text", ""), staff=staff,
            now=console_of(request).services.clock.now())
    except canned.CannedError as refused:
        return await _form_page(request, reply, status=422, form=form,
                                problems=refused.problems)
    changed = [k for k, old, new in zip(("name", "language", "title", "text"), before or (),
                                        (saved.name, saved.language, saved.title,
                                         saved.text), strict=False) if old != new]
    await _audit(request, "edit" if reply else "create", saved,
                 **({"changed": changed} if reply else {}))
    raise web.HTTPSeeOther(f"/canned?done={'saved' if reply else 'created'}#r{saved.id}")


@requires(access.CANNED_EDIT)
async def create(request: web.Request) -> web.StreamResponse:
    return await _save(request, None)


@requires(access.CANNED_EDIT)
async def save(request: web.Request) -> web.StreamResponse:
    return await _save(request, await _reply_of(request))


@requires(access.CANNED_EDIT)
async def switch(request: web.Request) -> web.StreamResponse:
    """Switch a reply off (the picker no longer offers it; kept for later) or on again."""
    reply = await _reply_of(request)
    form = await request.post()
    active = str(form.get("active", "")) == "1"
    if reply.active != active:
        await canned.set_active(reply, active, staff_of(request),
                                console_of(request).services.clock.now())
        await _audit(request, "activate" if active else "deactivate", reply)
    raise web.HTTPSeeOther(f"/canned?done={'activated' if active else 'deactivated'}"
                           f"#r{reply.id}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/canned", library)
    router.add_get("/canned/new", new_form)
    router.add_post("/canned", create)
    router.add_get(r"/canned/{id:\d{1,9}}", edit_form)
    router.add_post(r"/canned/{id:\d{1,9}}", save)
    router.add_post(r"/canned/{id:\d{1,9}}/active", switch)
