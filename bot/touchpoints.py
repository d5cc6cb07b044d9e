"""Feature wiring for the scheduled touchpoints (issue 3).

``register``: the booking buttons and handler, the composers of the kinds that carry a
button ("Book a visit" on the first-service and service-due reminders and on a missed
booking's new-time offer, "Change time" and "Cancel booking" on the booking reminder) and
the dispatcher's skip rule for reminders a visit or booking made unnecessary.
``schedule``: the daily occasions scan at ``scan_time`` (local) and one scan at start-up,
which catches up the days the process was down. With several instances the scan
runs under the ``occasions_scan`` advisory lock, and a scan already run (by any instance)
since the latest scheduled time is not run again: one scan per day and start-up wave.

The 3-day and service follow-ups carry the satisfaction question; their composers (score
buttons) belong to the surveys feature.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from telegram.ext import Application

from bot import bookings, locks
from bot.delivery.dispatcher import Composer, Outgoing, compose
from bot.handlers import booking as booking_handlers
from bot.journeys.occasions import run_scan
from bot.journeys.plans import BOOKING_NO_SHOW, BOOKING_REMINDER, FIRST_SERVICE, SERVICE_DUE
from bot.journeys.repairs import REPAIR_REMINDER
from bot.journeys.timing import at_local, local_date, parse_hhmm
from bot.services import Services
from bot.templating import render_off_loop
from db.models import Customer, ScanState, Touchpoint, Vehicle

log = logging.getLogger(__name__)

# ScanState row recording when an occasions scan last ran, whichever instance ran it.
SCAN_RUN = "occasions_run"


def _with_book_button(svc: Services) -> Composer:
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = await render_off_loop(compose, tp, customer, vehicle, svc.scripts, svc.settings)
        return Outgoing(out.text, booking_handlers.book_button(svc, customer.language, tp.id))

    return composer


def _with_cancel_button(svc: Services) -> Composer:
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = await render_off_loop(compose, tp, customer, vehicle, svc.scripts, svc.settings)
        booking_id = tp.payload.get("booking_id")
        if not isinstance(booking_id, int):
            return out
        return Outgoing(out.text,
                        booking_handlers.manage_buttons(svc, customer.language, booking_id))

    return composer


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    booking_handlers.register(application, services)
    composers = services.dispatcher.composers
    composers[FIRST_SERVICE] = _with_book_button(services)
    composers[SERVICE_DUE] = _with_book_button(services)
    composers[REPAIR_REMINDER] = _with_book_button(services)
    composers[BOOKING_REMINDER] = _with_cancel_button(services)
    composers[BOOKING_NO_SHOW] = _with_book_button(services)
    services.dispatcher.skip_rules.append(
        functools.partial(bookings.skip_superseded_reminders, tz=services.settings.tz))


def latest_scan_time(now: datetime, services: Services) -> datetime:
    """The latest scheduled scan time (local ``scan_time``) at or before ``now``."""
    tz = services.settings.tz
    at = parse_hhmm(services.settings.scan_time)
    today = local_date(now, tz)
    slot = at_local(today, at, tz)
    return slot if slot <= now else at_local(today - timedelta(days=1), at, tz)


async def scan_now(services: Services) -> None:
    """One occasions scan, unless another instance is running one or one already ran since
    the latest scheduled time; a failure is logged and the next one retries (the scan is
    idempotent)."""
    async with locks.locks_of(services).singleton(locks.OCCASIONS_SCAN) as mine:
        if not mine:
            log.info("occasions scan skipped: another instance is running it")
            return
        try:
            now = services.clock.now()
            last = await ScanState.get_or_none(name=SCAN_RUN)
            if last is not None and last.updated_at >= latest_scan_time(now, services):
                log.info("occasions scan skipped: already run at %s", last.updated_at)
                return
            await run_scan(now, services.rules.occasions)
            await ScanState.update_or_create(
                name=SCAN_RUN, defaults={"last_day": local_date(now, services.settings.tz),
                                         "updated_at": now})
        except Exception:  # the caller's flow must go on; the score is stored
            log.exception("occasions scan failed; the next scan catches up")


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    at = parse_hhmm(services.settings.scan_time)
    scheduler.add_job(scan_now, "cron", hour=at.hour, minute=at.minute, args=[services],
                      id="occasions_scan", max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
    scheduler.add_job(scan_now, "date", args=[services], id="occasions_scan_start",
                      max_instances=1)
