"""The scripts checked as they will be sent: every template of every language rendered with
sample data (sandboxed, on a budget, strict about undefined names), every label file parsed.

``carebot scripts check`` runs :func:`check_scripts` over every folder; the console's script
editor runs :func:`preview_template` on one edited template before saving it. Both the CLI
and the web import this module (neither imports the other).
"""

from __future__ import annotations

import string
import tempfile
import tomllib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, TemplateError, TemplateSyntaxError, meta

from bot.config import Settings
from bot.features import FEATURES
from bot.sandbox.telegram_html import HtmlParseError, parse_html
from bot.surveys import questionnaire
from bot.templating import RUNAWAY_CAP, LimitedEnvironment, render
from bot.texts import LANGUAGES, PACKAGED, script_context
from db.models import Customer, Vehicle

_NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
# Sample payloads of the kinds whose payload we know; any other template gets a payload that
# answers every key with a sample value (its own feature's tests cover its real payload).
SAMPLE_PAYLOADS: dict[str, dict[str, Any]] = {
    "delivery_checkin": {},
    "followup_3d": {"vin": "LSVAU2180N2183294", "delivered_on": "2026-10-31"},
    "visit_7d": {"vin": "LSVAU2180N2183294", "delivered_on": "2026-10-27"},
    "first_service_reminder": {"vin": "LSVAU2180N2183294", "delivered_on": "2026-10-16"},
    "service_followup": {
        "visit_id": 1, "visit_kind": "maintenance", "left_on": "2026-11-01",
        "major_repair": False, "advisor": "李娜", "mileage": 5120,
        "next_service_on": "2027-05-01", "next_service_km": 15120,
    },
    "second_followup": {
        "visit_id": 1, "visit_kind": "repair", "left_on": "2026-11-01",
        "major_repair": False, "advisor": "李娜", "mileage": 5120,
        "next_service_on": "2027-05-01", "next_service_km": 15120,
    },
    "service_due": {"next_service_on": "2026-11-10", "next_service_km": 15120, "by": "km",
                    "interval_km": 10000, "last_service_on": "2026-05-10"},
    "repair_reminder": {"item": "前刹车片更换", "recommended_on": "2026-10-03"},
    "birthday": {"day": "2026-11-03"},
    "insurance_expiry": {"expiry": "2026-12-03", "lead_days": 30, "days_left": 30},
    "licence_expiry": {"expiry": "2026-12-03", "lead_days": 30, "days_left": 30},
    "holiday": {"name": "国庆节", "day": "2026-10-01"},
    "booking_reminder": {"booking_id": 1, "day": "2026-11-04", "slot": "09:00",
                         "time": "09:00-12:00", "kind": "first_service"},
    "booking_no_show": {"booking_id": 1, "day": "2026-11-04", "slot": "13:30",
                        "time": "13:30-17:30", "kind": "repair"},
}
# Known kinds are also checked with vehicle=None (owner-level messages have no car, and a
# car may be gone from the file), except those always written with a car.
VEHICLE_REQUIRED = ("delivery_checkin",)


class _AnyPayload(dict[str, Any]):
    """A payload for a template whose payload we don't know: every key has a sample."""

    def __missing__(self, key: str) -> str:
        return "sample"


class _Sample:
    """Stands in for context a feature passes that we know nothing about (``ticket``...):
    any attribute, item or call is another sample, printed as "sample". Syntax, filters and
    everything else in the template are still checked strictly. A feature gives real samples
    with ``SCRIPT_SAMPLES`` in its module (see :func:`feature_samples`)."""

    def __getattr__(self, name: str) -> _Sample:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Sample()

    def __getitem__(self, key: Any) -> _Sample:
        return _Sample()

    def __call__(self, *args: Any, **kwargs: Any) -> _Sample:
        return _Sample()

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __str__(self) -> str:
        return "sample"


def feature_samples() -> dict[str, dict[str, Any]]:
    """Extra sample context by template key, from each feature module's ``SCRIPT_SAMPLES``
    (``{"ticket_opened": {"ticket": {...}}}``): context its composer passes besides
    customer, vehicle, dealer and payload."""
    merged: dict[str, dict[str, Any]] = {}
    for feature in FEATURES:
        for key, extra in (getattr(feature, "SCRIPT_SAMPLES", None) or {}).items():
            merged.setdefault(key, {}).update(extra)
    return merged


def _sample_customer(lang: str) -> Any:
    return Customer(
        id=1, name="王伟", phone="+8613800138000", birthday=date(1985, 6, 1),
        birthday_lunar=False, birthday_md="G0601", licence_expiry=date(2026, 12, 3),
        language=lang, advisor="李娜", link_token="sample", telegram_user_id=5001,
        telegram_chat_id=5001, linked_at=_NOW, created_at=_NOW, updated_at=_NOW,
    )


def _sample_vehicle() -> Any:
    return Vehicle(
        id=1, vin="LSVAU2180N2183294", plate="粤A12345", model="星辰 S7", customer_id=1,
        delivered_at=_NOW - timedelta(days=3), sales_advisor="李娜",
        insurance_expiry=date(2026, 12, 3), mileage=5120, created_at=_NOW, updated_at=_NOW,
    )


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.message}"
            if self.line
            else f"{self.path}: {self.message}"
        )


def _env(folder: Path) -> LimitedEnvironment:
    """The same environment as :class:`bot.texts.Scripts` (sandbox, budget), on one folder
    only, so each file is checked itself (not the one that would shadow it)."""
    return LimitedEnvironment(loader=FileSystemLoader(str(folder)), keep_trailing_newline=False)


