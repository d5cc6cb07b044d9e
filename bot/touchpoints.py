"""Feature wiring for the scheduled touchpoints (issue 3).

``register``: the booking buttons and handler, the composers of the kinds that carry a
button ("Book a visit" on the first-service and service-due reminders, "Cancel booking" on
the booking reminder) and the dispatcher's skip rule for reminders a visit or booking made
unnecessary. ``schedule``: the daily occasions scan at ``scan_time`` (local) and one scan at
start-up, which catches up the days the process was down.

The 3-day and service follow-ups carry the satisfaction question; their composers (score
buttons) belong to the surveys feature.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from telegram.ext import Application

from bot import bookings
from bot.campaigns.dispatcher import Composer, Outgoing, compose
from bot.campaigns.journeys import BOOKING_REMINDER, FIRST_SERVICE, SERVICE_DUE
from bot.campaigns.occasions import occasion_rules, run_scan
from bot.campaigns.timing import parse_hhmm
from bot.handlers import booking as booking_handlers
from bot.services import Services
from db.models import Customer, Touchpoint, Vehicle

log = logging.getLogger(__name__)


def _with_book_button(svc: Services) -> Composer:
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = compose(tp, customer, vehicle, svc.scripts, svc.settings)
        return Outgoing(out.text, booking_handlers.book_button(svc, customer.language, tp.id))

    return composer


def _with_cancel_button(svc: Services) -> Composer:
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = compose(tp, customer, vehicle, svc.scripts, svc.settings)
        booking_id = tp.payload.get("booking_id")
        if not isinstance(booking_id, int):
            return out
        return Outgoing(out.text,
                        booking_handlers.cancel_button(svc, customer.language, booking_id))

    return composer


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    booking_handlers.register(application, services)
    composers = services.dispatcher.composers
    composers[FIRST_SERVICE] = _with_book_button(services)
    composers[SERVICE_DUE] = _with_book_button(services)
    composers[BOOKING_REMINDER] = _with_cancel_button(services)
    services.dispatcher.skip_rules.append(
        functools.partial(bookings.skip_superseded_reminders, tz=services.settings.tz))


async def scan_now(services: Services) -> None:
    """One occasions scan; a failure is logged and the next one retries (it is idempotent)."""
    try:
        await run_scan(services.clock.now(), occasion_rules(services.settings))
    except Exception:
        log.exception("occasions scan failed; the next scan catches up")


def schedule(scheduler: Any, services: Services) -> None:
    at = parse_hhmm(services.settings.scan_time)
    scheduler.add_job(scan_now, "cron", hour=at.hour, minute=at.minute, args=[services],
                      id="occasions_scan", max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
    scheduler.add_job(scan_now, "date", args=[services], id="occasions_scan_start",
                      max_instances=1)
