"""Campaigns (marketing and admin): the list, the editor with a live audience count and a
live preview for real owners, scheduling with the event-date rule, test-send, and the
running campaign's progress and results with charts drawn on the server as SVG.

Thin over :mod:`bot.campaigns.promotions` (only its public functions): the form is checked
field by field with the same parsers the CLI and the API use, so an error shows next to its
field and everything typed is shown again. Campaigns are the dealership's, not one
advisor's: whoever holds the ``campaigns`` permission sees them all (no customer scope;
the preview shows a sample owner's name and language, never a phone).
"""

from __future__ import annotations

import html as html_lib
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jinja2 import TemplateError
from markupsafe import Markup, escape
from multidict import MultiDictProxy
from tortoise import Tortoise
from tortoise.functions import Count

from bot.campaigns import audiences, content, policy, promotions
from bot.campaigns.audiences import AUDIENCE_FIELDS
from bot.campaigns.policy import CampaignError
from bot.delivery.limits import Lane
from bot.keyboards import keyboard
from bot.services import Services
from bot.templating import render_off_loop
from bot.texts import LANGUAGES
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.render import Translator
from db.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    Customer,
    CustomerTag,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)

if TYPE_CHECKING:
    from telegram import InlineKeyboardMarkup

log = logging.getLogger(__name__)

PAGE_SIZE = 50
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
TRANSITIONS = ("pause", "resume", "cancel", "unschedule")
RUNNING = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)
AFTER: dict[str, tuple[CampaignStatus, ...]] = {  # the status each action leaves behind
    "scheduled": (CampaignStatus.SCHEDULED,), "pause": (CampaignStatus.PAUSED,),
    "resume": (CampaignStatus.SCHEDULED, CampaignStatus.SENDING),
    "cancel": (CampaignStatus.CANCELLED,),
}
# Chart colours (fill), one per bar kind.
COLOURS = {"sent": "#1f8a4c", "failed": "#c53030", "unreachable": "#b7791f",
           "pending": "#718096", "held": "#a0aec0", "interested": "#0b63c5",
           "book": "#2b6cb0", "unsubscribe": "#805ad5"}


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
    return [t.strip() for t in re.split(r"[,，、]", text) if t.strip()]


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
                "html": "campaigns.err.template_html"}