def _line_of(exc: BaseException, path: Path) -> int | None:
    """The template line an error was raised at (Jinja puts template frames in tracebacks)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and Path(frame.filename).name == path.name:
            line = frame.lineno
    return line


def script_dirs(settings: Settings) -> list[Path]:
    """The packaged scripts, then the dealership's own folder when one is set."""
    dirs = [PACKAGED]
    if settings.scripts_dir is not None:
        dirs.append(Path(settings.scripts_dir))
    return dirs


def check_scripts(
    dirs: list[Path], extra: dict[str, dict[str, Any]] | None = None
) -> tuple[int, list[Problem]]:
    """Render every template of every language with sample data; parse every label file
    and every questionnaire (bot/surveys/questionnaire.py).

    Returns (files checked, problems). Each problem names the file and, where known, the line.
    """
    extra = extra or {}
    checked = 0
    problems: list[Problem] = []
    for folder in dirs:
        if not folder.is_dir():
            problems.append(Problem(folder, None, "scripts folder does not exist"))
            continue
        for lang in LANGUAGES:
            lang_dir = folder / lang
            if not lang_dir.is_dir():
                continue
            env = _env(lang_dir)
            for path in sorted(lang_dir.glob("*.html")):
                checked += 1
                problems += _check_template(env, path, lang, extra.get(path.stem, {}))
            problems += _check_labels(lang_dir)
            checked += len(list(lang_dir.glob("*.toml")))
            files, found = questionnaire.check_folder(lang_dir)
            checked += files
            problems += [Problem(path, line, reason) for path, line, reason in found]
    return checked, problems


def _check_template(
    env: LimitedEnvironment, path: Path, lang: str, extra: dict[str, Any]
) -> Iterator[Problem]:
    kind = path.stem
    try:
        source = path.read_text(encoding="utf-8")
        names = meta.find_undeclared_variables(env.parse(source))
        template = env.get_template(path.name)
    except TemplateSyntaxError as exc:
        yield Problem(path, exc.lineno, f"syntax error: {exc.message}")
        return
    except (TemplateError, UnicodeDecodeError) as exc:
        yield Problem(path, None, f"cannot load: {exc}")
        return
    known = kind in SAMPLE_PAYLOADS
    payload: dict[str, Any] = dict(SAMPLE_PAYLOADS[kind]) if known else _AnyPayload()
    vehicles = [_sample_vehicle()]
    if known and kind not in VEHICLE_REQUIRED:
        vehicles.append(None)
    # with and without a car; greeting (a new exchange) and not (mid-exchange)
    for vehicle, greet in [(v, g) for v in vehicles for g in (True, False)]:
        context = _sample_context(kind, lang, vehicle, payload, names, extra)
        context["greet"] = greet
        context["questions"] = 0 if greet else 7  # one score, and a questionnaire of seven
        try:
            text = render(template, context, max_chars=RUNAWAY_CAP)
        except Exception as exc:
            note = " (vehicle=None)" if vehicle is None else ""
            note += "" if greet else " (mid-exchange: greet=False)"
            yield Problem(path, _line_of(exc, path), f"{type(exc).__name__}: {exc}{note}")
            return
        if not text:
            yield Problem(path, None, "renders to an empty message")
        elif len(text) > 4096:
            yield Problem(path, None, f"renders to {len(text)} characters; Telegram takes 4096")


def _sample_context(kind: str, lang: str, vehicle: Any, payload: dict[str, Any],
                    names: set[str], extra: dict[str, Any]) -> dict[str, Any]:
    """What the script gets when it is sent, made safe the same way (an owner is a name
    and a language, not their record)."""
    context: dict[str, Any] = {
        "customer": _sample_customer(lang), "vehicle": vehicle,
        "dealer": {"name": "星辰汽车", "phone": "020-88886666"}, "payload": payload,
    }
    context.update(extra)
    if kind not in SAMPLE_PAYLOADS:
        context.update({n: _Sample() for n in names if n not in context})
    return script_context(context)


def preview_template(source: str, key: str, lang: str) -> tuple[str, list[str]]:
    """Check ``source`` as template ``key`` the way ``carebot scripts check`` does, then
    render it with sample data and parse it as Telegram would (the console's editor).

    Returns (the rendered message, or "" when it cannot be rendered; the problems found)."""
    with tempfile.TemporaryDirectory(prefix="carebot-script-") as folder:
        path = Path(folder) / f"{key}.html"
        path.write_text(source, encoding="utf-8")
        env = _env(Path(folder))
        extra = feature_samples().get(key, {})
        problems = [f"line {p.line}: {p.message}" if p.line else p.message
                    for p in _check_template(env, path, lang, extra)]
        if problems:
            return "", problems
        payload: dict[str, Any] = dict(SAMPLE_PAYLOADS[key]) if key in SAMPLE_PAYLOADS \
            else _AnyPayload()
        names = meta.find_undeclared_variables(env.parse(source))
        context = _sample_context(key, lang, _sample_vehicle(), payload, names, extra)
        context["greet"] = True
        context["questions"] = 0
        text = render(env.get_template(path.name), context, max_chars=RUNAWAY_CAP)
    try:
        parse_html(text)
    except HtmlParseError as exc:
        problems.append(f"Telegram would refuse this message's HTML: {exc}")
    return text, problems


def _check_labels(lang_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    formatter = string.Formatter()
    for path in sorted(lang_dir.glob("*.toml")):
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            problems.append(Problem(path, line, f"not valid TOML: {exc}"))
            continue
        for key, value in data.items():
            if key in seen:
                problems.append(Problem(path, None, f"label {key!r} is also in {seen[key].name}"))
            seen[key] = path
            if not isinstance(value, str):
                problems.append(Problem(path, None, f"label {key!r} is not text"))
                continue
            try:
                list(formatter.parse(value))
            except ValueError as exc:
                problems.append(Problem(path, None, f"label {key!r}: {exc}"))
    return problems
