"""The outbox dispatcher: claims due touchpoints, sends them, records each outcome.

One tick: expire what is stale, skip what must not go out, then claim due rows in batches
(a claim is a lease: a row left in "sending" by a crash goes back to pending when its lease
runs out), send them concurrently through the rate limiter, and write each outcome as soon
as Telegram answers, so a crash repeats at most the messages in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from bot import owners
from bot.clock import Clock
from bot.config import Settings
from bot.delivery.limits import Lane
from bot.delivery.sender import Sender, retry_seconds
from bot.keyboards import keyboard_or_none
from bot.schedule import in_quiet_hours
from bot.templating import OUTPUT_CAP, render_off_loop
from bot.texts import Scripts, greeting
from db.models import (
    Customer,
    Direction,
    MessageLog,
    Ticket,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)

log = logging.getLogger(__name__)

MARKETING_PRIORITY_FROM = 10
#: cheerful care messages held, like marketing, while the owner has an open complaint: sent
#: after it closes if still valid (their own expiry drops stale ones); service-critical
#: messages (licence and insurance expiry, booking reminders, follow-ups) still go
HELD_DURING_COMPLAINT = ("visit_7d", "holiday", "birthday", "second_followup")
#: a complaint is open until resolved or closed (bot.tickets.ACTIVE_STATES)
OPEN_COMPLAINT = ("open", "claimed", "answered", "reopened")


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0
    failed: int = 0
    expired: int = 0
    skipped: int = 0
    reclaimed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchReport) -> None:
        for name in ("sent", "retried", "unreachable", "failed", "expired", "skipped", "reclaimed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


@dataclass(frozen=True)
class Outgoing:
    """A rendered message: HTML text and optional inline buttons as (label, data) rows.

    Data starting with "url:" makes a URL button (e.g. "url:https://example.com")."""

    text: str
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)


def dealer_context(settings: Settings) -> dict[str, str]:
    return {"name": settings.dealer_name, "phone": settings.dealer_phone}


# A feature that needs more than the script (buttons, extra context) registers a composer
# for its kind: ``dispatcher.composers[kind] = async fn(tp, customer, vehicle) -> Outgoing``.
Composer = Callable[[Touchpoint, Customer, Vehicle | None], Awaitable[Outgoing]]
# A feature's own reasons not to send (e.g. "first service already booked"): a set-based
# UPDATE marking due pending rows skipped, returning how many; run each tick after the
# consent rules: ``dispatcher.skip_rules.append(async fn(now) -> int)``.
Footer = Callable[[Touchpoint, Customer], list[list[tuple[str, str]]]]
SkipRule = Callable[[datetime], Awaitable[int]]


def compose(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None, scripts: Scripts,
            settings: Settings, **extra: Any) -> Outgoing:
    """Render a touchpoint in the owner's language from the script named by its kind (from
    the owner's and car's whitelisted fields: :func:`bot.texts.script_context`). A text
    longer than Telegram takes is an error here, said plainly, not a refusal at send time."""
    text = scripts.render(
        tp.kind,
        customer.language,
        customer=customer,
        vehicle=vehicle,
        dealer=dealer_context(settings),
        payload=tp.payload,
        **extra,
    )
    if len(text) > OUTPUT_CAP:
        raise ValueError(f"script {tp.kind!r} renders to {len(text)} characters; "
                         f"Telegram takes {OUTPUT_CAP}")
    return Outgoing(text=text)


def backoff(attempts: int) -> timedelta:
    """Network trouble: 30 s, 1 min, 2 min, ... capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


