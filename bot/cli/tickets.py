"""``carebot staff …``, ``carebot ticket show``, ``carebot complaints report`` (also
``carebot report complaints --month|--week|--from/--to``, dispatched here by bot.cli.report).

Staff identity is the Telegram user id an admin registers here; display names are only for
signatures and mentions.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import re
import sys
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.expressions import F

from bot.cli.database import database
from bot.cli.say import fail, say, t, words
from bot.clock import SystemClock
from bot.config import Settings
from bot.tickets import complaint_stats, facts_between, parse_number
from bot.web.console import hash_password
from bot.web.console.pages.tickets import reason_text
from bot.web.console.signin import unlock
from db.models import Customer, Staff, StaffRole, Ticket, TicketEvent, TicketMessage, Vehicle

ROLES = ("agent", "advisor", "supervisor", "manager", "marketing", "admin")


def add_commands(sub: Any) -> None:
    staff = sub.add_parser("staff", help="staff: Telegram ids for tickets, console sign-in")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="add or update a staff member (by Telegram id, "
                                           "or by console login)")
    add.add_argument("--telegram-id", type=int, default=None)
    add.add_argument("--login", default=None, help="console sign-in name")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--language", choices=("zh_CN", "en"), default=None,
                     help="console interface language")
    add.set_defaults(run=cmd_staff_add)
    staff_sub.add_parser("list", help="list staff").set_defaults(run=cmd_staff_list)
    remove = staff_sub.add_parser("remove", help="deactivate a staff member (kept for history)")
    remove.add_argument("--telegram-id", type=int, default=None)
    remove.add_argument("--login", default=None)
    remove.set_defaults(run=cmd_staff_remove)
    passwd = staff_sub.add_parser("passwd", help="set a console password (asked twice, or "
                                                 "one line on stdin with --stdin)")
    passwd.add_argument("login")
    passwd.add_argument("--stdin", action="store_true", help="read the password from stdin")
    passwd.set_defaults(run=cmd_staff_passwd)
    unlock = staff_sub.add_parser("unlock", help="lift a console sign-in lock")
    unlock.add_argument("login")
    unlock.set_defaults(run=cmd_staff_unlock)

    ticket = sub.add_parser("ticket", help="complaint tickets")
    ticket_sub = ticket.add_subparsers(dest="ticket_command", required=True)
    show = ticket_sub.add_parser("show", help="a ticket with its whole history")
    show.add_argument("number", help="T-0042 (or 42)")
    show.set_defaults(run=cmd_ticket_show)

    complaints = sub.add_parser("complaints", help="complaint statistics")
    complaints_sub = complaints.add_subparsers(dest="complaints_command", required=True)
    report = complaints_sub.add_parser("report", help="a month's complaints: counts, times, "
                                                      "breaches, reopen rate")
    report.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.set_defaults(run=cmd_complaints_report)


def _month(value: str) -> date:
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise argparse.ArgumentTypeError(t("complaints.not_a_month", value=repr(value)))
    return date(int(m.group(1)), int(m.group(2)), 1)


async def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    if args.telegram_id is None and not args.login:
        fail("staff add", "staff.add_who")
        return 2
    defaults: dict[str, Any] = {"name": args.name, "role": StaffRole(args.role), "active": True}
    if args.language:
        defaults["language"] = args.language
    async with database(settings):
        key = {"telegram_id": args.telegram_id} if args.telegram_id is not None \
            else {"login": args.login}
        if args.telegram_id is not None and args.login:
            defaults["login"] = args.login
        inactive = await Staff.filter(**key, active=False).exists()
        staff, created = await Staff.update_or_create(**key, defaults=defaults)
        if inactive:  # activated again: its sessions from before stay ended
            await Staff.filter(id=staff.id).update(session_epoch=F("session_epoch") + 1)
    say("staff.added" if created else "staff.updated", name=staff.name,
        role=words()(f"role.{staff.role}"), telegram_id=staff.telegram_id or "-",
        login=staff.login or "-")
    if staff.login and not staff.password_hash:
        say("staff.set_password", login=staff.login)
    return 0


async def cmd_staff_list(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings):
        rows = await Staff.all().order_by("role", "name")
    if not rows:
        say("staff.none")
        return 0
    for s in rows:
        print(f"{s.telegram_id or '-':>14}  {s.login or '-':<14}  {s.role:<10}  "
              f"{t('staff.active') if s.active else t('staff.removed')}  {s.name}")
    return 0


async def cmd_staff_remove(settings: Settings, args: argparse.Namespace) -> int:
    if args.telegram_id is None and not args.login:
        fail("staff remove", "staff.remove_who")
        return 2
    who = t("staff.by_telegram_id", id=args.telegram_id) if args.telegram_id is not None \
        else t("staff.by_login", login=args.login)
    async with database(settings):
        rows = Staff.filter(telegram_id=args.telegram_id) if args.telegram_id is not None \
            else Staff.filter(login=args.login)
        n = await rows.update(active=False, session_epoch=F("session_epoch") + 1)
    if not n:
        fail("staff remove", "staff.no_such", who=who)
        return 1
    say("staff.removed_done", who=who)
    return 0


MIN_PASSWORD = 10


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():  # getpass would fall back to a warning and an EOF traceback
        fail("staff passwd", "staff.no_terminal")
        return None
    first = getpass.getpass(t("staff.new_password"))
    if getpass.getpass(t("staff.again")) != first:
        fail("staff passwd", "staff.passwords_differ")
        return None
    return first


async def cmd_staff_passwd(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password(args.stdin)
    if password is None:
        return 1
    if len(password) < MIN_PASSWORD:
        fail("staff passwd", "staff.too_short", n=MIN_PASSWORD)
        return 2
    async with database(settings):
        n = await Staff.filter(login=args.login).update(password_hash=hash_password(password))
        if n:  # a new password works at once, lock or not
            await unlock(settings, args.login, SystemClock().now())
    if not n:
        fail("staff passwd", "staff.no_login", login=args.login)
        return 1
    say("staff.password_set", login=args.login)
    return 0


async def cmd_staff_unlock(settings: Settings, args: argparse.Namespace) -> int:
    """Lift a console sign-in lock (the recovery when someone keeps an admin locked out:
    docs/security.md); the login's failed attempts count afresh from now."""
    async with database(settings):
        n = await unlock(settings, args.login, SystemClock().now())
    if not n:
        fail("staff unlock", "staff.no_login_unlock", login=args.login)
        return 1
    say("staff.unlocked", login=args.login)
    return 0


