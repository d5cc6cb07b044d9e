"""The staff and marketing web console (issue 7): sign-in, sessions, CSRF, roles, pages.

``setup_console(app, services)`` adds everything to the aiohttp app built in
``bot.web.server``. Each page is a module in ``bot.web.console.pages`` with
``add_routes(router)``; views say which permission they need with ``@requires(...)`` and
render templates through ``render(request, name, **context)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from aiohttp_session import get_session
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from tortoise.expressions import F
from yarl import URL

from bot import passwords
from bot.services import Services
from bot.version import VERSION
from bot.web.console import access
from bot.web.console.render import (
    HERE,
    LANGUAGES,
    Translator,
    html,
    load_strings,
    make_environment,
)
from db.models import Staff

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Page modules, in menu order; each has ``add_routes(router)``.
PAGE_MODULES = ("today", "conversations", "conversation_actions", "chat", "canned", "inbox",
                "calls", "bookings",
                "tickets", "ticket_actions", "customers", "campaigns", "campaign_detail",
                "campaign_presses", "reports", "reports_export", "imports", "scripts",
                "sandbox_chat", "staff", "settings")

# The menu: (label key, path, permission). A page not yet served is simply not linked.
NAV: tuple[tuple[str, str, str], ...] = (
    ("nav.today", "/", access.TODAY),
    ("nav.inbox", "/inbox", access.CONVERSATIONS),
    ("nav.calls", "/calls", access.CALLS),
    ("nav.bookings", "/bookings", access.BOOKINGS),
    ("nav.tickets", "/tickets", access.TICKETS),
    ("nav.customers", "/customers", access.CUSTOMERS),
    ("nav.campaigns", "/campaigns", access.CAMPAIGNS),
    ("nav.reports", "/reports", access.REPORTS),
    ("nav.imports", "/imports", access.IMPORTS),
    ("nav.scripts", "/scripts", access.SCRIPTS),
    ("nav.sandbox", "/sandbox/chat", access.SANDBOX),
    ("nav.staff", "/staff", access.STAFF),
    ("nav.settings", "/settings", access.STAFF),
)
# Menu entries shown only while a feature hangs its object on ``services`` (the attribute
# named): the sandbox chat exists only under ``carebot sandbox`` (its routes answer 404
# otherwise).
NAV_NEEDS_EXTENSION: dict[str, str] = {"/sandbox/chat": "sandbox"}

def _feature_on(services: Services, name: str) -> bool:
    return not name or getattr(services, name, None) is not None


# Paths that are not the console: machines call them with their own secrets (bearer key,
# Telegram's secret header), so they carry no session and no CSRF token.
MACHINE_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/static/", "/telegram")
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Console:
    """What console views share: services, templates, interface strings, the hasher.

    ``hasher`` is the one password hasher sign-in checks with (the seam a test wraps to
    count checks: tests/test_hardening_signin.py)."""

    services: Services
    env: jinja2.Environment
    strings: dict[str, dict[str, str]]
    hasher: PasswordHasher = field(default_factory=passwords.hasher)
    machine_prefixes: tuple[str, ...] = MACHINE_PREFIXES
    # Per-page objects (caches and the like), keyed by the page module's name.
    state: dict[str, Any] = field(default_factory=dict)


CONSOLE = web.AppKey("console", Console)
STAFF = web.RequestKey("staff", Staff)  # the signed-in staff member, set by the middleware
_SERVED = web.AppKey("console_served", set)  # GET paths that exist (menu shows only those)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def staff_of(request: web.Request) -> Staff:
    """The signed-in staff member (views behind ``@requires`` always have one)."""
    return request[STAFF]


def current_staff(request: web.Request) -> Staff | None:
    """The signed-in staff member, or None on the sign-in page."""
    return request.get(STAFF)


def session_key(secret: str) -> bytes:
    """A Fernet key from any secret string (the same secret gives the same key)."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


def hash_password(password: str) -> str:
    return passwords.hash_password(password)


# --------------------------------------------------------------------------- rendering