class Dispatcher:
    """Sends what is due. Safe to call often; each call is one tick."""

    def __init__(self, sender: Sender, settings: Settings, clock: Clock,
                 scripts: Scripts) -> None:
        self.sender = sender
        self.settings = settings
        self.clock = clock
        self.scripts = scripts
        self._lock = asyncio.Lock()
        self.composers: dict[str, Composer] = {}
        self.skip_rules: list[SkipRule] = []
        # Rows appended under every message of some kinds, e.g. "Contact us" after follow-ups:
        # ``dispatcher.footers.append(fn(tp, customer) -> list of button rows)``.
        self.footers: list[Footer] = []
        # Checks run before each tick renders anything, e.g. the console's setting changes
        # saved on another instance: ``dispatcher.before_tick.append(async fn())``.
        self.before_tick: list[Callable[[], Awaitable[object]]] = []

    async def dispatch_due(self, *, customer_id: int | None = None,
                           max_batches: int = 1000) -> DispatchReport:
        """Run one tick; ``customer_id`` limits it to one owner (e.g. right after linking)."""
        async with self._lock:
            await self.scripts.refresh()  # edits saved on any instance, before rendering
            for check in self.before_tick:
                await check()
            now = self.clock.now()
            report = DispatchReport()
            # Reclaim first: a row left "sending" by a crash is then subject to expiry too.
            report.reclaimed = await reclaim_expired_leases(now)
            report.expired = await expire_stale(now)
            report.skipped = await skip_excluded(now)
            for rule in self.skip_rules:
                report.skipped += await rule(now)
            batch, now = await self._claim(customer_id)
            batches = 0
            while batch and batches < max_batches:
                batches += 1
                tail = asyncio.Event()
                sending = asyncio.create_task(self._send_batch(batch, now, tail=tail))
                tail_reached = asyncio.create_task(tail.wait())
                try:
                    # The next batch is claimed while this one's last messages go out, so
                    # the limiter does not sit idle between batches; it starts once this one
                    # is done (a batch's rows are claimed in order, service first).
                    await asyncio.wait({sending, tail_reached},
                                       return_when=asyncio.FIRST_COMPLETED)
                    batch, now = ([], now) if batches >= max_batches else \
                        await self._claim(customer_id)
                    report.add(await sending)
                except asyncio.CancelledError:
                    sending.cancel()
                    raise
                except Exception:
                    await asyncio.wait({sending})  # its sends finish and record themselves
                    raise
                finally:
                    tail_reached.cancel()
            return report

    async def _claim(self, customer_id: int | None) -> tuple[list[Touchpoint], datetime]:
        """The next batch of due rows (none in quiet hours), and the time it was claimed at."""
        now = self.clock.now()  # a long tick must not use a stale now or lease
        if in_quiet_hours(now, self.settings.tz, self.settings.quiet):
            return [], now
        batch = await claim_due(
            now, limit=self.settings.dispatch_batch,
            lease=timedelta(seconds=self.settings.lease_seconds), customer_id=customer_id,
        )
        return batch, now

    async def _send_batch(self, batch: list[Touchpoint], now: datetime,
                          tail: asyncio.Event | None = None) -> DispatchReport:
        """Send a batch, ``dispatch_concurrency`` at a time; ``tail`` is set once every row
        left is in flight or next in line (the batch will be done about a second later)."""
        report = DispatchReport()
        sem = asyncio.Semaphore(self.settings.dispatch_concurrency)
        waiting = len(batch)

        async def one(tp: Touchpoint) -> None:
            nonlocal waiting
            async with sem:
                waiting -= 1
                if tail is not None and waiting <= self.settings.dispatch_concurrency:
                    tail.set()
                try:
                    await self._send_one(tp, now, report)
                except Exception as exc:
                    # e.g. the database failed after Telegram accepted the message: the
                    # row stays "sending" and its lease decides (at most one duplicate).
                    log.exception("touchpoint %s: unexpected error while sending", tp.id)
                    report.errors.append(f"{tp.id}: {exc!r}")

        await asyncio.gather(*(one(tp) for tp in batch))
        return report

    async def _compose(self, tp: Touchpoint, customer: Customer, now: datetime,
                       report: DispatchReport) -> Outgoing | None:
        """The message for ``tp`` with every feature's footer rows; None (the row failed,
        and says why) when its script does not render."""
        try:
            # greets only when this starts a new exchange (the composers' renders see it)
            with greeting(await owners.greeting_due(customer.id, now,
                                                    self.settings.exchange_gap_hours)):
                composer = self.composers.get(tp.kind)
                if composer is not None:
                    out = await composer(tp, customer, tp.vehicle)
                else:  # rendered in a worker thread: the loop answers updates meanwhile
                    out = await render_off_loop(compose, tp, customer, tp.vehicle,
                                                self.scripts, self.settings)
        except Exception as exc:
            log.exception("touchpoint %s: script %r failed to render", tp.id, tp.kind)
            await _finish(tp, TouchpointStatus.FAILED, error=f"script error: {exc}")
            report.failed += 1
            report.errors.append(f"{tp.id}: {exc}")
            return None
        extra_rows = [row for footer in self.footers for row in footer(tp, customer)]
        if extra_rows:
            out = Outgoing(text=out.text, buttons=[*out.buttons, *extra_rows])
        return out

    async def _send_one(self, tp: Touchpoint, now: datetime, report: DispatchReport) -> None:
        customer: Customer = tp.customer
        chat_id = customer.telegram_chat_id
        assert chat_id is not None  # claim_due only takes linked owners
        out = await self._compose(tp, customer, now, report)
        if out is None:
            return
        markup = keyboard_or_none(out.buttons)
        lane = Lane.MARKETING if tp.priority >= MARKETING_PRIORITY_FROM else Lane.SERVICE
        try:
            # one try: a failure is the row's, retried from the database (the sender has
            # already held the chat back on a 429)
            message = await self.sender.text(
                chat_id, out.text, lane=lane, retry=False, parse_mode=ParseMode.HTML,
                reply_markup=markup)
            assert message is not None
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            await _retry(tp, now + timedelta(seconds=wait), f"429: retry after {wait:g}s",
                         count_attempt=False)
            report.retried += 1
        except Forbidden as exc:
            await Customer.filter(id=customer.id).update(unreachable_at=now)
            await _finish(tp, TouchpointStatus.UNREACHABLE, error=str(exc))
            report.unreachable += 1
        except BadRequest as exc:
            log.error("touchpoint %s rejected by Telegram: %s", tp.id, exc)
            await _finish(tp, TouchpointStatus.FAILED, error=str(exc))
            report.failed += 1
            report.errors.append(f"{tp.id}: {exc}")
        except (NetworkError, TelegramError) as exc:
            if tp.attempts >= self.settings.max_attempts:
                await _finish(tp, TouchpointStatus.FAILED,
                              error=f"gave up after {tp.attempts} attempts: {exc}")
                report.failed += 1
            else:
                await _retry(tp, now + backoff(tp.attempts), str(exc))
                report.retried += 1
        else:
            await Touchpoint.filter(id=tp.id, status=TouchpointStatus.SENDING).update(
                status=TouchpointStatus.SENT, sent_at=now, lease_until=None,
                telegram_message_id=message.message_id, last_error="",
            )
            await MessageLog.create(
                customer_id=customer.id, touchpoint_id=tp.id, direction=Direction.OUT,
                chat_id=chat_id, telegram_message_id=message.message_id, kind=tp.kind,
                text=out.text, created_at=now,
            )
            report.sent += 1


