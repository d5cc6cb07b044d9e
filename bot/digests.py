"""Feature wiring for the reports that arrive by themselves (日结周报; issue 17, point 5).

``schedule``: a tick every minute that owes the daily digest and the weekly and monthly
reports whose time came (``bot/staff_reports.py``: rows keyed by report and period, so once
per period across restarts and instances); the staff side's notice sender posts them.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler
from telegram.ext import Application

from bot.services import Services
from bot.staff_reports import owe_reports

log = logging.getLogger(__name__)


async def reports_tick(services: Services) -> None:
    try:
        await owe_reports(services.clock.now(), services.settings, services.scripts,
                          services.rules.workshop)
    except Exception:  # a failed tick must not kill the scheduler; the next one retries
        log.exception("reports tick failed; the next tick retries")


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    """Nothing to handle: the reports are sent, never asked for."""


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    scheduler.add_job(reports_tick, "interval", seconds=60, args=[services], id="reports",
                      max_instances=1, coalesce=True)