async def render(request: web.Request, template: str, status: int = 200,
                 **context: Any) -> web.Response:
    """A page from ``templates/<template>`` with the layout's context filled in."""
    console = console_of(request)
    staff: Staff | None = request.get(STAFF)
    lang = staff.language if staff is not None else _guess_language(request)
    t = Translator(console.strings, lang)
    nav = [(t(key), path, path == request.path or (path != "/" and
                                                    request.path.startswith(path + "/")))
           for key, path, perm in NAV
           if staff is not None and access.can(staff, perm) and path in request.app[_SERVED]
           and _feature_on(console.services, NAV_NEEDS_EXTENSION.get(path, ""))]
    base = {
        "t": t,
        "lang": t.lang,
        "languages": LANGUAGES,
        "staff": staff,
        "can": (lambda perm: staff is not None and access.can(staff, perm)),
        "csrf_token": await csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "nav": nav,
        "tz": console.services.settings.tz,
        "now": console.services.clock.now(),
        "dealer": console.services.settings.dealer_name,
        "path": request.path_qs,
        "version": VERSION,  # the footer's, for staff signed in (what runs, after an upgrade)
    }
    base.update(context)
    return html(console.env.get_template(template).render(**base), status)


def _guess_language(request: web.Request) -> str:
    accept = request.headers.get("Accept-Language", "")
    return "en" if accept.lower().startswith("en") else "zh_CN"


async def forbidden(request: web.Request) -> web.Response:
    return await render(request, "error.html", status=403, code=403, message_key="error.403")


# --------------------------------------------------------------------------- errors


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A console page that does not exist (an unknown URL, or a view's "no such …") and an
    unexpected failure are the console's own page in the reader's language, not aiohttp's
    bare "404: Not Found" or "500 Internal Server Error". A failure is logged with its
    traceback under a short id the page shows, so staff can quote it; the page never shows
    the traceback. Machine paths (the JSON API, the webhook) and a fetch asking for JSON
    keep their own answers."""
    if not _is_console_path(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if _wants_json(request):
            raise
        return await _error_page(request, 404, "error.404")
    except web.HTTPException:
        raise
    except Exception:
        error_id = secrets.token_hex(4)
        log.exception("console error %s: %s %s", error_id, request.method, request.path)
        return await _error_page(request, 500, "error.500", error_id=error_id)


async def _error_page(request: web.Request, code: int, key: str, **context: str
                      ) -> web.StreamResponse:
    try:
        return await render(request, "error.html", status=code, code=code, message_key=key,
                            **context)
    except Exception:  # the page itself failed (the session store, a template): plain text
        log.exception("console error page %s failed", context.get("error_id", code))
        return web.Response(status=code, text=f"{code} {context.get('error_id', '')}".strip())


# --------------------------------------------------------------------------- access


def requires(permission: str) -> Callable[[Handler], Handler]:
    """Only for a signed-in staff member holding ``permission``; 403 and no change else."""

    def decorate(view: Handler) -> Handler:
        @wraps(view)
        async def guarded(request: web.Request) -> web.StreamResponse:
            staff: Staff | None = request.get(STAFF)
            if staff is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
                raise web.HTTPUnauthorized(text="sign in first")
            if not access.can(staff, permission):
                log.info("refused %s %s to staff %s (%s)", request.method, request.path,
                         staff.id, staff.role)
                return await forbidden(request)
            return await view(request)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate


def _is_console_path(request: web.Request) -> bool:
    console = console_of(request)
    return not request.path.startswith(console.machine_prefixes)


@web.middleware
async def staff_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Load the signed-in staff member from the session (and end stale sessions)."""
    if not _is_console_path(request):
        return await handler(request)
    session = await get_session(request)
    staff_id = session.get("staff_id")
    if staff_id is not None:
        console = console_of(request)
        now = console.services.clock.now().timestamp()
        max_age = console.services.settings.session_hours * 3600
        staff = await Staff.get_or_none(id=staff_id, active=True)
        if staff is None or now - float(session.get("auth_at", 0)) > max_age \
                or session.get("pw") != _password_mark(staff) \
                or session.get("epoch") != staff.session_epoch:
            session.invalidate()
        else:
            request[STAFF] = staff
    return await handler(request)


def _password_mark(staff: Staff) -> str:
    """Changes when the password does: a new password ends every other session."""
    return hashlib.sha256((staff.password_hash or "").encode()).hexdigest()[:16]


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing console request carries the session's CSRF token, in the form
    field ``_csrf`` or the ``X-CSRF-Token`` header; without it: 403, nothing changes."""
    if request.method in UNSAFE_METHODS and _is_console_path(request):
        session = await get_session(request)
        expected = str(session.get("csrf") or "")
        given = request.headers.get(CSRF_HEADER, "")
        if not given and request.content_type in ("application/x-www-form-urlencoded",
                                                  "multipart/form-data"):
            form = await request.post()
            value = form.get(CSRF_FIELD, "")
            given = value if isinstance(value, str) else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            log.warning("CSRF check failed: %s %s", request.method, request.path)
            return await render(request, "error.html", status=403, code=403,
                                message_key="error.csrf")
    return await handler(request)


# --------------------------------------------------------------------------- sign-in


def _safe_next(value: str) -> str:
    """A local path to go to after sign-in; anything else (another site, tricks such as
    ``/\t/evil.com`` that a browser reads as ``//evil.com``) becomes "/"."""
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)):
        return "/"
    try:
        url = URL(value)
    except ValueError:
        return "/"
    return "/" if url.is_absolute() or url.host else value


