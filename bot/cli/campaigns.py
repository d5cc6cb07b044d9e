"""``carebot campaign create|preview|test|schedule|pause|resume|cancel|stats|list|audience``
and ``carebot tag add|remove PHONE TAG``. See docs/campaigns.md."""

from __future__ import annotations

import argparse
import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from bot.campaigns import audiences, content, policy, promotions
from bot.cli.database import database, scripts
from bot.cli.reach import telegram
from bot.cli.say import fail, say, t, words
from bot.clock import SystemClock
from bot.config import Settings
from bot.delivery.failures import Failures
from bot.delivery.limits import Lane, Limits
from bot.delivery.sender import Sender
from bot.keyboards import keyboard
from bot.owners import phone_to_e164
from bot.templating import render_off_loop
from db.models import Campaign, Staff


def _now() -> datetime:
    return SystemClock().now()


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def load_spec(path: Path) -> dict[str, Any]:
    """A campaign definition file (.toml or .json): name, messages, buttons, audience, ..."""
    text = path.read_text(encoding="utf-8")
    data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(t("campaign.not_a_table"))
    return data


def parse_local(value: str, settings: Settings) -> datetime:
    """'YYYY-MM-DD HH:MM' in the dealership's time zone (or an ISO time with its offset)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(t("campaign.not_a_time", value=repr(value))) from None
    return when if when.tzinfo else when.replace(tzinfo=settings.tz)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        async with database(settings):
            return await _run(settings, args)
    except (policy.CampaignError, ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        fail("campaign", "campaign.refused", why=exc)
        return 1
    except (TemplateError, ArithmeticError, LookupError, TypeError) as exc:
        # a campaign saved before today's checks that no longer renders (preview, test)
        fail("campaign", "campaign.does_not_render", why=exc)
        return 1


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    """One ``carebot campaign`` action, the database open."""
    rules = policy.campaign_rules(settings)
    action = args.action
    now = _now()
    if action == "tag":
        phone = phone_to_e164(args.phone)
        if phone is None:
            raise policy.CampaignError(t("campaign.not_a_phone", phone=repr(args.phone)))
        if args.tag_action == "add":
            done = await promotions.add_tag(phone, args.tag, now=now)
        else:
            done = await promotions.remove_tag(phone, args.tag)
        say("campaign.tag_done" if done else "campaign.tag_unchanged", phone=phone, tag=args.tag)
    elif action == "create":
        spec = load_spec(args.file)
        campaign = await promotions.create_campaign(
            name=spec.get("name", ""), messages=spec.get("messages", {}),
            buttons=spec.get("buttons"), audience=spec.get("audience"),
            marketer=str(spec.get("marketer", "")), event_date=spec.get("event_date"),
            now=now, dealer={"name": settings.dealer_name, "phone": settings.dealer_phone},
        )
        say("campaign.created", id=campaign.id, name=campaign.name)
    elif action == "list":
        for c in await Campaign.all().order_by("-id"):
            send = f"{c.send_at.astimezone(settings.tz):%Y-%m-%d %H:%M}" if c.send_at else "-"
            status = words().get(f"campaigns.status.{c.status}", str(c.status))
            print(f"{c.id:>5}  {status:<10} {send:<16}  {c.name}")
    elif action == "audience":
        audience = audiences.parse_audience(json.loads(args.filters))
        _print((await audiences.count_audience(audience, now=now, rules=rules)).to_dict())
    else:
        campaign = await promotions.get_campaign(args.id)
        return await _on_campaign(settings, args, campaign, now=now, rules=rules)
    return 0


async def _on_campaign(settings: Settings, args: argparse.Namespace, campaign: Campaign, *,
                       now: datetime, rules: policy.CampaignRules) -> int:
    """An action on one campaign: preview, test, schedule, pause, resume, cancel, stats."""
    action = args.action
    if action == "preview":
        _print(await promotions.preview(campaign, now=now, rules=rules,
                                        scripts=await scripts(settings),
                                        settings=settings))
    elif action == "test":
        return await _test_send(settings, campaign, args.staff)
    elif action == "schedule":
        at = parse_local(args.at, settings) if args.at else now
        await promotions.schedule_campaign(campaign, send_at=at, now=now, rules=rules,
                                           force_reason=args.force or "")
        when = f"{campaign.send_at.astimezone(settings.tz):%Y-%m-%d %H:%M}"  # type: ignore[union-attr]
        say("campaign.scheduled_forced" if campaign.force_reason else "campaign.scheduled",
            id=campaign.id, when=when, reason=campaign.force_reason)
    elif action == "pause":
        say("campaign.paused", id=campaign.id, n=await promotions.pause(campaign, now=now))
    elif action == "resume":
        say("campaign.resumed", id=campaign.id, n=await promotions.resume(campaign, now=now))
    elif action == "cancel":
        say("campaign.cancelled", id=campaign.id, n=await promotions.cancel(campaign, now=now))
    elif action == "stats":
        await promotions.finish_done(now=now)
        _print(await promotions.stats(await promotions.get_campaign(args.id)))
    return 0


async def _test_send(settings: Settings, campaign: Any, staff_ref: str) -> int:
    """Send the campaign, as an owner would see it, to a staff member's own chat."""
    staff = await (Staff.get_or_none(telegram_id=int(staff_ref)) if staff_ref.lstrip("-").isdigit()
                   else Staff.filter(name=staff_ref).first())
    if staff is None or staff.telegram_id is None:
        fail("campaign", "campaign.no_staff", staff=repr(staff_ref))
        return 1
    if not settings.has_token:
        fail("campaign", "campaign.no_token")
        return 1
    [message] = await render_off_loop(content.trial_messages, campaign, staff.name, settings,
                                      await scripts(settings))
    async with telegram(settings) as bot:  # one line and exit 2 when Telegram is unreachable
        sender = Sender(bot, Limits(settings.send_rate), deadline=settings.reply_deadline,
                        record_failure=Failures(SystemClock()).record)
        sent = await sender.text(staff.telegram_id, message.text, lane=Lane.STAFF,
                                         parse_mode="HTML",
                                         reply_markup=keyboard(message.buttons))
    if sent is None:  # the sender logged why
        fail("campaign", "campaign.test_not_delivered", name=staff.name)
        return 1
    say("campaign.test_sent", name=staff.name)
    return 0