async def _finish(tp: Touchpoint, status: TouchpointStatus, *, error: str = "") -> None:
    await Touchpoint.filter(id=tp.id, status=TouchpointStatus.SENDING).update(
        status=status, lease_until=None, last_error=error[:2000], status_reason=error[:200]
    )


async def _retry(tp: Touchpoint, when: datetime, error: str, *, count_attempt: bool = True) -> None:
    """Back to pending for a later try. A 429 is Telegram pacing us, not a failed attempt."""
    values: dict[str, Any] = {
        "status": TouchpointStatus.PENDING, "due_at": when, "lease_until": None,
        "last_error": error[:2000],
    }
    if not count_attempt:
        values["attempts"] = F("attempts") - 1
    await Touchpoint.filter(id=tp.id, status=TouchpointStatus.SENDING).update(**values)


async def expire_stale(now: datetime) -> int:
    """Pending rows whose window has passed are recorded as expired, never sent late."""
    unlinked = Subquery(Customer.filter(telegram_chat_id__isnull=True).values("id"))
    n = await Touchpoint.filter(
        status=TouchpointStatus.PENDING, expires_at__lt=now, customer_id__in=unlinked
    ).update(status=TouchpointStatus.EXPIRED,
             status_reason="the owner had not linked Telegram before it expired")
    n += await Touchpoint.filter(status=TouchpointStatus.PENDING, expires_at__lt=now).update(
        status=TouchpointStatus.EXPIRED, status_reason="its window passed before it could be sent"
    )
    return n