async def check_messages(texts: dict[str, str], dealer: dict[str, str],
                         t: Translator) -> dict[str, str]:
    """The texts that cannot be sent, by field, each with what is wrong: checked as the API
    and the CLI check them (sample owner, step budget, 4096 characters, Telegram's HTML),
    in a worker thread, so a template that loops too long never stalls the console."""
    problems = await render_off_loop(content.check_messages, texts, dealer)
    return {f"message_{lang}": t(PROBLEM_KEYS[problem.kind], detail=problem.detail)
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


def _t(request: web.Request) -> Translator:
    console = console_of(request)
    return Translator(console.strings, staff_of(request).language)


def _dealer(request: web.Request) -> dict[str, str]:
    settings = console_of(request).services.settings
    return {"name": settings.dealer_name, "phone": settings.dealer_phone}


def _rules(request: web.Request) -> policy.CampaignRules:
    return policy.campaign_rules(console_of(request).services.settings)


async def _audit(request: web.Request, action: str, campaign_id: int, **detail: Any) -> None:
    await AuditLog.create(staff_id=staff_of(request).id, action=f"campaign.{action}",
                          target=f"campaign:{campaign_id}", detail=detail,
                          created_at=console_of(request).services.clock.now())


async def _campaign_or_404(request: web.Request) -> Campaign | None:
    return await Campaign.get_or_none(id=int(request.match_info["id"]))


async def _not_found(request: web.Request) -> web.Response:
    return await render(request, "error.html", status=404, code=404, message_key="error.404")


async def _choices(request: web.Request) -> tuple[list[str], list[str]]:
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


# --------------------------------------------------------------------------- SVG charts


def _svg_open(chart_id: str, title: str, width: int, height: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}" class="campaign-chart">')


def bar_chart(bars: list[tuple[str, str, int]], *, title: str, chart_id: str,
              width: int = 600) -> Markup:
    """Horizontal bars: (key, label, value) each; labels left, values at the bar's end."""
    row, label_w, pad = 30, 170, 60
    height = row * len(bars) + 10
    top = max([v for _, _, v in bars] + [1])
    parts = [_svg_open(chart_id, title, width, height),
             f"<title>{escape(title)}</title>"]
    for i, (key, label, value) in enumerate(bars):
        y = 5 + i * row
        w = round((width - label_w - pad) * value / top)
        colour = COLOURS.get(key, "#4a5568")
        parts.append(f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end">'
                     f"{escape(label)}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{max(w, 1 if value else 0)}" '
                     f'height="{row - 10}" rx="3" fill="{colour}" data-key="{escape(key)}" '
                     f'data-value="{value}"><title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + 19}">{value:,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def time_chart(buckets: list[tuple[str, int]], *, title: str, chart_id: str,
               width: int = 600, height: int = 180) -> Markup:
    """Vertical bars over time: (local time label, messages sent) per bucket."""
    left, bottom, top_pad = 48, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    top = max([n for _, n in buckets] + [1])
    step = min(plot_w / max(len(buckets), 1), 48.0)
    parts = [_svg_open(chart_id, title, width, height),
             f"<title>{escape(title)}</title>",
             (f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 8}" '
              f'y2="{top_pad + plot_h}" stroke="#a0aec0"/>'),
             f'<text x="{left - 6}" y="{top_pad + 10}" text-anchor="end">{top:,}</text>',
             f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>']
    every = max(1, math.ceil(len(buckets) / 6))  # at most about six time labels
    for i, (label, n) in enumerate(buckets):
        h = round(plot_h * n / top)
        x = left + i * step + step * 0.1
        parts.append(f'<rect x="{x:.1f}" y="{top_pad + plot_h - h}" width="{step * 0.8:.1f}" '
                     f'height="{h}" fill="{COLOURS["sent"]}" data-value="{n}">'
                     f"<title>{escape(label)}: {n}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 8}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


BUCKETS = (60, 300, 600, 1800, 3600, 2 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


async def sends_over_time(campaign_id: int, tz: Any, max_bars: int = 24
                          ) -> list[tuple[str, int]]:
    """Messages of the campaign sent per time bucket (a minute up to a week, so that there
    are at most ``max_bars``): two aggregate queries over the campaign's rows."""
    conn = Tortoise.get_connection("default")
    postgres = conn.capabilities.dialect == "postgres"
    epoch = ("CAST(FLOOR(EXTRACT(EPOCH FROM sent_at)) AS BIGINT)" if postgres
             else "CAST(strftime('%s', sent_at) AS INTEGER)")
    marks = ("$1", "$2") if postgres else ("?", "?")
    where = (f"FROM touchpoint WHERE kind = {marks[0]} AND occasion_key = {marks[1]} "
             f"AND status = 'sent' AND sent_at IS NOT NULL")
    args = [policy.KIND, policy.occasion_key(campaign_id)]
    span = await conn.execute_query_dict(f"SELECT MIN({epoch}) AS lo, MAX({epoch}) AS hi "
                                         f"{where}", args)
    if not span or span[0]["lo"] is None:
        return []
    lo, hi = int(span[0]["lo"]), int(span[0]["hi"])
    width = next((b for b in BUCKETS if (hi - lo) / b < max_bars), BUCKETS[-1])
    rows = await conn.execute_query_dict(
        f"SELECT {epoch} / {width} AS b, COUNT(*) AS n {where} GROUP BY 1 ORDER BY 1", args)
    counts = {int(r["b"]): int(r["n"]) for r in rows}
    first, last = lo // width, hi // width
    fmt = "%H:%M" if (hi - lo) < 86400 and width < 86400 else "%m-%d %H:%M"
    if width >= 86400:
        fmt = "%m-%d"
    return [(datetime.fromtimestamp(b * width, UTC).astimezone(tz).strftime(fmt),
             counts.get(b, 0)) for b in range(first, last + 1)]


# --------------------------------------------------------------------------- the list


@requires(access.CAMPAIGNS)
async def campaign_list(request: web.Request) -> web.Response:
    status = request.query.get("status", "")
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    rows = Campaign.all()
    if status in {s.value for s in CampaignStatus}:
        rows = rows.filter(status=status)
    else:
        status = ""
    total = await rows.count()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    campaigns = await rows.order_by("-id").offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    keys = [policy.occasion_key(c.id) for c in campaigns if c.launched_at is not None]
    sent: dict[str, int] = {}
    if keys:  # one aggregate for the whole page
        for row in await Touchpoint.filter(
                kind=policy.KIND, occasion_key__in=keys, status=TouchpointStatus.SENT,
        ).annotate(n=Count("id")).group_by("occasion_key").values("occasion_key", "n"):
            sent[str(row["occasion_key"])] = int(row["n"])
    progress = {c.id: (sent.get(policy.occasion_key(c.id), 0),
                       int((c.launch or {}).get("queued", 0))) for c in campaigns}
    return await render(request, "campaigns.html", campaigns=campaigns, progress=progress,
                        statuses=[s.value for s in CampaignStatus], status_filter=status,
                        page=page, pages=pages, total=total)


# --------------------------------------------------------------------------- the editor


async def _editor(request: web.Request, campaign: Campaign | None, form: dict[str, Any],
                  errors: dict[str, str] | None = None, status: int = 200,
                  notice_key: str = "", error_key: str = "") -> web.Response:
    models, tags = await _choices(request)
    chosen = [m for m in form.get("models", []) if m not in models]
    rules = _rules(request)
    staff = staff_of(request)
    scripts = console_of(request).services.scripts
    defaults = {kind: scripts.label(f"campaign_button_{kind}", staff.language)
                for kind in policy.BUTTON_KINDS}
    return await render(
        request, "campaign_editor.html", status=status, campaign=campaign, form=form,
        errors=errors or {}, models=sorted(models + chosen), known_tags=tags,
        button_kinds=policy.BUTTON_KINDS, button_slots=BUTTON_SLOTS,
        button_defaults=defaults, reasons=policy.EXCLUSION_REASONS,
        languages_served=LANGUAGES, lead_days=rules.event_lead_days,
        has_telegram=staff.telegram_id is not None, notice_key=notice_key,
        error_key=error_key, label_max=BUTTON_LABEL_MAX,
        action=f"/campaigns/{campaign.id}/edit" if campaign else "/campaigns/new",
    )


@requires(access.CAMPAIGNS)
async def new_form(request: web.Request) -> web.Response:
    return await _editor(request, None, {"marketer": staff_of(request).name})


@requires(access.CAMPAIGNS)
async def edit_form(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign_or_404(request)
    if campaign is None:
        return await _not_found(request)
    if campaign.status != CampaignStatus.DRAFT:
        raise web.HTTPSeeOther(f"/campaigns/{campaign.id}")
    notice = request.query.get("notice", "")
    notice_key = f"campaigns.notice.{notice}" if notice in (
        "saved", "created", "tested", "unschedule") else ""
    tz = console_of(request).services.settings.tz
    return await _editor(request, campaign, form_of(campaign, tz), notice_key=notice_key)


@requires(access.CAMPAIGNS)
async def create(request: web.Request) -> web.StreamResponse:
    return await _submit(request, None)


@requires(access.CAMPAIGNS)
async def update(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign_or_404(request)
    if campaign is None:
        return await _not_found(request)
    if campaign.status != CampaignStatus.DRAFT:
        return await _detail(request, campaign, status=409,
                             error_key="campaigns.err.not_draft")
    return await _submit(request, campaign)


async def _submit(request: web.Request, campaign: Campaign | None) -> web.StreamResponse:
    """Save the draft (new or edited), then schedule it or test-send it if asked."""
    services = console_of(request).services
    tz = services.settings.tz
    post = await request.post()
    action = str(post.get("action", "save"))
    form = form_values(post)
    t = _t(request)
    edited = await read_form(form, t, tz=tz, dealer=_dealer(request),
                             previous_buttons=campaign.buttons if campaign else None)
    if edited.errors:
        return await _editor(request, campaign, form, edited.errors, status=422,
                             error_key="campaigns.err.form")
    now = services.clock.now()
    assert edited.audience is not None
    send_at = edited.send_at.astimezone(UTC) if edited.send_at else None
    if campaign is None:
        try:
            campaign = await promotions.create_campaign(
                name=edited.name, messages=edited.messages, buttons=edited.buttons,
                audience=edited.audience.to_dict(), marketer=edited.marketer,
                event_date=edited.event_date, now=now, dealer=_dealer(request))
        except CampaignError as exc:  # a rule of promotions' the form does not know yet
            return await _editor(request, None, form, {"name": str(exc)}, status=422,
                                 error_key="campaigns.err.form")
        if send_at is not None:
            await Campaign.filter(id=campaign.id).update(send_at=send_at)
            campaign.send_at = send_at
        await _audit(request, "create", campaign.id, name=campaign.name)
        notice = "created"
    else:
        saved = await Campaign.filter(id=campaign.id, status=CampaignStatus.DRAFT).update(
            name=edited.name, marketer=edited.marketer, messages=edited.messages,
            buttons=edited.buttons, audience=edited.audience.to_dict(),
            event_date=edited.event_date, send_at=send_at, updated_at=now)
        if not saved:  # scheduled or launched meanwhile
            fresh = await Campaign.get(id=campaign.id)
            return await _detail(request, fresh, status=409,
                                 error_key="campaigns.err.not_draft")
        await _audit(request, "edit", campaign.id, name=edited.name)
        campaign = await Campaign.get(id=campaign.id)
        notice = "saved"
    if action == "schedule":
        return await _schedule(request, campaign, edited)
    if action == "test":
        return await _test_send(request, campaign, form)
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}/edit?notice={notice}")


async def _schedule(request: web.Request, campaign: Campaign,
                    edited: Edited) -> web.StreamResponse:
    """The send time, with the event rule: later than ``lead`` days before the event only
    with a reason, which is kept on the campaign and in the audit log."""
    services = console_of(request).services
    tz = services.settings.tz
    rules = _rules(request)
    t = _t(request)
    now = services.clock.now()
    send_at = max(edited.send_at or now, now)
    force = str(edited.form.get("force_reason", "")).strip()
    errors: dict[str, str] = {}
    if edited.send_at is not None and edited.send_at < now - PAST_GRACE:
        # A time typed in the past is a slip more often than "send now": say so, since a
        # campaign sent is not taken back (empty means now).
        errors["send_at"] = t("campaigns.err.send_at_past")
    elif campaign.event_date is not None:
        send_day = send_at.astimezone(tz).date()
        deadline = promotions.event_deadline(campaign.event_date, rules.event_lead_days)
        if campaign.event_date < send_day:
            errors["event_date"] = t("campaigns.err.event_past",
                                     event=campaign.event_date.isoformat())
        elif send_day > deadline and not force:
            errors["force_reason"] = t("campaigns.err.event_lead",
                                       event=campaign.event_date.isoformat(),
                                       deadline=deadline.isoformat(),
                                       days=rules.event_lead_days)
    if not errors:
        try:
            await promotions.schedule_campaign(campaign, send_at=send_at, now=now,
                                               rules=rules, force_reason=force)
        except CampaignError as exc:
            errors["send_at"] = t("campaigns.err.schedule", detail=str(exc))
    if errors:
        return await _editor(request, campaign, edited.form, errors, status=422,
                             error_key="campaigns.err.not_scheduled")
    await _audit(request, "schedule", campaign.id, send_at=send_at.isoformat(),
                 force_reason=campaign.force_reason)
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}?done=scheduled")


def _test_messages(services: Services, campaign: Campaign, name: str,
                   dealer: dict[str, str]) -> list[tuple[str, InlineKeyboardMarkup]]:
    """(text, keyboard) of the campaign in each of its languages, as an owner called ``name``
    would get it, marked as a test; raises what a broken template raises."""
    sample = content.sample_context(dealer)["vehicle"]
    vehicle = Vehicle(model=sample["model"], plate=sample["plate"])
    messages: list[tuple[str, InlineKeyboardMarkup]] = []
    for lang in [code for code in LANGUAGES if code in campaign.messages]:
        owner = Customer(name=name, language=lang)
        out = content.compose_campaign(campaign, owner, vehicle, services.scripts,
                                          services.settings)
        markup = keyboard(out.buttons)
        messages.append((services.scripts.label("campaign_test_prefix", lang) + out.text, markup))
    return messages


async def _test_send(request: web.Request, campaign: Campaign,
                     form: dict[str, Any]) -> web.StreamResponse:
    """The message, as an owner named like the staff member would get it, in each of the
    campaign's languages, to the staff member's own Telegram chat."""
    services = console_of(request).services
    staff = staff_of(request)
    t = _t(request)
    if staff.telegram_id is None:
        return await _editor(request, campaign, form, {"test": t("campaigns.err.no_telegram")},
                             status=422)
    try:
        messages = await render_off_loop(_test_messages, services, campaign, staff.name,
                                         _dealer(request))
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        return await _editor(request, campaign, form, {
            "test": t("campaigns.err.template", detail=str(exc))}, status=422)
    for text, markup in messages:
        if await services.sender.text(staff.telegram_id, text, lane=Lane.STAFF,
                                              parse_mode="HTML", reply_markup=markup) is None:
            # the sender logged why (and recorded it, unless the chat blocked the bot)
            log.warning("test message of campaign %s to %s not delivered", campaign.id,
                        staff.login)
            return await _editor(request, campaign, form, {
                "test": t("campaigns.err.test_failed", detail="not delivered")}, status=502)
    await _audit(request, "test", campaign.id, telegram_id=staff.telegram_id)
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}/edit?notice=tested")


# --------------------------------------------------------------------------- live count/preview


def _json_errors(errors: dict[str, str], checked: tuple[str, ...]) -> web.Response:
    return web.json_response({"ok": False, "errors": errors, "checked": list(checked)},
                             status=422)


async def _due(request: web.Request, edited: Edited) -> datetime:
    now = console_of(request).services.clock.now()
    return promotions.due_time(edited.send_at or now, now, _rules(request))


@requires(access.CAMPAIGNS)
async def count(request: web.Request) -> web.Response:
    """The audience of the form as it is now: targeted, excluded by reason, eligible."""
    services = console_of(request).services
    form = form_values(await request.post())
    edited = await read_form(form, _t(request), tz=services.settings.tz,
                             dealer=_dealer(request), checks=COUNT_CHECKS)
    if edited.errors or edited.audience is None:
        return _json_errors(edited.errors, COUNT_CHECKS)
    _, counted = await audiences.classify(
        edited.audience, now=services.clock.now(), due=await _due(request, edited),
        rules=_rules(request), campaign_id=_campaign_id(form))
    return web.json_response({"ok": True, "errors": {}, "checked": list(COUNT_CHECKS),
                              **counted.to_dict()})


def _campaign_id(form: dict[str, Any]) -> int | None:
    raw = str(form.get("campaign_id", ""))
    return int(raw) if raw.isdecimal() and len(raw) < 10 else None


@requires(access.CAMPAIGNS)
async def preview(request: web.Request) -> web.Response:
    """The message rendered for three real owners who would receive it (in their language),
    with its buttons; a template that does not render says why, next to its field."""
    services = console_of(request).services
    form = form_values(await request.post())
    t = _t(request)
    edited = await read_form(form, t, tz=services.settings.tz, dealer=_dealer(request),
                             checks=PREVIEW_CHECKS, require_message=False)
    if edited.errors or edited.audience is None:
        return _json_errors(edited.errors, PREVIEW_CHECKS)
    if "zh_CN" not in edited.messages:  # nothing written yet: nothing to preview
        return web.json_response({"ok": True, "errors": {}, "checked": list(PREVIEW_CHECKS),
                                  "samples": None})
    draft = Campaign(name=edited.name or "-", messages=edited.messages,
                     buttons=edited.buttons, audience=edited.audience.to_dict(),
                     event_date=edited.event_date, send_at=edited.send_at)
    draft.id = _campaign_id(form)  # type: ignore[assignment]
    try:
        result = await promotions.preview(draft, now=services.clock.now(), rules=_rules(request),
                                          scripts=services.scripts, settings=services.settings)
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        return web.json_response({
            "ok": False, "checked": list(PREVIEW_CHECKS), "errors": {},
            "error": t("campaigns.preview.error", detail=str(exc) or exc.__class__.__name__)},
            status=422)
    samples = [{"name": s["name"], "language": t(f"language.{s['language']}"),
                "text": plain_text(s["text"]), "buttons": s["buttons"]}
               for s in result["samples"]]
    return web.json_response({"ok": True, "errors": {}, "checked": list(PREVIEW_CHECKS),
                              "samples": samples, "eligible": result["eligible"]})


# --------------------------------------------------------------------------- one campaign


async def _detail(request: web.Request, campaign: Campaign, status: int = 200,
                  error_key: str = "", notice_key: str = "") -> web.Response:
    t = _t(request)
    tz = console_of(request).services.settings.tz
    stats = await promotions.stats(campaign)
    launched = campaign.launched_at is not None
    chart = timeline = None
    buckets: list[tuple[str, int]] = []
    if launched:
        bars = [(k, t(f"campaigns.stat.{k}"), int(stats[k]))
                for k in ("sent", "failed", "unreachable", "pending", "held")]
        bars += [(k, t(f"campaigns.press.{k}"), int(stats["pressed"].get(k, 0)))
                 for k in ("interested", "book", "unsubscribe")]
        chart = bar_chart(bars, title=t("campaigns.chart.results"), chart_id="chart-results")
        buckets = await sends_over_time(campaign.id, tz)
        if buckets:
            timeline = time_chart(buckets, title=t("campaigns.chart.timeline"),
                                  chart_id="chart-timeline")
    queued = int(stats.get("queued", 0))
    share = stats["sent"] / queued if queued else None
    return await render(
        request, "campaign.html", status=status, campaign=campaign, stats=stats,
        launched=launched, chart=chart, timeline=timeline, share=share,
        reasons=policy.EXCLUSION_REASONS, error_key=error_key, notice_key=notice_key,
        can_pause=campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING),
        can_resume=campaign.status == CampaignStatus.PAUSED,
        can_cancel=campaign.status in (CampaignStatus.DRAFT, *RUNNING),
        can_unschedule=campaign.status == CampaignStatus.SCHEDULED,
        audience=sorted((campaign.audience or {}).items()),
        messages=[(code, campaign.messages[code]) for code in LANGUAGES
                  if code in campaign.messages],
    )


@requires(access.CAMPAIGNS)
async def show(request: web.Request) -> web.Response:
    campaign = await _campaign_or_404(request)
    if campaign is None:
        return await _not_found(request)
    done = request.query.get("done", "")
    # The notice of an action, while the campaign is still as the action left it (not once
    # a scheduled campaign has since sent and finished, say).
    notice_key = f"campaigns.notice.{done}" if campaign.status in AFTER.get(done, ()) else ""
    return await _detail(request, campaign, notice_key=notice_key)


@requires(access.CAMPAIGNS)
async def transition(request: web.Request) -> web.StreamResponse:
    """Pause, resume, cancel (promotions), or take a scheduled campaign back to draft."""
    campaign = await _campaign_or_404(request)
    if campaign is None:
        return await _not_found(request)
    action = request.match_info["action"]
    now = console_of(request).services.clock.now()
    affected = 0
    try:
        if action == "unschedule":
            # Only while nothing is written: the launch claims scheduled -> sending the
            # same way, so exactly one of the two wins.
            affected = await Campaign.filter(id=campaign.id,
                                             status=CampaignStatus.SCHEDULED).update(
                status=CampaignStatus.DRAFT, scheduled_at=None, force_reason="",
                updated_at=now)
            if not affected:
                raise CampaignError("not scheduled")
        else:
            affected = await getattr(promotions, action)(campaign, now=now)
    except CampaignError as exc:
        log.info("campaign %s: %s refused: %s", campaign.id, action, exc)
        return await _detail(request, await Campaign.get(id=campaign.id), status=409,
                             error_key=f"campaigns.err.cannot_{action}")
    await _audit(request, action, campaign.id, messages=affected)
    if action == "unschedule":
        raise web.HTTPSeeOther(f"/campaigns/{campaign.id}/edit?notice=unschedule")
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}?done={action}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/campaigns", campaign_list)
    router.add_get("/campaigns/new", new_form)
    router.add_post("/campaigns/new", create)
    router.add_post("/campaigns/count", count)
    router.add_post("/campaigns/preview", preview)
    router.add_get(r"/campaigns/{id:\d{1,9}}", show)
    router.add_get(r"/campaigns/{id:\d{1,9}}/edit", edit_form)
    router.add_post(r"/campaigns/{id:\d{1,9}}/edit", update)
    actions = "|".join(TRANSITIONS)
    router.add_post(r"/campaigns/{id:\d{1,9}}/{action:(?:" + actions + ")}", transition)