def add_commands(sub: Any) -> None:
    camp = sub.add_parser("campaign", help="marketing campaigns (docs/campaigns.md)")
    actions = camp.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a draft from a .toml/.json file")
    create.add_argument("file", type=Path)
    actions.add_parser("list", help="every campaign with its status")
    aud = actions.add_parser("audience", help="count an audience: JSON filters")
    aud.add_argument("filters", help='e.g. \'{"models": ["星辰 S7"], "min_visits": 2}\'')
    for name, text in (("preview", "count the audience and render for three owners"),
                       ("pause", "hold every message not yet sent"),
                       ("resume", "send the held messages"),
                       ("cancel", "stop every message not yet sent"),
                       ("stats", "results: targeted, excluded, sent, presses, ...")):
        actions.add_parser(name, help=text).add_argument("id", type=int)
    test = actions.add_parser("test", help="send it to a staff member's own chat")
    test.add_argument("id", type=int)
    test.add_argument("staff", help="staff name or Telegram id")
    sched = actions.add_parser("schedule", help="schedule at a local time (default now)")
    sched.add_argument("id", type=int)
    sched.add_argument("--at", help="'YYYY-MM-DD HH:MM' local time")
    sched.add_argument("--force", help="reason to send later than 14 days before the event")
    camp.set_defaults(run=run)
    tag = sub.add_parser("tag", help="tag owners for campaign audiences")
    tag_actions = tag.add_subparsers(dest="tag_action", required=True)
    for name in ("add", "remove"):
        p = tag_actions.add_parser(name)
        p.add_argument("phone")
        p.add_argument("tag")
    tag.set_defaults(run=run, action="tag")
