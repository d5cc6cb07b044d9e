"""``carebot booking add|list|mark``: staff book for a caller or a walk-in, list a day by
slot, mark arrived or no-show — the same rules as the console's bookings page (open days,
slots with a place left for the job, one open booking of a job per car)."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from bot import booking_desk, booking_news, bookings
from bot.booking_calendar import JOB_KINDS
from bot.bookings import Job, booking_rules
from bot.cli.database import database, scripts
from bot.cli.say import fail, say, t
from bot.clock import SystemClock
from bot.config import Settings
from db.models import BookingChannel, BookingKind, BookingStatus


def add_commands(sub: Any) -> None:
    booking = sub.add_parser("booking", help="workshop bookings: add for a caller or walk-in, "
                                             "list a day, mark arrived / no-show")
    booking_sub = booking.add_subparsers(dest="booking_command", required=True)
    add = booking_sub.add_parser("add", help="book for an owner who phoned or walked in")
    add.add_argument("who", help="the owner's phone, or the car's plate or VIN")
    add.add_argument("--kind", choices=JOB_KINDS, default="maintenance")
    add.add_argument("--day", required=True, type=_day, help="YYYY-MM-DD")
    add.add_argument("--slot", required=True, help="the slot's start, e.g. 09:00")
    add.add_argument("--note", default="", help="what the owner says about the job")
    add.add_argument("--channel", choices=("phone", "walk_in"), default="phone")
    add.set_defaults(run=cmd_booking_add)
    show = booking_sub.add_parser("list", help="a day's bookings by slot (default: today)")
    show.add_argument("--day", type=_day, default=None, help="YYYY-MM-DD")
    show.set_defaults(run=cmd_booking_list)
    mark = booking_sub.add_parser("mark", help="mark a booking arrived or no-show")
    mark.add_argument("id", type=int)
    mark.add_argument("status", choices=("arrived", "no_show"))
    mark.set_defaults(run=cmd_booking_mark)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(t("booking.not_a_day", value=repr(value))) from None


async def cmd_booking_add(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings):  # the database first: the console's slot changes count
        return await _booking_add(settings, args)


async def _booking_add(settings: Settings, args: argparse.Namespace) -> int:
    rules = booking_rules(settings)
    now = SystemClock().now()
    today = now.astimezone(settings.tz).date()
    slot = bookings.resolve_slot(rules, args.slot)
    if slot is None:
        codes = ", ".join(s.code for s in rules.slots)
        fail("booking add", "booking.no_slot", slot=repr(args.slot), slots=codes)
        return 2
    if args.day not in booking_desk.staff_days(today, rules):
        fail("booking add", "booking.closed_day", day=args.day, days=rules.horizon_days)
        return 2
    try:
        customer, vehicle = await booking_desk.find_owner(args.who)
    except booking_desk.OwnerNotFound as missing:
        fail("booking add", f"booking.{missing.key}")
        return 1
    job = Job(customer.id, vehicle.id if vehicle else None, BookingKind(args.kind),
              note=args.note.strip()[:500], channel=BookingChannel(args.channel))
    outcome = await bookings.book_job(job, day=args.day, slot=slot.code, now=now,
                                      rules=rules)
    if outcome.created and outcome.booking is not None:  # the running carebot sends it
        await booking_news.owe_confirmation(
            await scripts(settings), rules, booking=outcome.booking,
            customer=customer, vehicle=vehicle, phone=settings.dealer_phone, now=now)
    found = outcome.booking
    if found is None:
        fail("booking add", "booking.full", day=args.day, slot=slot.code, kind=args.kind)
        return 1
    if not outcome.created:
        fail("booking add", "booking.already", customer=customer.id, id=found.id,
             day=found.day, slot=found.slot, kind=found.kind.value)
        return 1
    say("booking.booked", id=found.id, customer=customer.id, day=found.day, slot=found.slot,
        kind=found.kind.value, channel=found.channel.value)
    return 0


async def cmd_booking_list(settings: Settings, args: argparse.Namespace) -> int:
    day = args.day or SystemClock().now().astimezone(settings.tz).date()
    async with database(settings):  # the console's slot changes count
        rules = booking_rules(settings)
        rows = await booking_desk.day_list(day)
    say("booking.day", day=day, n=sum(b.status is not BookingStatus.CANCELLED for b in rows))
    for slot in rules.slots:
        mine = [b for b in rows if (bookings.resolve_slot(rules, b.slot) or slot).code
                == slot.code]
        print(f"{bookings.slot_range(rules, slot.code)}")
        for b in mine:
            car = f" {b.vehicle.plate or b.vehicle.vin}" if b.vehicle else ""
            say("booking.row", id=b.id, status=b.status.value, kind=b.kind.value,
                customer=b.customer_id, car=car, channel=b.channel.value)
    return 0


async def cmd_booking_mark(settings: Settings, args: argparse.Namespace) -> int:
    now = SystemClock().now()
    async with database(settings):
        marked = await booking_desk.mark(args.id, BookingStatus(args.status), staff_id=None,
                                         now=now, rules=booking_rules(settings))
    if marked is None:
        fail("booking mark", "booking.cannot_mark", id=args.id)
        return 1
    say("booking.marked", id=marked.id, status=marked.status.value)
    return 0
