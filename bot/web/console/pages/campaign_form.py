"""The campaign editor's form, checked field by field with the parsers the CLI and the API
use (an error shows next to its field and everything typed is shown again), and the helpers
the campaign pages share."""

from __future__ import annotations

import html as html_lib
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.campaigns import audiences, content, policy
from bot.campaigns.audiences import AUDIENCE_FIELDS
from bot.campaigns.policy import CampaignError
from bot.templating import render_off_loop
from bot.texts import LANGUAGES
from bot.web.console import console_of, render, staff_of
from bot.web.console.render import Translator
from db.models import AuditLog, Campaign, CustomerTag, Vehicle

CHOICES_SECONDS = 60.0  # the car models and tags offered in the editor are kept this long
MAX_CHOICES = 300
BUTTON_SLOTS = (1, 2, 3)
BUTTON_LABEL_MAX = 40
PAST_GRACE = timedelta(minutes=10)  # a send time this far in the past still means "now"
_HTTPS = re.compile(r"^https://[^\s/]+\S*$")
_TAG = re.compile(r"<[^>]*>")
LIST_FIELDS = ("models", "languages")
# What each JSON endpoint checks (the script clears and shows errors for these fields).
BUTTON_FIELDS = tuple(f"button{i}_{part}" for i in BUTTON_SLOTS
                      for part in ("kind", "label", "url"))
MESSAGE_FIELDS = tuple(f"message_{lang}" for lang in LANGUAGES)
COUNT_CHECKS = (*AUDIENCE_FIELDS, "send_at")
PREVIEW_CHECKS = (*COUNT_CHECKS, *MESSAGE_FIELDS, *BUTTON_FIELDS, "event_date")


# --------------------------------------------------------------------------- the form


@dataclass
class Edited:
    """A submitted editor form: what was typed (to show again), errors by field, and the
    checked values ready for promotions."""

    form: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    name: str = ""
    marketer: str = ""
    messages: dict[str, str] = field(default_factory=dict)
    buttons: list[dict[str, Any]] = field(default_factory=list)
    audience: audiences.Audience | None = None
    event_date: date | None = None
    send_at: datetime | None = None


def form_values(post: MultiDictProxy[Any]) -> dict[str, Any]:
    """The posted fields as texts (lists for the multi-choice ones), trimmed of nothing:
    what the marketer typed is what they see again."""
    values: dict[str, Any] = {}
    for key in set(post.keys()):
        if key in ("_csrf", "action"):
            continue
        if key in LIST_FIELDS:
            values[key] = [str(v) for v in post.getall(key, []) if isinstance(v, str) and v]
        else:
            raw = post.get(key, "")
            values[key] = raw if isinstance(raw, str) else ""
    return values


def _split_tags(text: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,\uff0c、]", text) if t.strip()]


def _audience_raw(form: dict[str, Any]) -> dict[str, Any]:
    """The audience filters as audiences.parse_audience takes them."""
    raw: dict[str, Any] = {}
    for name in AUDIENCE_FIELDS:
        value = form.get(name)
        if name in LIST_FIELDS:
            if value:
                raw[name] = list(value)
        elif name == "tags":
            tags = _split_tags(str(value or ""))
            if tags:
                raw[name] = tags
        elif isinstance(value, str) and value.strip():
            raw[name] = value.strip()
    return raw


def check_audience(form: dict[str, Any], t: Translator
                   ) -> tuple[audiences.Audience | None, dict[str, str]]:
    """Each filter on its own first (so its error sits next to it), then the ranges."""
    raw = _audience_raw(form)
    errors: dict[str, str] = {}
    for name, value in raw.items():
        try:
            audiences.parse_audience({name: value})
        except CampaignError:
            errors[name] = t(f"campaigns.err.{name}")
    if errors:
        return None, errors
    low, high = raw.get("score_min"), raw.get("score_max")
    if low is not None and high is not None and int(low) > int(high):
        errors["score_max"] = t("campaigns.err.score_range")
    start, end = raw.get("delivered_from"), raw.get("delivered_to")
    if start and end and date.fromisoformat(start) > date.fromisoformat(end):
        errors["delivered_to"] = t("campaigns.err.delivered_range")
    if errors:
        return None, errors
    try:
        return audiences.parse_audience(raw), {}
    except CampaignError as exc:  # a rule added in promotions later: still said, in place
        return None, {"models": t("campaigns.err.audience", detail=str(exc))}


