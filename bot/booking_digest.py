"""The morning list of the day's bookings, posted to the staff group (issue 17).

At ``CAREBOT_BOOKING_DIGEST_TIME`` (local, 08:00 by default; ``off`` for none) the day's
bookings by slot — owner, car, job and note; no phones in a group — become one notice row
(key ``booking_digest:<day>``), sent through the sender by the instance that does the staff
side and retried like every notice. A start-up after that time on the same day owes it too;
the key makes it once a day whichever instance or restart gets there first.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler

from bot import booking_desk, bookings
from bot.bookings import BookingRules
from bot.delivery import notices
from bot.journeys.timing import at_local, local_date, parse_hhmm
from bot.services import Services
from bot.texts import DEFAULT_LANGUAGE, Scripts
from db.models import Booking, BookingKind, BookingStatus

log = logging.getLogger(__name__)


def digest_text(scripts: Scripts, day: date, rows: list[Booking], rules: BookingRules,
                lang: str = DEFAULT_LANGUAGE) -> str:
    """The list for ``day``: a title with the count, then each slot with its bookings."""
    live = [b for b in rows if b.status is not BookingStatus.CANCELLED]
    text = scripts.label("bk_digest_title", lang, day=day.isoformat(), count=len(live))
    if not live:
        return text + scripts.label("bk_digest_none", lang)
    for slot in rules.slots:
        mine = [b for b in live if (bookings.resolve_slot(rules, b.slot) or slot) == slot]
        if not mine:
            continue
        text += scripts.label("bk_digest_slot", lang, slot=bookings.slot_range(rules, slot.code),
                              count=len(mine))
        for b in mine:
            car = " ".join(p for p in (b.vehicle.model, b.vehicle.plate) if p) \
                if b.vehicle else ""
            text += scripts.label(
                "bk_digest_row", lang, name=b.customer.name, vehicle=car,
                kind=scripts.label(f"bk_kind_{BookingKind(b.kind).value}", lang),
                note=scripts.label("bk_note_line", lang, note=b.note) if b.note else "")
    return text


def due_today(now: datetime, services: Services) -> date | None:
    """Today's local date when the digest time has come today; None before it, or off."""
    settings = services.settings
    if settings.booking_digest_time.strip().lower() == "off":
        return None
    today = local_date(now, settings.tz)
    at = at_local(today, parse_hhmm(settings.booking_digest_time), settings.tz)
    return today if at <= now < at + timedelta(hours=12) else None


async def post_digest(services: Services) -> bool:
    """Owe (and send) today's list, once; False when nothing was owed now."""
    chat = services.settings.staff_chat_id
    day = due_today(services.clock.now(), services)
    if day is None or chat is None:
        return False
    try:
        rules = services.rules.bookings
        rows = await booking_desk.day_list(day)
        text = digest_text(services.scripts, day, rows, rules)
        return await notices.tell(services, f"booking_digest:{day.isoformat()}", [chat], text)
    except Exception:  # a scheduler job: the next start-up or day tries again
        log.exception("booking digest for %s failed", day)
        return False


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    value = services.settings.booking_digest_time.strip().lower()
    if value == "off":
        return
    if services.settings.staff_chat_id is None:
        log.info("no CAREBOT_STAFF_CHAT_ID: the morning booking list is not posted")
        return
    at = parse_hhmm(value)
    scheduler.add_job(post_digest, "cron", hour=at.hour, minute=at.minute, args=[services],
                      id="booking_digest", max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
    scheduler.add_job(post_digest, "date", args=[services], id="booking_digest_start",
                      max_instances=1)
