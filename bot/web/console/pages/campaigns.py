"""Campaigns (marketing and admin): the list, the editor with a live audience count and a
live preview for real owners, scheduling with the event-date rule, and test-send. One
campaign's progress, results and actions are in :mod:`.campaign_detail`, the form and the
helpers the pages share in :mod:`.campaign_form`.

Thin over :mod:`bot.campaigns.promotions` (only its public functions): the form is checked
field by field with the same parsers the CLI and the API use, so an error shows next to its
field and everything typed is shown again. Campaigns are the dealership's, not one
advisor's: whoever holds the ``campaigns`` permission sees them all (no customer scope;
the preview shows a sample owner's name and language, never a phone).
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from jinja2 import TemplateError
from tortoise.functions import Count

from bot.campaigns import audiences, content, policy, promotions
from bot.campaigns.policy import CampaignError
from bot.delivery.limits import Lane
from bot.keyboards import keyboard
from bot.templating import render_off_loop
from bot.texts import LANGUAGES
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.pages.campaign_detail import detail
from bot.web.console.pages.campaign_form import (
    BUTTON_LABEL_MAX,
    BUTTON_SLOTS,
    COUNT_CHECKS,
    PAST_GRACE,
    PREVIEW_CHECKS,
    Edited,
    audit,
    campaign_or_none,
    choices,
    dealer_of,
    form_of,
    form_values,
    not_found,
    plain_text,
    read_form,
    rules_of,
    translator,
)
from db.models import (
    Campaign,
    CampaignStatus,
    Touchpoint,
    TouchpointStatus,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50


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
    models, tags = await choices(request)
    chosen = [m for m in form.get("models", []) if m not in models]
    rules = rules_of(request)
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
    campaign = await campaign_or_none(request)
    if campaign is None:
        return await not_found(request)
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
    campaign = await campaign_or_none(request)
    if campaign is None:
        return await not_found(request)
    if campaign.status != CampaignStatus.DRAFT:
        return await detail(request, campaign, status=409,
                             error_key="campaigns.err.not_draft")
    return await _submit(request, campaign)


async def _submit(request: web.Request, campaign: Campaign | None) -> web.StreamResponse:
    """Save the draft (new or edited), then schedule it or test-send it if asked."""
    services = console_of(request).services
    tz = services.settings.tz
    post = await request.post()
    action = str(post.get("action", "save"))
    form = form_values(post)
    t = translator(request)
    edited = await read_form(form, t, tz=tz, dealer=dealer_of(request),
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
                event_date=edited.event_date, now=now, dealer=dealer_of(request))
        except CampaignError as exc:  # a rule of promotions' the form does not know yet
            return await _editor(request, None, form, {"name": str(exc)}, status=422,
                                 error_key="campaigns.err.form")
        if send_at is not None:
            await Campaign.filter(id=campaign.id).update(send_at=send_at)
            campaign.send_at = send_at
        await audit(request, "create", campaign.id, name=campaign.name)
        notice = "created"
    else:
        saved = await Campaign.filter(id=campaign.id, status=CampaignStatus.DRAFT).update(
            name=edited.name, marketer=edited.marketer, messages=edited.messages,
            buttons=edited.buttons, audience=edited.audience.to_dict(),
            event_date=edited.event_date, send_at=send_at, updated_at=now)
        if not saved:  # scheduled or launched meanwhile
            fresh = await Campaign.get(id=campaign.id)
            return await detail(request, fresh, status=409,
                                 error_key="campaigns.err.not_draft")
        await audit(request, "edit", campaign.id, name=edited.name)
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
    rules = rules_of(request)
    t = translator(request)
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
    if not errors and edited.form.get("confirmed") == "1":
        try:
            await promotions.schedule_campaign(campaign, send_at=send_at, now=now,
                                               rules=rules, force_reason=force)
        except CampaignError as exc:
            errors["send_at"] = t("campaigns.err.schedule", detail=str(exc))
    if errors:
        return await _editor(request, campaign, edited.form, errors, status=422,
                             error_key="campaigns.err.not_scheduled")
    if edited.form.get("confirmed") != "1":
        return await _confirm(request, campaign, edited, send_at)
    await audit(request, "schedule", campaign.id, send_at=send_at.isoformat(),
                 force_reason=campaign.force_reason)
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}?done=scheduled")


async def _confirm(request: web.Request, campaign: Campaign, edited: Edited,
                   send_at: datetime) -> web.Response:
    """Before anything is scheduled: the final audience at the send time, who is left out
    and why, and how many would get a language the campaign has no text in (issue 18)."""
    services = console_of(request).services
    now = services.clock.now()
    assert edited.audience is not None
    rules = rules_of(request)
    remaining, counted = await audiences.classify(
        edited.audience, now=now, due=promotions.due_time(send_at, now, rules), rules=rules,
        campaign_id=campaign.id)
    no_text = await remaining.exclude(language__in=list(campaign.messages)).count()
    hidden = [(key, value) for key, values in sorted(edited.form.items())
              for value in (values if isinstance(values, list) else [values])
              if key != "confirmed"]
    return await render(
        request, "campaign_confirm.html", campaign=campaign, counted=counted,
        reasons=policy.EXCLUSION_REASONS, no_text=no_text, hidden=hidden,
        send_at=send_at, languages=[code for code in LANGUAGES if code in campaign.messages],
        action=f"/campaigns/{campaign.id}/edit")


async def _test_send(request: web.Request, campaign: Campaign,
                     form: dict[str, Any]) -> web.StreamResponse:
    """The message, as an owner named like the staff member would get it, in each of the
    campaign's languages, to the staff member's own Telegram chat."""
    services = console_of(request).services
    staff = staff_of(request)
    t = translator(request)
    if staff.telegram_id is None:
        return await _editor(request, campaign, form, {"test": t("campaigns.err.no_telegram")},
                             status=422)
    try:
        messages = await render_off_loop(content.trial_messages, campaign, staff.name,
                                         services.settings, services.scripts,
                                         every_language=True)
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        return await _editor(request, campaign, form, {
            "test": t("campaigns.err.template", detail=str(exc))}, status=422)
    for message in messages:
        if await services.sender.text(staff.telegram_id, message.text, lane=Lane.STAFF,
                                      parse_mode="HTML",
                                      reply_markup=keyboard(message.buttons)) is None:
            # the sender logged why (and recorded it, unless the chat blocked the bot)
            log.warning("test message of campaign %s to %s not delivered", campaign.id,
                        staff.login)
            return await _editor(request, campaign, form, {
                "test": t("campaigns.err.test_failed", detail="not delivered")}, status=502)
    await audit(request, "test", campaign.id, telegram_id=staff.telegram_id)
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}/edit?notice=tested")


# --------------------------------------------------------------------------- live count/preview


def _json_errors(errors: dict[str, str], checked: tuple[str, ...]) -> web.Response:
    return web.json_response({"ok": False, "errors": errors, "checked": list(checked)},
                             status=422)


async def _due(request: web.Request, edited: Edited) -> datetime:
    now = console_of(request).services.clock.now()
    return promotions.due_time(edited.send_at or now, now, rules_of(request))


@requires(access.CAMPAIGNS)
async def count(request: web.Request) -> web.Response:
    """The audience of the form as it is now: targeted, excluded by reason, eligible."""
    services = console_of(request).services
    form = form_values(await request.post())
    edited = await read_form(form, translator(request), tz=services.settings.tz,
                             dealer=dealer_of(request), checks=COUNT_CHECKS)
    if edited.errors or edited.audience is None:
        return _json_errors(edited.errors, COUNT_CHECKS)
    _, counted = await audiences.classify(
        edited.audience, now=services.clock.now(), due=await _due(request, edited),
        rules=rules_of(request), campaign_id=_campaign_id(form))
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
    t = translator(request)
    edited = await read_form(form, t, tz=services.settings.tz, dealer=dealer_of(request),
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
        result = await promotions.preview(draft, now=services.clock.now(), rules=rules_of(request),
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


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/campaigns", campaign_list)
    router.add_get("/campaigns/new", new_form)
    router.add_post("/campaigns/new", create)
    router.add_post("/campaigns/count", count)
    router.add_post("/campaigns/preview", preview)
    router.add_get(r"/campaigns/{id:\d{1,9}}/edit", edit_form)
    router.add_post(r"/campaigns/{id:\d{1,9}}/edit", update)

