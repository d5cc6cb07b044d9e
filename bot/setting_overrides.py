"""Settings changed in the console, used by every running instance without a restart
(issue 18 point 4): the store, the validation and the refresh.

A change is a ``setting_override`` row (append-only: a reset is a row with no value), so
the highest id is a version stamp, as for script edits (bot/texts.py). Each instance keeps
the values it started with (environment and defaults) apart, checks that stamp — one
indexed read — at every dispatcher tick, every few seconds in a scheduler job and right
after its own console saves, and only when it moved reads the rows, validates the result
exactly as start-up does (pydantic, then every feature's rules) and puts the new values
into the running Settings object and a fresh ``services.rules``. The Settings object is
updated in place because the dispatcher, the features and the console hold that one
object; only the settings the catalogue marks editable (bot/settings_catalogue.py) are
ever changed, and those are read where they are used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from tortoise.transactions import in_transaction

from bot.config import Settings
from bot.rules import parse_rules
from bot.settings_catalogue import EDITABLE, text_of, typed
from bot.startup import StartupError
from db.models import AuditLog, SettingOverride
from db.versions import newest_id

log = logging.getLogger(__name__)

# pydantic's error types the console explains in the staff member's words; the limit
# (``ge`` for greater_than_equal...) is shown with it.
_LIMITS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt",
           "less_than_equal": "le"}
_NAMED = re.compile(r"^CAREBOT_([A-Z0-9_]+): (.*)$", re.DOTALL)
_KINDS = {"int_parsing": "int", "int_from_float": "int", "float_parsing": "number",
          "bool_parsing": "bool", "value_error": "format"}


@dataclass(frozen=True)
class Problem:
    """Why a value was refused: ``kind`` names the console's message (settings.error.<kind>),
    ``limit`` the bound it broke, ``detail`` the validator's own words (English)."""

    kind: str
    limit: str = ""
    detail: str = ""


class Refused(ValueError):
    """Values that start-up would refuse; ``problems`` by setting ("" for a rule across
    several)."""

    def __init__(self, problems: dict[str, Problem]) -> None:
        super().__init__("; ".join(f"{k or '*'}: {p.kind} {p.limit} {p.detail}".strip()
                                   for k, p in problems.items()))
        self.problems = problems


def problems_of(exc: ValidationError) -> dict[str, Problem]:
    """One problem per setting from pydantic's errors."""
    out: dict[str, Problem] = {}
    for err in exc.errors():
        name = "_".join(str(p) for p in err["loc"])
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind in _LIMITS:
            problem = Problem(_LIMITS[kind], limit=str(ctx.get(_LIMITS[kind], "")))
        else:
            detail = str(err["msg"]).removeprefix("Value error, ")
            problem = Problem(_KINDS.get(kind, "invalid"), detail=detail)
        out.setdefault(name, problem)
    return out


def validated(base: Settings, texts: Mapping[str, str]) -> Settings:
    """``base`` with ``texts`` (setting -> value as typed) put over it, checked as start-up
    checks it: pydantic's validation, then every feature's rules. Raises :class:`Refused`."""
    data = base.model_dump()
    for name, text in texts.items():
        data[name] = typed(name, text)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise Refused(problems_of(exc)) from None
    try:
        parse_rules(settings)
    except (ValueError, StartupError) as exc:  # the rules name the setting they refuse
        m = _NAMED.match(str(exc))
        name = m.group(1).lower() if m and m.group(1).lower() in texts else ""
        detail = m.group(2) if m and name else str(exc)
        raise Refused({name: Problem("format" if name else "rules", detail=detail)}) from None
    return settings


class SettingOverrides:
    """The console's changes over the environment, kept in ``settings`` (the one object
    this process runs with); ``on_change`` is told after each reload (create_app rebuilds
    ``services.rules`` there)."""

    def __init__(self, settings: Settings,
                 on_change: Callable[[Settings], None] | None = None) -> None:
        self._settings = settings
        self._on_change = on_change
        self.base = settings.model_copy()  # the environment and the defaults
        self._from_environment = frozenset(settings.model_fields_set)
        self.values: dict[str, str] = {}  # the console's changes in effect
        self._stamp = 0

    def source(self, name: str) -> str:
        """Where a setting's value comes from: "console", "environment" or "default"."""
        if name in self.values:
            return "console"
        return "environment" if name in self._from_environment else "default"

    def text(self, name: str) -> str:
        """The value in effect, as it would be typed."""
        return text_of(name, getattr(self._settings, name))

    async def refresh(self) -> bool:
        """Take up changes saved on any instance: one indexed read of the newest row's id,
        and a reload only when it moved. True when something was read again."""
        stamp = await newest_id(SettingOverride)
        if stamp == self._stamp:
            return False
        latest: dict[str, str | None] = {}
        for key, value in await SettingOverride.filter(id__lte=stamp).order_by("id") \
                .values_list("key", "value"):
            latest[key] = value
        wanted = {k: v for k, v in latest.items() if v is not None and k in EDITABLE}
        settings, used = self._usable(wanted)
        self._apply(settings, used)
        self._stamp = stamp
        return True

    def _usable(self, wanted: dict[str, str]) -> tuple[Settings, dict[str, str]]:
        """All of ``wanted`` when start-up would take them; else each one that it would
        take (a value the environment now makes wrong is left out, and logged)."""
        try:
            return validated(self.base, wanted), wanted
        except Refused:
            pass
        used: dict[str, str] = {}
        for name, text in wanted.items():
            try:
                validated(self.base, {**used, name: text})
            except Refused as exc:
                log.error("setting %s changed in the console is not used: %s", name, exc)
                continue
            used[name] = text
        return validated(self.base, used), used

    def _apply(self, settings: Settings, used: dict[str, str]) -> None:
        live = self._settings
        for name in EDITABLE:
            # In place, past pydantic's __setattr__ (which would count the field as set
            # by the environment): every holder of this Settings object sees the change.
            live.__dict__[name] = getattr(settings, name)
        self.values = dict(used)
        if self._on_change is not None:
            self._on_change(live)

    async def save(self, changes: Mapping[str, str | None], staff_id: int | None,
                   now: datetime) -> dict[str, tuple[str, str]]:
        """Keep the console's ``changes`` (None: back to the environment or default) for
        every instance, each with an audit entry (who, when, old, new); this instance
        uses them at once. All or nothing: :class:`Refused` stores nothing. Returns
        setting -> (old, new) of what changed."""
        unknown = [name for name in changes if name not in EDITABLE]
        if unknown:
            raise KeyError(f"not changed in the console: {', '.join(unknown)}")
        texts = {**self.values, **{k: v for k, v in changes.items() if v is not None}}
        for name, text in changes.items():
            if text is None:
                texts.pop(name, None)
        after = validated(self.base, texts)
        done: dict[str, tuple[str, str]] = {}
        async with in_transaction():
            for name, text in changes.items():
                old, new = self.text(name), text_of(name, getattr(after, name))
                await SettingOverride.create(key=name, value=text, staff_id=staff_id,
                                             created_at=now)
                detail: dict[str, Any] = {"value": [old, new]}
                await AuditLog.create(staff_id=staff_id, target=f"setting:{name}",
                                      action="setting.reset" if text is None
                                      else "setting.edit", detail=detail, created_at=now)
                done[name] = (old, new)
        await self.refresh()
        return done


async def apply_console_changes(settings: Settings) -> None:
    """Put the console's changes into ``settings`` once: what a one-shot command (carebot
    import, report, booking...) does right after opening the database, so it plans and
    reports with the values the running service uses."""
    await SettingOverrides(settings).refresh()