def _fmt(when: datetime | None, settings: Settings) -> str:
    return when.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if when else "-"


async def cmd_ticket_show(settings: Settings, args: argparse.Namespace) -> int:
    raw = args.number.strip()
    ticket_id = int(raw) if raw.isdigit() else parse_number(raw)
    if ticket_id is None:
        fail("ticket show", "ticket.not_a_number", value=repr(raw))
        return 2
    async with database(settings):
        ticket = await Ticket.get_or_none(id=ticket_id)
        if ticket is None:
            fail("ticket show", "ticket.no_such", number=raw)
            return 1
        customer = await Customer.get(id=ticket.customer_id)
        vehicle = await Vehicle.get_or_none(id=ticket.vehicle_id) if ticket.vehicle_id else None
        handler = await Staff.get_or_none(id=ticket.handler_id) if ticket.handler_id else None
        events = await TicketEvent.filter(ticket_id=ticket.id).order_by("created_at", "id") \
            .select_related("actor")
        messages = await TicketMessage.filter(ticket_id=ticket.id).order_by("created_at", "id") \
            .select_related("staff")

    def f(when: datetime | None) -> str:
        return _fmt(when, settings)

    w = words()
    state = w.get(f"tickets.state.{ticket.state}", str(ticket.state))
    say("ticket.head", number=ticket.number, state=state, level=w(f"level.{ticket.level}"),
        major=t("ticket.major") if ticket.major else "",
        channel=w.get(f"tickets.channel.{ticket.channel}", str(ticket.channel)),
        category=w.get(f"tickets.category.{ticket.category}", str(ticket.category)))
    say("ticket.owner", name=customer.name, phone=customer.phone)
    if vehicle:
        say("ticket.vehicle", model=vehicle.model, plate=vehicle.plate, vin=vehicle.vin)
    say("ticket.handler", who=t("ticket.staff_role", name=handler.name,
                                role=w(f"role.{handler.role}")) if handler else "-")
    say("ticket.opened", when=f(ticket.created_at))
    say("ticket.first_answer", due=f(ticket.first_answer_due), given=f(ticket.first_answered_at))
    say("ticket.handler_due", due=f(ticket.handler_answer_due), resolved=f(ticket.resolved_at))
    running = w.get(f"tickets.due_kind.{ticket.due_kind}", ticket.due_kind or "-")
    say("ticket.running", kind=running, due=f(ticket.due_at), breaches=ticket.breaches,
        reopened=ticket.reopen_count)
    say("ticket.problem", text=ticket.description)
    if ticket.resolution:
        say("ticket.resolution", text=ticket.resolution)
        say("ticket.improvement", text=ticket.improvement or "-")
    if ticket.handling_score is not None:
        say("ticket.rated", score=ticket.handling_score, closed=f(ticket.closed_at))
    say("ticket.events")
    for e in events:
        actor = e.actor.name if e.actor else t("ticket.system")
        extra = f"  [{reason_text(w, e.reason)}]" if e.reason else ""
        kind = w.get(f"tickets.event.{e.kind}", e.kind)
        print(f"  {f(e.created_at)}  {kind:<9} {actor:<12} {e.text[:100]}{extra}")
    say("ticket.messages")
    for m in messages:
        staff_name = m.staff.name if m.staff else t("ticket.staff")
        who = {"in": customer.name, "out": staff_name,
               "note": t("ticket.note_by", name=staff_name)}.get(m.direction, "")
        body = m.text or (t("ticket.photo") if m.photo_file_id else "")
        pending = "" if m.relayed_at else t("ticket.not_relayed")
        print(f"  {f(m.created_at)}  {who}: {body}{pending}")
    return 0


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    return t("complaints.duration", hours=minutes // 60, minutes=f"{minutes % 60:02d}")


async def cmd_complaints_report(settings: Settings, args: argparse.Namespace) -> int:
    first: date = args.month
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return await complaints_report(settings, first, nxt, f"{first:%Y-%m}",
                                   getattr(args, "format", "table"))


async def complaints_report(settings: Settings, start_day: date, end_day: date, label: str,
                            fmt: str = "table") -> int:
    """The complaints of local days [start_day, end_day): ``complaints report`` and
    ``report complaints`` print the same."""
    tz = settings.tz
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=tz)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
    async with database(settings):
        stats = complaint_stats(await facts_between(start, end))
    rate = stats.reopen_rate
    if fmt in ("csv", "json"):
        row: dict[str, Any] = {
            "period": label, "opened": stats.total,
            **{f"category_{k}": v for k, v in (stats.by_category or {}).items()},
            **{f"level_{k}": v for k, v in (stats.by_level or {}).items()},
            "median_first_answer_minutes": _minutes(stats.median_first_answer),
            "median_resolution_minutes": _minutes(stats.median_resolution),
            "breaches": stats.breaches, "tickets_breached": stats.tickets_breached,
            "reopened": stats.reopened, "reopen_rate": rate, "closed": stats.closed,
        }
        if fmt == "json":
            print(json.dumps(row, ensure_ascii=False, indent=2))
        else:
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
            print(out.getvalue(), end="")
        return 0
    w = words()
    comma = ", " if w.lang == "en" else "，"
    say("complaints.opened", period=label, n=stats.total)
    say("complaints.by_category", counts=comma.join(
        f"{w.get(f'tickets.category.{k}', k)} {v}" for k, v in (stats.by_category or {}).items()))
    say("complaints.by_level", counts=comma.join(
        f"{w.get(f'level.{k}', k)} {v}" for k, v in (stats.by_level or {}).items()))
    say("complaints.median_first_answer", duration=_duration(stats.median_first_answer))
    say("complaints.median_resolution", duration=_duration(stats.median_resolution))
    say("complaints.breaches", n=stats.breaches, tickets=stats.tickets_breached)
    say("complaints.reopened", n=stats.reopened, rate=f"{rate or 0:.0%}")
    say("complaints.closed", n=stats.closed)
    return 0


def _minutes(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds() // 60)
