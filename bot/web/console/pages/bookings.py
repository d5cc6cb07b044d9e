"""Bookings: the day's list by slot, with the places each slot has left per job; staff
enter a booking for a caller or a walk-in; on the day they mark each arrived or no-show
(a no-show is offered a new time in Telegram). The month's 预约率 beside it.

Who: everyone who serves owners (``access.BOOKINGS``). A phone shows in full only where
``access.phone_visible`` says so; every booking entered or marked is in the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot import booking_desk, booking_news, bookings
from bot.booking_calendar import Slot
from bot.bookings import BookingRate, BookingRules, Job, booking_rate
from bot.delivery import notices
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.forms import Refused, posted_texts
from db.models import AuditLog, Booking, BookingChannel, BookingKind, BookingStatus, Staff

log = logging.getLogger(__name__)

NOTE_LIMIT = 500
DONE_KEYS = ("added", "arrived", "no_show")
STAFF_CHANNELS = (BookingChannel.PHONE, BookingChannel.WALK_IN)
KINDS = (BookingKind.MAINTENANCE, BookingKind.REPAIR, BookingKind.INSPECTION,
         BookingKind.FIRST_SERVICE, BookingKind.OTHER)  # the owner's picker's order


@dataclass
class SlotView:
    """One slot of the day: its bookings, and places taken / capacity per job kind."""

    slot: Slot
    label: str
    rows: list[Booking] = field(default_factory=list)
    places: list[tuple[BookingKind, int, int]] = field(default_factory=list)


def slot_views(day_rows: list[Booking], rules: BookingRules) -> list[SlotView]:
    """The day's bookings under their slots, in the day's order; a booking whose slot the
    day no longer has gets a slot of its own at the end (nothing hidden)."""
    views = {s.code: SlotView(s, bookings.slot_range(rules, s.code)) for s in rules.slots}
    for b in day_rows:
        slot = bookings.resolve_slot(rules, b.slot)
        code = slot.code if slot else b.slot
        if code not in views:
            views[code] = SlotView(Slot(rules.slots[0].start, rules.slots[0].end), b.slot)
        views[code].rows.append(b)
    for view in views.values():
        for kind in KINDS:
            cap = rules.capacity.of(view.slot.code, kind.value)
            taken = sum(1 for b in view.rows
                        if b.kind == kind and b.status in bookings.TAKING)
            if cap or taken:
                view.places.append((kind, taken, cap))
    return list(views.values())


def _day_of(request: web.Request, today: date) -> date:
    try:
        return date.fromisoformat(request.query.get("day", "")) if request.query.get("day") \
            else today
    except ValueError:
        return today


async def _rates(request: web.Request, today: date) -> tuple[BookingRate, BookingRate]:
    settings = console_of(request).services.settings
    month = today.replace(day=1)
    last = (month - timedelta(days=1)).replace(day=1)
    this_rate = await booking_rate(month, today + timedelta(days=1), settings.tz,
                                   visit_days=settings.booking_visit_days)
    last_rate = await booking_rate(last, month, settings.tz,
                                   visit_days=settings.booking_visit_days)
    return this_rate, last_rate


async def _page(request: web.Request, *, status: int = 200, form: dict[str, str] | None = None,
                error_key: str = "", error_args: dict[str, Any] | None = None
                ) -> web.Response:
    svc = console_of(request).services
    staff = staff_of(request)
    rules = svc.rules.bookings
    today = svc.clock.now().astimezone(svc.settings.tz).date()
    day = _day_of(request, today)
    if form and form.get("day"):
        day = _day_of_form(form, day)
    rows = await bookings_day(day)
    phones = {b.customer_id: b.customer.phone if await access.phone_visible(
        staff, b.customer_id) else access.mask_phone(b.customer.phone) for b in rows}
    this_rate, last_rate = await _rates(request, today)
    done = request.query.get("done", "") if request.method == "GET" else ""
    return await render(
        request, "bookings.html", status=status, day=day, today=today,
        prev_day=day - timedelta(days=1), next_day=day + timedelta(days=1),
        slots=slot_views(rows, rules), phones=phones, markable=day <= today,
        counts=_counts(rows), this_rate=this_rate, last_rate=last_rate,
        days=booking_desk.staff_days(today, rules), all_slots=[
            (s.code, bookings.slot_range(rules, s.code)) for s in rules.slots],
        kinds=KINDS, channels=STAFF_CHANNELS, form=form or {}, note_limit=NOTE_LIMIT,
        done=done if done in DONE_KEYS else "", error_key=error_key,
        error_args=error_args or {}, is_open=rules.calendar.is_open(day))


def _day_of_form(form: dict[str, str], default: date) -> date:
    try:
        return date.fromisoformat(form.get("day", ""))
    except ValueError:
        return default


async def bookings_day(day: date) -> list[Booking]:
    return await booking_desk.day_list(day)


def _counts(rows: list[Booking]) -> dict[str, int]:
    live = [b for b in rows if b.status is not BookingStatus.CANCELLED]
    return {"total": len(live),
            "arrived": sum(b.status is BookingStatus.ARRIVED for b in live),
            "no_show": sum(b.status is BookingStatus.NO_SHOW for b in live),
            "waiting": sum(b.status is BookingStatus.BOOKED for b in live)}


@requires(access.BOOKINGS)
async def day_page(request: web.Request) -> web.Response:
    return await _page(request)


def _job(form: dict[str, str], customer_id: int, vehicle_id: int | None,
         staff: Staff) -> Job:
    try:
        kind = BookingKind(form.get("kind", ""))
        channel = BookingChannel(form.get("channel", ""))
    except ValueError:
        raise Refused("bookings.refused.kind", 422) from None
    if channel not in STAFF_CHANNELS:
        raise Refused("bookings.refused.kind", 422)
    note = form.get("note", "").replace("\r\n", "\n").strip()
    if len(note) > NOTE_LIMIT:
        raise Refused("bookings.refused.too_long", 422, limit=NOTE_LIMIT)
    return Job(customer_id, vehicle_id, kind, note=note, channel=channel,
               created_by_id=staff.id)


async def _add(request: web.Request, form: dict[str, str]) -> Booking:
    """The booking a member of staff entered, or Refused saying what to correct."""
    svc = console_of(request).services
    rules = svc.rules.bookings
    now = svc.clock.now()
    today = now.astimezone(svc.settings.tz).date()
    try:
        customer, vehicle = await booking_desk.find_owner(form.get("who", ""))
    except booking_desk.OwnerNotFound as missing:
        raise Refused(f"bookings.refused.{missing.key}", 422) from None
    job = _job(form, customer.id, vehicle.id if vehicle else None, staff_of(request))
    day = _day_of_form(form, date.min)
    slot = bookings.resolve_slot(rules, form.get("slot", ""))
    if day not in booking_desk.staff_days(today, rules) or slot is None:
        raise Refused("bookings.refused.day", 422)
    outcome = await bookings.book_job(job, day=day, slot=slot.code, now=now, rules=rules)
    if outcome.booking is None:
        raise Refused("bookings.refused.full", 409)
    if not outcome.created:
        raise Refused("bookings.refused.exists", 409, id=outcome.booking.id,
                      day=outcome.booking.day.isoformat(), slot=outcome.booking.slot)
    return outcome.booking


@requires(access.BOOKINGS)
async def add(request: web.Request) -> web.StreamResponse:
    form = await posted_texts(request)
    try:
        booking = await _add(request, form)
    except Refused as refused:
        return await _page(request, status=refused.status, form=form, error_key=refused.key,
                           error_args=refused.fmt)
    await _audit(request, "add", booking, channel=str(booking.channel), kind=str(booking.kind))
    await _confirm(request, booking)
    raise web.HTTPSeeOther(f"/bookings?day={booking.day}&done=added#b{booking.id}")


async def _confirm(request: web.Request, booking: Booking) -> None:
    """The owner's confirmation (when on Telegram): a row owed, sent now; its retries are
    the notice job's."""
    svc = console_of(request).services
    await booking.fetch_related("customer", "vehicle")
    now = svc.clock.now()
    notice = await booking_news.owe_confirmation(
        svc.scripts, svc.rules.bookings, booking=booking, customer=booking.customer,
        vehicle=booking.vehicle, phone=svc.settings.dealer_phone, now=now)
    if notice is not None and not await notices.send_now(notice, svc.sender, now):
        log.warning("booking %s: the owner's confirmation not sent now; tried again",
                    booking.id)


