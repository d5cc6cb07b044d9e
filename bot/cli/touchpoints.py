"""``carebot scripts check`` and ``carebot outbox``: the scripts and the outbox, for people.

    carebot scripts check                  # every template, every language, sample data
    carebot outbox                         # today's touchpoints by kind and status
    carebot outbox --from 2026-11-01 --to 2026-11-30
    carebot outbox --customer 13800138000  # one owner's timeline (or --customer VIN)
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.functions import Count

from bot.cli.database import database
from bot.cli.say import fail, say, t
from bot.clock import SystemClock
from bot.config import Settings
from bot.journeys.timing import end_of_local_day, local_date
from bot.owners import phone_to_e164
from bot.script_check import check_scripts, feature_samples, script_dirs
from bot.texts import LANGUAGES
from bot.vin import normalize_vin
from db.models import Booking, Customer, Touchpoint, TouchpointStatus, Vehicle


async def run_scripts_check(settings: Settings, args: argparse.Namespace) -> int:
    checked, problems = check_scripts(script_dirs(settings), feature_samples())
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(t("scripts.problems", n=len(problems), files=checked), file=sys.stderr)
        return 1
    say("scripts.ok", files=checked, languages=", ".join(LANGUAGES))
    return 0


# --- outbox ------------------------------------------------------------------------------


def _parse_day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SystemExit("carebot outbox: " + t("outbox.not_a_date", flag=flag,
                                                   value=repr(value))) from None


async def outbox_counts(start: datetime, end: datetime) -> list[tuple[str, str, int]]:
    """(kind, status, count) of the touchpoints due in [start, end)."""
    rows = await (
        Touchpoint.filter(due_at__gte=start, due_at__lt=end)
        .annotate(n=Count("id")).group_by("kind", "status").values_list("kind", "status", "n")
    )
    return sorted((str(k), str(s), int(n)) for k, s, n in rows)


def format_counts(rows: list[tuple[str, str, int]]) -> str:
    """A kind x status table with totals."""
    statuses = [s.value for s in TouchpointStatus]
    kinds = sorted({k for k, _, _ in rows})
    cell = {(k, s): n for k, s, n in rows}
    kind, total = t("outbox.kind"), t("outbox.total")
    width = max([len(kind), len(total), *(len(k) for k in kinds)])
    head = kind.ljust(width) + "".join(s.rjust(12) for s in statuses) + total.rjust(9)
    lines = [head, "-" * len(head)]
    for k in kinds:
        lines.append(k.ljust(width) + "".join(str(cell.get((k, s), 0)).rjust(12)
                                              for s in statuses)
                     + str(sum(cell.get((k, s), 0) for s in statuses)).rjust(9))
    lines.append(total.ljust(width) + "".join(
        str(sum(cell.get((k, s), 0) for k in kinds)).rjust(12) for s in statuses)
        + str(sum(n for _, _, n in rows)).rjust(9))
    return "\n".join(lines)


async def find_customer(query: str) -> Any:
    """An owner by phone (any common form) or by a VIN of one of their cars."""
    e164 = phone_to_e164(query)
    if e164 is not None:
        found = await Customer.get_or_none(phone=e164)
        if found is not None:
            return found
    vehicle = await Vehicle.get_or_none(vin=normalize_vin(query))
    if vehicle is not None:
        return await Customer.get_or_none(id=vehicle.customer_id)
    return None


async def timeline(customer_id: int, tz: Any) -> list[str]:
    """One owner's touchpoints, oldest due first: due, kind, status, sent, car, why."""
    def local(when: datetime | None) -> str:
        return f"{when.astimezone(tz):%Y-%m-%d %H:%M}" if when else "-"

    lines = [t("outbox.timeline_head")]
    for tp in await Touchpoint.filter(customer_id=customer_id).order_by("due_at", "id") \
            .select_related("vehicle"):
        car = (tp.vehicle.plate or tp.vehicle.vin[-6:]) if tp.vehicle else "-"
        why = tp.status_reason or (tp.last_error[:60] if tp.last_error else "")
        lines.append(f"{local(tp.due_at):16}  {tp.kind:22} {tp.status.value:11} "
                     f"{local(tp.sent_at):16}  {car:10} {why}")
    books = await Booking.filter(customer_id=customer_id).order_by("day", "id")
    for b in books:
        lines.append(t("outbox.booking", id=b.id, day=b.day, slot=b.slot, kind=b.kind.value,
                       status=b.status.value, made=local(b.created_at)))
    return lines


async def run_outbox(settings: Settings, args: argparse.Namespace) -> int:
    tz = settings.tz
    async with database(settings):
        if args.customer:
            customer = await find_customer(args.customer)
            if customer is None:
                fail("outbox", "outbox.no_owner", query=repr(args.customer))
                return 1
            state = ("declined" if customer.followups_refused else
                     "unreachable" if customer.unreachable_at else
                     "linked" if customer.telegram_chat_id else "not_linked")
            say("outbox.owner", name=customer.name, phone=customer.phone,
                language=customer.language, state=t(f"outbox.state_{state}"))
            for line in await timeline(customer.id, tz):
                print(line)
            return 0
        today = local_date(SystemClock().now(), tz)
        first = _parse_day(args.date_from, "--from") if args.date_from else today
        last = _parse_day(args.date_to, "--to") if args.date_to else first
        if last < first:
            fail("outbox", "outbox.to_before_from")
            return 2
        start = end_of_local_day(first - timedelta(days=1), tz)
        rows = await outbox_counts(start, end_of_local_day(last, tz))
    say("outbox.due", first=first, last=last, timezone=settings.timezone)
    print(format_counts(rows) if rows else t("outbox.none"))
    return 0


def add_commands(sub: Any) -> None:
    scripts = sub.add_parser("scripts", help="check the message scripts (templates, labels)")
    scripts_sub = scripts.add_subparsers(dest="scripts_command", required=True)
    scripts_sub.add_parser(
        "check", help="render every template in every language with sample data",
        description="Renders every template (also those in CAREBOT_SCRIPTS_DIR) with sample "
                    "data and strict undefined names; fails with file and line on any error.",
    ).set_defaults(run=run_scripts_check)
    outbox = sub.add_parser(
        "outbox", help="touchpoints by kind and status, or one owner's timeline",
        description="Counts of touchpoints due in a date range (local days, default today), "
                    "by kind and status; or --customer for one owner's timeline.",
    )
    outbox.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD")
    outbox.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD")
    outbox.add_argument("--customer", metavar="PHONE|VIN", help="one owner's timeline")
    outbox.set_defaults(run=run_outbox)
