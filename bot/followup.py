"""Feature wiring for 100 % follow-up (issue 16): the call list and the lost-owner recall.

``register``: the recall's composer and buttons, and the dispatcher's rule that skips what is
still owed about a car that was sold or scrapped. ``schedule``: the follow-up scan every few
minutes (calls owed: not linked, blocked, unanswered) and the recall scan daily at the scan
time, both under the ``followup_scan`` advisory lock (one instance at a time; both are
idempotent anyway). See docs/followup.md.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from telegram.ext import Application

from bot import calls, locks, recall
from bot.handlers import recall as recall_handlers
from bot.journeys.timing import parse_hhmm
from bot.services import Services

log = logging.getLogger(__name__)

SCAN_SECONDS = 300
# The phone scripts' extra context, for `carebot scripts check` and the script editor.
SCRIPT_SAMPLES: dict[str, dict[str, Any]] = {
    f"phone_{kind}": {"agent": "王客服"} for kind in calls.CALL_KINDS
}


async def scan_calls(services: Services, now: datetime | None = None) -> int:
    """Write the calls owed by now; a failure is logged and the next scan retries."""
    async with locks.locks_of(services).singleton(locks.FOLLOWUP_SCAN) as mine:
        if not mine:
            return 0
        try:
            return await calls.scan(now or services.clock.now(),
                                    services.rules.calls)
        except Exception:  # the scheduler must keep running; the scan is idempotent
            log.exception("call list scan failed; the next scan retries")
            return 0


async def scan_recalls(services: Services, now: datetime | None = None) -> int:
    """Write today's recalls; a failure is logged and the next day's scan catches up."""
    async with locks.locks_of(services).singleton(locks.FOLLOWUP_SCAN) as mine:
        if not mine:
            return 0
        try:
            return await recall.scan(now or services.clock.now(),
                                     services.rules.recall)
        except Exception:  # the scheduler must keep running; the scan is idempotent
            log.exception("recall scan failed; the next scan catches up")
            return 0


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    recall_handlers.register(application, services)
    services.dispatcher.skip_rules.append(recall.skip_for_inactive_cars)


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    scheduler.add_job(scan_calls, "interval", seconds=SCAN_SECONDS, args=[services],
                      id="followup_calls", max_instances=1, coalesce=True)
    at = parse_hhmm(services.settings.scan_time)
    scheduler.add_job(scan_recalls, "cron", hour=at.hour, minute=at.minute, args=[services],
                      id="followup_recall", max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
