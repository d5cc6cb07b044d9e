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
from bot.clock import SystemClock
from bot.config import Settings
from bot.tickets import complaint_stats, facts_between, parse_number
from bot.web.console import hash_password
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
        raise argparse.ArgumentTypeError(f"{value!r} is not a month; use YYYY-MM, e.g. 2026-11")
    return date(int(m.group(1)), int(m.group(2)), 1)


async def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    if args.telegram_id is None and not args.login:
        print("carebot staff add: give --telegram-id (to act on tickets in Telegram), "
              "--login (to sign in to the console), or both", file=sys.stderr)
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
    print(f"{'added' if created else 'updated'}: {staff.name} ({staff.role}), "
          f"Telegram id {staff.telegram_id or '-'}, login {staff.login or '-'}")
    if staff.login and not staff.password_hash:
        print(f"set a console password: carebot staff passwd {staff.login}")
    return 0


async def cmd_staff_list(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings):
        rows = await Staff.all().order_by("role", "name")
    if not rows:
        print("no staff registered; add one: carebot staff add --telegram-id N --name X "
              "--role agent")
        return 0
    for s in rows:
        print(f"{s.telegram_id or '-':>14}  {s.login or '-':<14}  {s.role:<10}  "
              f"{'active ' if s.active else 'removed'}  {s.name}")
    return 0


async def cmd_staff_remove(settings: Settings, args: argparse.Namespace) -> int:
    if args.telegram_id is None and not args.login:
        print("carebot staff remove: give --telegram-id or --login", file=sys.stderr)
        return 2
    who = f"Telegram id {args.telegram_id}" if args.telegram_id is not None \
        else f"login {args.login}"
    async with database(settings):
        rows = Staff.filter(telegram_id=args.telegram_id) if args.telegram_id is not None \
            else Staff.filter(login=args.login)
        n = await rows.update(active=False, session_epoch=F("session_epoch") + 1)
    if not n:
        print(f"carebot staff remove: no staff with {who}", file=sys.stderr)
        return 1
    print(f"removed: {who} can no longer act on tickets or sign in")
    return 0


MIN_PASSWORD = 10


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():  # getpass would fall back to a warning and an EOF traceback
        print("carebot staff passwd: no terminal to ask the password on; pipe it in with "
              "--stdin (printf '%s\\n' \"$PASSWORD\" | carebot staff passwd LOGIN --stdin)",
              file=sys.stderr)
        return None
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        print("carebot staff passwd: the two passwords differ; nothing changed",
              file=sys.stderr)
        return None
    return first


async def cmd_staff_passwd(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password(args.stdin)
    if password is None:
        return 1
    if len(password) < MIN_PASSWORD:
        print(f"carebot staff passwd: use at least {MIN_PASSWORD} characters; nothing changed",
              file=sys.stderr)
        return 2
    async with database(settings):
        n = await Staff.filter(login=args.login).update(password_hash=hash_password(password))
        if n:  # a new password works at once, lock or not
            await unlock(settings, args.login, SystemClock().now())
    if not n:
        print(f"carebot staff passwd: no staff with login {args.login!r}; add one with "
              f"carebot staff add --login {args.login} --name NAME --role ROLE",
              file=sys.stderr)
        return 1
    print(f"password set for {args.login}; other console sessions of {args.login} ended")
    return 0


async def cmd_staff_unlock(settings: Settings, args: argparse.Namespace) -> int:
    """Lift a console sign-in lock (the recovery when someone keeps an admin locked out:
    docs/security.md); the login's failed attempts count afresh from now."""
    async with database(settings):
        n = await unlock(settings, args.login, SystemClock().now())
    if not n:
        print(f"carebot staff unlock: no staff with login {args.login!r}", file=sys.stderr)
        return 1
    print(f"unlocked: {args.login} may sign in again")
    return 0


def _fmt(when: datetime | None, settings: Settings) -> str:
    return when.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if when else "-"


async def cmd_ticket_show(settings: Settings, args: argparse.Namespace) -> int:
    raw = args.number.strip()
    ticket_id = int(raw) if raw.isdigit() else parse_number(raw)
    if ticket_id is None:
        print(f"carebot ticket show: {raw!r} is not a ticket number (T-0042)", file=sys.stderr)
        return 2
    async with database(settings):
        ticket = await Ticket.get_or_none(id=ticket_id)
        if ticket is None:
            print(f"carebot ticket show: no ticket {raw}", file=sys.stderr)
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

    print(f"{ticket.number}  {ticket.state}  level {ticket.level}"
          f"{'  MAJOR' if ticket.major else ''}  ({ticket.channel}, {ticket.category})")
    print(f"owner:      {customer.name} {customer.phone}")
    if vehicle:
        print(f"vehicle:    {vehicle.model} {vehicle.plate} {vehicle.vin}")
    print(f"handler:    {handler.name + ' (' + handler.role + ')' if handler else '-'}")
    print(f"opened:     {f(ticket.created_at)}")
    print(f"1st answer: due {f(ticket.first_answer_due)}, given {f(ticket.first_answered_at)}")
    print(f"handler:    due {f(ticket.handler_answer_due)}; resolved {f(ticket.resolved_at)}")
    print(f"running:    {ticket.due_kind or '-'} {f(ticket.due_at)}; breaches {ticket.breaches},"
          f" reopened {ticket.reopen_count}x")
    print(f"problem:    {ticket.description}")
    if ticket.resolution:
        print(f"resolution: {ticket.resolution}")
        print(f"improvement:{' ' + ticket.improvement if ticket.improvement else ' -'}")
    if ticket.handling_score is not None:
        print(f"rated:      {ticket.handling_score}/10; closed {f(ticket.closed_at)}")
    print("\nevents:")
    for e in events:
        actor = e.actor.name if e.actor else "system"
        extra = f"  [{e.reason}]" if e.reason else ""
        print(f"  {f(e.created_at)}  {e.kind:<9} {actor:<12} {e.text[:100]}{extra}")
    print("\nmessages:")
    for m in messages:
        who = {"in": customer.name, "out": m.staff.name if m.staff else "staff",
               "note": f"note by {m.staff.name if m.staff else 'staff'}"}.get(m.direction, "")
        body = m.text or ("[photo]" if m.photo_file_id else "")
        pending = "" if m.relayed_at else "  (not relayed yet)"
        print(f"  {f(m.created_at)}  {who}: {body}{pending}")
    return 0


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


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
    print(f"complaints opened in {label}: {stats.total}")
    print("by category: " + ", ".join(f"{k} {v}" for k, v in (stats.by_category or {}).items()))
    print("by level:    " + ", ".join(f"{k} {v}" for k, v in (stats.by_level or {}).items()))
    print(f"median time to first answer: {_duration(stats.median_first_answer)}")
    print(f"median time to resolution:   {_duration(stats.median_resolution)}")
    print(f"deadline breaches: {stats.breaches} (on {stats.tickets_breached} tickets)")
    print(f"reopened: {stats.reopened} ({rate:.0%})" if rate is not None else "reopened: 0")
    print(f"closed: {stats.closed}")
    return 0


def _minutes(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds() // 60)