async def reclaim_expired_leases(now: datetime) -> int:
    """A row stuck in "sending" (the process died mid-send) goes back to the queue."""
    return await Touchpoint.filter(status=TouchpointStatus.SENDING, lease_until__lt=now).update(
        status=TouchpointStatus.PENDING, lease_until=None,
        last_error="lease expired while sending (restart?)",
    )


async def skip_excluded(now: datetime) -> int:
    """Due rows for owners who declined follow-ups or blocked the bot are skipped, with why."""
    refused = Subquery(Customer.filter(followups_refused=True).values("id"))
    n = await Touchpoint.filter(
        status=TouchpointStatus.PENDING, due_at__lte=now, customer_id__in=refused,
        priority__lt=MARKETING_PRIORITY_FROM,
    ).update(status=TouchpointStatus.SKIPPED, status_reason="owner declined follow-ups")
    no_consent = Subquery(Customer.filter(marketing_consent=False).values("id"))
    n += await Touchpoint.filter(
        status=TouchpointStatus.PENDING, due_at__lte=now, customer_id__in=no_consent,
        priority__gte=MARKETING_PRIORITY_FROM,
    ).update(status=TouchpointStatus.SKIPPED, status_reason="no marketing consent")
    blocked = Subquery(Customer.filter(unreachable_at__isnull=False).values("id"))
    n += await Touchpoint.filter(
        status=TouchpointStatus.PENDING, due_at__lte=now, customer_id__in=blocked
    ).update(status=TouchpointStatus.SKIPPED, status_reason="owner unreachable: blocked the bot")
    return n


async def claim_due(now: datetime, *, limit: int, lease: timedelta,
                    customer_id: int | None = None) -> list[Touchpoint]:
    """Take up to ``limit`` due rows for linked owners, service before marketing.

    On PostgreSQL concurrent dispatchers skip each other's rows (FOR UPDATE SKIP LOCKED);
    SQLite has one writer, so the transaction alone is enough.
    """
    async with in_transaction():
        query = Touchpoint.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gte=now),
            # consent is checked again here: a withdrawal during a long tick counts at once
            Q(priority__lt=MARKETING_PRIORITY_FROM) | Q(customer__marketing_consent=True),
            Q(priority__gte=MARKETING_PRIORITY_FROM) | Q(customer__followups_refused=False),
            status=TouchpointStatus.PENDING,
            due_at__lte=now,
            customer__telegram_chat_id__isnull=False,
            customer__unreachable_at__isnull=True,
        )
        complaining = Subquery(Ticket.filter(state__in=OPEN_COMPLAINT).values("customer_id"))
        tactless = Q(priority__gte=MARKETING_PRIORITY_FROM) | Q(kind__in=HELD_DURING_COMPLAINT)
        query = query.filter(~tactless | ~Q(customer_id__in=complaining))
        if customer_id is not None:
            query = query.filter(customer_id=customer_id)
        # Objects, not values_list: Tortoise drops FOR UPDATE from a values query.
        locked = await (
            query.order_by("priority", "due_at", "id").limit(limit)
            .select_for_update(skip_locked=True, of=("touchpoint",))
        )
        ids = [tp.id for tp in locked]
        if not ids:
            return []
        await Touchpoint.filter(id__in=ids, status=TouchpointStatus.PENDING).update(
            status=TouchpointStatus.SENDING, lease_until=now + lease, attempts=F("attempts") + 1
        )
    rows = await Touchpoint.filter(id__in=ids, status=TouchpointStatus.SENDING).select_related(
        "customer", "vehicle"
    )
    return sorted(rows, key=lambda r: (r.priority, r.due_at, r.id))