@requires(access.BOOKINGS)
async def mark(request: web.Request) -> web.StreamResponse:
    """Arrived or no-show, for a booking of today or earlier."""
    form = await request.post()
    try:
        status = BookingStatus(str(form.get("status", "")))
        booking_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="status is arrived or no_show") from None
    if status not in (BookingStatus.ARRIVED, BookingStatus.NO_SHOW):
        raise web.HTTPBadRequest(text="status is arrived or no_show")
    svc = console_of(request).services
    marked = await booking_desk.mark(booking_id, status, staff_id=staff_of(request).id,
                                     now=svc.clock.now(), rules=svc.rules.bookings)
    if marked is None:
        return await _page(request, status=409, error_key="bookings.refused.mark")
    await _audit(request, status.value, marked)
    raise web.HTTPSeeOther(f"/bookings?day={marked.day}&done={status.value}#b{marked.id}")


async def _audit(request: web.Request, action: str, booking: Booking, **detail: Any) -> None:
    await AuditLog.create(staff_id=staff_of(request).id, action=f"booking.{action}",
                          target=f"booking:{booking.id}",
                          detail={"customer_id": booking.customer_id, **detail},
                          created_at=console_of(request).services.clock.now())


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/bookings", day_page, name="bookings")
    router.add_post("/bookings", add, name="bookings_add")
    router.add_post("/bookings/{id:\\d+}/mark", mark, name="bookings_mark")