PROBLEM_KEYS = {"render": "campaigns.err.template", "budget": "campaigns.err.template_budget",
                "html": "campaigns.err.template_html", "length": "campaigns.err.template_length"}


async def check_messages(texts: dict[str, str], dealer: dict[str, str],
                         t: Translator) -> dict[str, str]:
    """The texts that cannot be sent, by field, each with what is wrong: checked as the API
    and the CLI check them (sample owner, step budget, 4096 characters, Telegram's HTML),
    in a worker thread, so a template that loops too long never stalls the console."""
    problems = await render_off_loop(content.check_messages, texts, dealer)
    return {f"message_{lang}": t(PROBLEM_KEYS[problem.kind], detail=problem.detail,
                                 n=problem.size, cap=content.TEXT_CAP,
                                 over=problem.size - content.TEXT_CAP)
            for lang, problem in problems.items()}


def check_buttons(form: dict[str, Any], t: Translator, previous: list[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    errors: dict[str, str] = {}
    specs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in BUTTON_SLOTS:
        kind = str(form.get(f"button{i}_kind", "")).strip()
        if not kind:
            continue
        if kind not in policy.BUTTON_KINDS:
            errors[f"button{i}_kind"] = t("campaigns.err.button_kind")
            continue
        if kind != "url" and kind in seen:
            errors[f"button{i}_kind"] = t("campaigns.err.button_twice")
            continue
        seen.add(kind)
        spec: dict[str, Any] = {"kind": kind}
        label = str(form.get(f"button{i}_label", "")).strip()
        if len(label) > BUTTON_LABEL_MAX:
            errors[f"button{i}_label"] = t("campaigns.err.button_label", n=BUTTON_LABEL_MAX)
        elif label:
            # A label given per language (API, CLI) stays whole while its Chinese text is
            # what the editor shows and the marketer left unchanged.
            before = previous[i - 1] if i - 1 < len(previous) else {}
            labels = before.get("label") if before.get("kind") == kind else None
            keep = isinstance(labels, dict) and labels.get("zh_CN") == label
            spec["label"] = dict(labels) if keep and isinstance(labels, dict) else label
        if kind == "url":
            url = str(form.get(f"button{i}_url", "")).strip()
            if not _HTTPS.match(url):
                errors[f"button{i}_url"] = t("campaigns.err.button_url")
            spec["url"] = url
        specs.append(spec)
    if errors:
        return [], errors
    try:
        return content.parse_buttons(specs), {}
    except CampaignError as exc:
        return [], {"button1_kind": t("campaigns.err.buttons", detail=str(exc))}


def parse_local_time(text: str, tz: Any) -> datetime:
    """'2026-11-10T10:00' (a datetime-local field) or '2026-11-10 10:00', local time."""
    when = datetime.fromisoformat(text.strip())
    return when if when.tzinfo else when.replace(tzinfo=tz)


async def read_form(form: dict[str, Any], t: Translator, *, tz: Any, dealer: dict[str, str],
                    previous_buttons: list[dict[str, Any]] | None = None,
                    checks: tuple[str, ...] | None = None,
                    require_message: bool = True) -> Edited:
    """Check every field of the editor (or only ``checks``); errors are translated.
    ``require_message=False``: a Chinese message not written yet is no error (the live
    preview has nothing to show then, and says so without scolding)."""
    edited = Edited(form=form)
    errors = edited.errors

    def wanted(name: str) -> bool:
        return checks is None or name in checks

    edited.name = str(form.get("name", "")).strip()
    if wanted("name") and not edited.name:
        errors["name"] = t("campaigns.err.name")
    elif wanted("name") and len(edited.name) > 200:
        errors["name"] = t("campaigns.err.too_long", n=200)
    edited.marketer = str(form.get("marketer", "")).strip()
    if wanted("marketer") and len(edited.marketer) > 100:
        errors["marketer"] = t("campaigns.err.too_long", n=100)
    if any(wanted(f) for f in MESSAGE_FIELDS):
        texts: dict[str, str] = {}
        for lang in LANGUAGES:
            text = str(form.get(f"message_{lang}", ""))
            if text.strip():
                texts[lang] = text
            elif lang == "zh_CN" and require_message:
                errors[f"message_{lang}"] = t("campaigns.err.message_required")
        refused = await check_messages(texts, dealer, t)
        errors.update(refused)
        edited.messages = {lang: text for lang, text in texts.items()
                           if f"message_{lang}" not in refused}
    if any(wanted(f) for f in BUTTON_FIELDS):
        edited.buttons, button_errors = check_buttons(form, t, previous_buttons or [])
        errors.update(button_errors)
    if any(wanted(f) for f in AUDIENCE_FIELDS):
        edited.audience, audience_errors = check_audience(form, t)
        errors.update(audience_errors)
    event = str(form.get("event_date", "")).strip()
    if event and wanted("event_date"):
        try:
            edited.event_date = date.fromisoformat(event)
        except ValueError:
            errors["event_date"] = t("campaigns.err.date")
    send_at = str(form.get("send_at", "")).strip()
    if send_at and wanted("send_at"):
        try:
            edited.send_at = parse_local_time(send_at, tz)
        except ValueError:
            errors["send_at"] = t("campaigns.err.send_at")
    return edited


def form_of(campaign: Campaign, tz: Any) -> dict[str, Any]:
    """A saved campaign as the editor's fields."""
    form: dict[str, Any] = {"name": campaign.name, "marketer": campaign.marketer,
                            "force_reason": ""}
    for lang in LANGUAGES:
        form[f"message_{lang}"] = campaign.messages.get(lang, "")
    for i, button in enumerate(campaign.buttons[:len(BUTTON_SLOTS)], start=1):
        form[f"button{i}_kind"] = button.get("kind", "")
        labels = button.get("label") or {}
        form[f"button{i}_label"] = labels.get("zh_CN") or next(iter(labels.values()), "") \
            if isinstance(labels, dict) else str(labels)
        form[f"button{i}_url"] = button.get("url", "")
    for name, value in (campaign.audience or {}).items():
        if name in LIST_FIELDS:
            form[name] = list(value)
        elif name == "tags":
            form[name] = ", ".join(value)
        elif isinstance(value, bool):
            form[name] = "true" if value else "false"
        else:
            form[name] = str(value)
    form["event_date"] = campaign.event_date.isoformat() if campaign.event_date else ""
    form["send_at"] = campaign.send_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M") \
        if campaign.send_at else ""
    return form


# --------------------------------------------------------------------------- helpers


def translator(request: web.Request) -> Translator:
    console = console_of(request)
    return Translator(console.strings, staff_of(request).language)


def dealer_of(request: web.Request) -> dict[str, str]:
    settings = console_of(request).services.settings
    return {"name": settings.dealer_name, "phone": settings.dealer_phone}


def rules_of(request: web.Request) -> policy.CampaignRules:
    return console_of(request).services.rules.campaigns


async def audit(request: web.Request, action: str, campaign_id: int, **detail: Any) -> None:
    await AuditLog.create(staff_id=staff_of(request).id, action=f"campaign.{action}",
                          target=f"campaign:{campaign_id}", detail=detail,
                          created_at=console_of(request).services.clock.now())


async def campaign_or_none(request: web.Request) -> Campaign | None:
    return await Campaign.get_or_none(id=int(request.match_info["id"]))


async def not_found(request: web.Request) -> web.Response:
    return await render(request, "error.html", status=404, code=404, message_key="error.404")


async def choices(request: web.Request) -> tuple[list[str], list[str]]:
    """The car models and tags on file, for the audience builder (kept a minute)."""
    state = console_of(request).state
    hit = state.get("campaigns.choices")
    if hit is not None and time.monotonic() - hit[0] < CHOICES_SECONDS:
        return hit[1], hit[2]
    models: list[str] = sorted({str(m) for m in await Vehicle.all().distinct().limit(
        MAX_CHOICES).values_list("model", flat=True) if m})
    tags: list[str] = sorted({str(m) for m in await CustomerTag.all().distinct().limit(
        MAX_CHOICES).values_list("tag", flat=True) if m})
    state["campaigns.choices"] = (time.monotonic(), models, tags)
    return models, tags


def plain_text(telegram_html: str) -> str:
    """A message in Telegram's HTML as the owner reads it (tags off, entities decoded);
    shown with textContent, so nothing in a template can run in a colleague's browser."""
    return html_lib.unescape(_TAG.sub("", telegram_html))
