"""Settings (admins): every setting grouped and explained in the staff member's language,
with its value, its default and where it comes from; what is safe to change while carebot
runs is changed here (issue 18 point 4).

A change is validated as start-up validates it (bot/setting_overrides.py), all of a
group's changes or none; stored in the database with an audit entry; and used by every
running instance within seconds. The rest is shown read-only with where to change it
(the environment file, then a restart). Secrets are never shown, only whether they are set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from bot.setting_overrides import Problem, Refused, SettingOverrides
from bot.settings_catalogue import CATALOGUE, ENV_FILE, GROUPS, Entry, default_of, shown
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.render import Translator
from db.models import AuditLog

log = logging.getLogger(__name__)

HISTORY = 30  # changes listed at the bottom of the page


@dataclass(frozen=True)
class Row:
    """One setting on the page."""

    entry: Entry
    value: str | None  # as shown; None for a secret
    is_set: bool  # a secret has a value
    default: str | None
    source: str  # console, environment, default
    typed: str  # what the field holds (the value in use, or what was just typed)
    problem: Problem | None
    boolean: bool


def _overrides(request: web.Request) -> SettingOverrides:
    found = console_of(request).services.setting_overrides
    if found is None:  # every app built by create_app has them
        raise web.HTTPServiceUnavailable(text="settings are not available here")
    return found


def _rows(request: web.Request, typed: dict[str, str],
          problems: dict[str, Problem]) -> dict[str, list[Row]]:
    overrides = _overrides(request)
    settings = console_of(request).services.settings
    groups: dict[str, list[Row]] = {g: [] for g in GROUPS}
    for name, entry in CATALOGUE.items():
        value = getattr(settings, name)
        default = default_of(name)
        groups[entry.group].append(Row(
            entry=entry, value=shown(name, value), is_set=bool(value),
            default=None if entry.secret else shown(name, default),
            source=overrides.source(name), typed=typed.get(name, overrides.text(name)),
            problem=problems.get(name), boolean=isinstance(default, bool)))
    return groups


async def _page(request: web.Request, *, status: int = 200, typed: dict[str, str] | None = None,
                problems: dict[str, Problem] | None = None, group: str = "",
                notice: str = "") -> web.Response:
    history = await AuditLog.filter(target__startswith="setting:") \
        .order_by("-created_at", "-id").limit(HISTORY).prefetch_related("staff")
    return await render(request, "settings.html", status=status,
                        groups=_rows(request, typed or {}, problems or {}),
                        problems=problems or {}, failed_group=group, notice=notice,
                        history=history, env_file=ENV_FILE)


@requires(access.STAFF)
async def settings_view(request: web.Request) -> web.Response:
    return await _page(request)


@requires(access.STAFF)
async def settings_post(request: web.Request) -> web.Response:
    """Save one group's changes (all or nothing), or reset one setting."""
    form = await request.post()
    overrides = _overrides(request)
    t = Translator(console_of(request).strings, staff_of(request).language)
    now = console_of(request).services.clock.now()
    reset = str(form.get("reset", ""))
    if reset:
        if reset not in CATALOGUE or not CATALOGUE[reset].editable:
            raise web.HTTPBadRequest(text="not a setting changed here")
        if overrides.source(reset) == "console":
            await overrides.save({reset: None}, staff_of(request).id, now)
            log.info("staff %s reset setting %s", staff_of(request).id, reset)
        return await _page(request, notice=t("settings.reset_done", name=_title(t, reset)))
    group = str(form.get("group", ""))
    if group not in GROUPS:
        raise web.HTTPBadRequest(text="no such group")
    typed = {name: str(form[name]).replace("\r\n", "\n").strip()
             for name, entry in CATALOGUE.items()
             if entry.group == group and entry.editable and name in form}
    changes: dict[str, str | None] = {
        name: text for name, text in typed.items() if text != overrides.text(name)}
    if not changes:
        return await _page(request, notice=t("settings.nothing_changed"))
    try:
        await overrides.save(changes, staff_of(request).id, now)
    except Refused as exc:
        return await _page(request, status=422, typed=typed, problems=exc.problems,
                           group=group)
    log.info("staff %s changed settings %s", staff_of(request).id, sorted(changes))
    names = ("、" if t.lang == "zh_CN" else ", ").join(_title(t, n) for n in changes)
    return await _page(request, notice=t("settings.saved", names=names))


def _title(t: Translator, name: str) -> str:
    return t.get(f"setting.{name}.title", CATALOGUE[name].variable)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/settings", settings_view)
    router.add_post("/settings", settings_post)