async def logout(request: web.Request) -> web.StreamResponse:
    """Sign out: the cookie is dropped and the staff member's session epoch moves on, so a
    copy of the cookie (another device, a stolen one) no longer works either."""
    staff = request.get(STAFF)
    if staff is not None:
        await Staff.filter(id=staff.id).update(session_epoch=F("session_epoch") + 1)
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


async def set_language(request: web.Request) -> web.StreamResponse:
    staff: Staff | None = request.get(STAFF)
    if staff is None:
        raise web.HTTPSeeOther("/login")
    form = await request.post()
    lang = str(form.get("language", ""))
    if lang in LANGUAGES:
        staff.language = lang
        await staff.save(update_fields=["language"])
    raise web.HTTPSeeOther(_safe_next(str(form.get("next", "/"))))


# --------------------------------------------------------------------------- wiring


def setup_console(app: web.Application, services: Services,
                  machine_prefixes: tuple[str, ...] = MACHINE_PREFIXES) -> Console:
    """Add sessions, CSRF, sign-in and every page to ``app``."""
    settings = services.settings
    secret = settings.session_secret
    if not secret:
        secret = secrets.token_urlsafe(32)
        log.warning("CAREBOT_SESSION_SECRET is not set: console sessions end when this "
                    "process stops and do not span instances (docs/console.md)")
    storage = EncryptedCookieStorage(
        Fernet(session_key(secret)), cookie_name="carebot_session", httponly=True,
        secure=settings.console_secure_cookie, samesite="Lax",
        max_age=int(settings.session_hours * 3600),
    )
    setup_session(app, storage)
    console = Console(services, make_environment(), load_strings(),
                      machine_prefixes=machine_prefixes)
    app[CONSOLE] = console
    # Outermost of the console's: a failure loading the staff member is styled too (in the
    # browser's language then); the staff member is known to it once the inner ones ran.
    app.middlewares.append(error_middleware)
    app.middlewares.append(staff_middleware)
    app.middlewares.append(csrf_middleware)
    # Imported here, as the pages below are: sign-in is built on this package's helpers
    # (render, the session's staff key, the password mark), so it can load only once this
    # module has; at the top it would be an import cycle.
    from bot.web.console import signin

    app.router.add_get("/login", signin.login_form)
    app.router.add_post("/login", signin.login_submit)
    app.router.add_post("/logout", logout)
    app.router.add_post("/me/language", set_language)
    app.router.add_static("/static/", HERE / "static", name="static")
    for name in PAGE_MODULES:
        importlib.import_module(f"bot.web.console.pages.{name}").add_routes(app.router)
    app[_SERVED] = {getattr(r.resource, "canonical", "") for r in app.router.routes()
                    if r.method == "GET" and r.resource is not None}
    return console


def now_local(request: web.Request) -> datetime:
    """The dealership's local time now (read once per request by views that need it)."""
    services = console_of(request).services
    return services.clock.now().astimezone(services.settings.tz)
