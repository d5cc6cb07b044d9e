"""Staff accounts (admins): who may sign in, with which role; unlock, deactivate. The
settings page is its own module (``settings.py``)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from tortoise.expressions import F

from bot.web.console import access, console_of, hash_password, render, requires, staff_of
from bot.web.console.render import LANGUAGES
from bot.web.console.signin import unlock
from db.models import AuditLog, Staff, StaffRole

LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{2,50}$")
MIN_PASSWORD = 10


async def _audit(actor: Staff, action: str, target: Staff, request: web.Request,
                 **detail: Any) -> None:
    await AuditLog.create(staff_id=actor.id, action=action, target=f"staff:{target.id}",
                          detail=detail, created_at=console_of(request).services.clock.now())


async def _page(request: web.Request, status: int = 200, error_key: str = "",
                notice_key: str = "", form: dict[str, str] | None = None) -> web.Response:
    rows = await Staff.all().order_by("-active", "role", "name")
    return await render(request, "staff.html", status=status, rows=rows, roles=list(StaffRole),
                        languages=LANGUAGES, error_key=error_key, notice_key=notice_key,
                        form=form or {}, now=console_of(request).services.clock.now())


@requires(access.STAFF)
async def staff_list(request: web.Request) -> web.Response:
    return await _page(request)


@requires(access.STAFF)
async def staff_create(request: web.Request) -> web.Response:
    form = {k: str(v).strip() for k, v in (await request.post()).items() if k != "_csrf"}
    login, name, role = form.get("login", ""), form.get("name", ""), form.get("role", "")
    password = form.get("password", "")
    if not LOGIN.match(login):
        return await _page(request, 422, "staff.bad_login", form=form)
    if not name:
        return await _page(request, 422, "staff.bad_name", form=form)
    if role not in {r.value for r in StaffRole}:
        return await _page(request, 422, "staff.bad_role", form=form)
    if len(password) < MIN_PASSWORD:
        return await _page(request, 422, "staff.bad_password", form=form)
    if await Staff.exists(login=login):
        return await _page(request, 409, "staff.taken", form=form)
    created = await Staff.create(login=login, name=name, role=StaffRole(role),
                                 language=form.get("language") if form.get("language")
                                 in LANGUAGES else "zh_CN",
                                 password_hash=hash_password(password))
    await _audit(staff_of(request), "staff.create", created, request, role=role, login=login)
    return await _page(request, notice_key="staff.created")


@requires(access.STAFF)
async def staff_update(request: web.Request) -> web.Response:
    me = staff_of(request)
    target = await Staff.get_or_none(id=int(request.match_info["id"]))
    if target is None:
        raise web.HTTPNotFound(text="no such staff member")
    form = await request.post()
    action = str(form.get("action", ""))
    if target.id == me.id and action in ("deactivate", "role"):
        return await _page(request, 409, "staff.not_yourself")
    now = console_of(request).services.clock.now()
    if action == "unlock":
        await unlock(console_of(request).services.settings, target.login or "", now)
    elif action in ("deactivate", "activate"):
        # Either way the session epoch moves on: sessions from before a deactivation must
        # not come back to life when the account is activated again.
        await Staff.filter(id=target.id).update(active=action == "activate",
                                                session_epoch=F("session_epoch") + 1)
    elif action == "password":
        password = str(form.get("password", ""))
        if len(password) < MIN_PASSWORD:
            return await _page(request, 422, "staff.bad_password")
        target.password_hash = hash_password(password)
        await target.save(update_fields=["password_hash"])
        await unlock(console_of(request).services.settings, target.login or "", now)
    elif action == "telegram":
        raw = str(form.get("telegram_id", "")).strip()
        if raw and not (raw.isdecimal() and len(raw) <= 15):
            return await _page(request, 422, "staff.bad_telegram")
        new_id = int(raw) if raw else None
        if new_id is not None and await Staff.filter(telegram_id=new_id) \
                .exclude(id=target.id).exists():
            return await _page(request, 409, "staff.telegram_taken")
        before_id = target.telegram_id
        target.telegram_id = new_id
        await target.save(update_fields=["telegram_id"])
        await _audit(me, "staff.telegram", target, request, telegram_id=[before_id, new_id])
        return await _page(request, notice_key="staff.saved")
    elif action == "role" and str(form.get("role", "")) in {r.value for r in StaffRole}:
        before = target.role
        target.role = StaffRole(str(form.get("role")))
        await target.save(update_fields=["role"])
        await _audit(me, "staff.role", target, request, role=[str(before), str(target.role)])
        return await _page(request, notice_key="staff.saved")
    else:
        return await _page(request, 422, "staff.bad_action")
    await _audit(me, f"staff.{action}", target, request)
    return await _page(request, notice_key="staff.saved")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/staff", staff_list)
    router.add_post("/staff", staff_create)
    router.add_post("/staff/{id:\\d{1,9}}", staff_update)
