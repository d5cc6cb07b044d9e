"""Text the owner sees, by key, from the dealership's scripts (话术).

Messages are Jinja2 templates (``bot/scripts/<lang>/<key>.html``) rendered in a *sandboxed*
environment with HTML autoescape, because Telegram parses them as HTML and a name or plate
from an import must never become markup; with a step budget and an output cap, from a
whitelisted context (:func:`script_context`: an owner is a name and a language, never the
database row), because admins edit them in the console (:mod:`bot.templating`). Short
labels (buttons, one-line replies) live in ``bot/scripts/<lang>/*.toml`` (one file per
feature; keys must not repeat across files). A dealership overrides any file from its own
folder (``CAREBOT_SCRIPTS_DIR``); a language without a file falls back to zh_CN.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, DictLoader, FileSystemLoader, TemplateNotFound
from tortoise.models import Model

from bot.salutation import address
from bot.templating import RUNAWAY_CAP, Fields, LimitedEnvironment, render, render_off_loop
from db.models import Customer, ScriptEdit, Vehicle
from db.versions import newest_id

log = logging.getLogger(__name__)

PACKAGED = Path(__file__).parent / "scripts"
DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = ("zh_CN", "en")
# What any template (campaign or script) may know of an owner and of a car; nothing else
# of their records reaches a template (no phone, link token, birthday, VIN, Telegram ids).
OWNER_FIELDS = ("name", "language")
CAR_FIELDS = ("model", "plate")
# Scripts may also know these: the birthday greeting says whether it is the 农历 birthday.
SCRIPT_OWNER_FIELDS = (*OWNER_FIELDS, "birthday_lunar")
# A touchpoint's payload keys that are personal data (a payload is otherwise the message's
# own data: days, numbers, ticket numbers, scores), left out of a script's ``payload``.
PRIVATE_PAYLOAD = frozenset({"vin", "phone", "link_token", "birthday", "telegram_user_id",
                             "telegram_chat_id"})
# Whether a script's greeting and self-introduction (张先生您好！我是…的客服专员) are due: only
# when a new exchange with the owner starts (issue 18). Set around a render by whoever
# knows (:func:`greeting`: the dispatcher, the ticket notices); a render nobody told greets,
# as a first message should. A context variable because the composers that render are the
# features' own (one signature for all), and ``asyncio.to_thread`` carries it into the
# worker thread that renders.
GREETING_DUE: ContextVar[bool] = ContextVar("greeting_due", default=True)


@contextmanager
def greeting(due: bool) -> Iterator[None]:
    """Renders inside greet (or not): ``with greeting(False): compose(...)``."""
    token = GREETING_DUE.set(due)
    try:
        yield
    finally:
        GREETING_DUE.reset(token)


def owner_fields(customer: Any, fields: tuple[str, ...] = OWNER_FIELDS) -> Fields:
    """An owner as templates see them: only ``fields``, as plain values; scripts also get
    ``address``, the name with the title where it is known (张先生, 003 §2.1.2)."""
    values = {name: getattr(customer, name) for name in fields}
    if fields is SCRIPT_OWNER_FIELDS:
        values["address"] = address(customer.name, getattr(customer, "title", "") or "",
                                    customer.language)
    return Fields("customer", values)


def car_fields(vehicle: Any) -> Fields | None:
    """A car as templates see it (model and plate), or None for no car."""
    if vehicle is None:
        return None
    return Fields("vehicle", {name: getattr(vehicle, name) for name in CAR_FIELDS})


def script_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """What a script renders from: an owner or car row becomes its whitelisted fields, a
    payload loses its personal keys; other rows are refused (pass what the script needs)."""
    out: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, Customer):
            value = owner_fields(value, SCRIPT_OWNER_FIELDS)
        elif isinstance(value, Vehicle):
            value = car_fields(value)
        elif isinstance(value, Model):
            raise TypeError(f"script context {key!r}: pass the values a script needs, not a "
                            f"{type(value).__name__} row")
        elif key == "customer" and isinstance(value, dict) and "address" not in value \
                and "name" in value:  # an owner given as plain values: address them too
            value = {**value, "address": address(str(value["name"]), value.get("title", ""),
                                                 lang_of_values(value))}
        elif key == "payload" and isinstance(value, dict) and PRIVATE_PAYLOAD & value.keys():
            value = {k: v for k, v in value.items() if k not in PRIVATE_PAYLOAD}
        out[key] = value
    return out


def lang_of_values(values: Mapping[str, Any]) -> str:
    """The language of an owner given as plain values (zh_CN when not said)."""
    return str(values.get("language") or DEFAULT_LANGUAGE)


class Scripts:
    """Renders message templates and labels in the owner's language."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self._dirs = [d for d in (override_dir, PACKAGED) if d is not None]
        self._envs: dict[str, LimitedEnvironment] = {}
        self._label_cache: dict[str, dict[str, str]] = {}
        # The console's edits (ScriptEdit rows), above every folder: (lang, key) -> text,
        # and the highest row id seen, so a change made on any instance is noticed.
        self._edits: dict[tuple[str, str], str] = {}
        self._stamp = 0

    async def refresh(self) -> bool:
        """Take up edits saved on any instance: one indexed read of the newest edit's id,
        and a reload only when it moved. Called by the dispatcher's every tick, a job every
        few seconds and the console after a save; True when something changed."""
        stamp = await newest_id(ScriptEdit)
        if stamp == self._stamp:
            return False
        edits: dict[tuple[str, str], str] = {}
        rows = await ScriptEdit.filter(id__lte=stamp).order_by("id").values_list(
            "lang", "key", "text")
        for lang, key, text in rows:
            if text is None:
                edits.pop((lang, key), None)
            else:
                edits[(lang, key)] = text
        self._edits, self._stamp = edits, stamp
        self.reload()
        return True

    async def save(self, key: str, lang: str, text: str | None, now: datetime) -> None:
        """Keep a console edit (None: back to the packaged or folder text) for every
        instance; this one uses it at once."""
        await ScriptEdit.create(key=key, lang=lang, text=text, created_at=now)
        await self.refresh()

    def edited(self, key: str, lang: str) -> bool:
        """Whether the console's edit is what ``key`` in ``lang`` uses."""
        return (lang, key) in self._edits

    @property
    def override_dir(self) -> Path | None:
        """The dealership's own folder (``CAREBOT_SCRIPTS_DIR``), if any."""
        return self._dirs[0] if len(self._dirs) > 1 else None

    def reload(self) -> None:
        """Forget what was loaded, so an edited or removed file counts at once."""
        self._envs.clear()
        self._label_cache.clear()
        _read_labels.cache_clear()

    def template_keys(self) -> list[str]:
        """Every template key, in any language and folder."""
        found = {p.stem for d in self._dirs for lang in LANGUAGES
                 for p in (d / lang).glob("*.html")}
        return sorted(found)

    def source(self, key: str, lang: str) -> tuple[str, str] | None:
        """The template text used for ``key`` in ``lang`` itself (no fallback), and where it
        comes from: "edited" (in the console), "override" (the dealership's folder) or
        "builtin"; None if none has it."""
        edit = self._edits.get((lang, key))
        if edit is not None:
            return edit, "edited"
        for d in self._dirs:
            path = d / lang / f"{key}.html"
            if path.is_file():
                origin = "builtin" if d == PACKAGED else "override"
                return path.read_text(encoding="utf-8"), origin
        return None

    def _env(self, lang: str) -> LimitedEnvironment:
        env = self._envs.get(lang)
        if env is None:
            edits = {f"{key}.html": text for (where, key), text in self._edits.items()
                     if where == lang}
            loaders: list[BaseLoader] = [DictLoader(edits)]
            loaders += [FileSystemLoader(str(d / lang)) for d in self._dirs]
            env = LimitedEnvironment(loader=ChoiceLoader(loaders), keep_trailing_newline=False)
            self._envs[lang] = env
        return env

    def render(self, key: str, lang: str, **context: Any) -> str:
        """Render message ``key`` for ``lang`` (falling back to zh_CN), from the whitelisted
        context (:func:`script_context`) and within the template budget. A text longer than
        Telegram takes is returned, so that a caller can shorten what it put in (only a
        runaway is refused, :class:`bot.templating.TemplateOverBudget`)."""
        safe = script_context(context)
        safe.setdefault("greet", GREETING_DUE.get())
        safe.setdefault("questions", 0)  # a survey asked as a questionnaire: how many
        for candidate in _languages(lang):
            try:
                template = self._env(candidate).get_template(f"{key}.html")
            except TemplateNotFound:
                continue
            return render(template, safe, max_chars=RUNAWAY_CAP)
        raise KeyError(f"no script {key!r} in {lang} or {DEFAULT_LANGUAGE}")

    async def render_off_loop(self, key: str, lang: str, **context: Any) -> str:
        """:meth:`render` in a worker thread (the context is made safe here first)."""
        return await render_off_loop(self.render, key, lang, **script_context(context))

    def label(self, key: str, lang: str, **fmt: Any) -> str:
        """A short text by key (button label, one-line reply), formatted with ``fmt``."""
        for candidate in _languages(lang):
            value = self._labels(candidate).get(key)
            if value is not None:
                return value.format(**fmt) if fmt else value
        raise KeyError(f"no label {key!r} in {lang} or {DEFAULT_LANGUAGE}")

    def _labels(self, lang: str) -> dict[str, str]:
        cached = self._label_cache.get(lang)
        if cached is not None:
            return cached
        merged: dict[str, str] = {}
        for d in reversed(self._dirs):  # packaged first, overrides on top
            folder = d / lang
            if folder.is_dir():
                for path in sorted(folder.glob("*.toml")):
                    merged.update(_read_labels(path))
        self._label_cache[lang] = merged
        return merged


def _languages(lang: str) -> list[str]:
    return [lang] if lang == DEFAULT_LANGUAGE else [lang, DEFAULT_LANGUAGE]


@lru_cache(maxsize=32)
def _read_labels(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {str(k): str(v) for k, v in data.items()}


def normalize_language(value: str | None) -> str:
    """Map what imports and Telegram say (zh-hans, en-US, 中文) to a language we serve."""
    v = (value or "").strip().lower().replace("-", "_")
    if v.startswith("en") or v == "english" or v == "英文":
        return "en"
    return DEFAULT_LANGUAGE
