"""Operations endpoints: ``/healthz`` (is this instance able to work?), ``/readyz`` (may it
get traffic now?) and ``/metrics``.

``/healthz`` runs one ``SELECT 1`` (bounded by a timeout) and answers 200 or 503, so a load
balancer or systemd watchdog takes an instance whose database is gone out of service. With
the database answering it says ``degraded``, with the reason, while the Bot API has failed
for longer than ``CAREBOT_TELEGRAM_DEGRADED_AFTER`` (still 200: every instance shares the
same Telegram, and taking them all out of service would not bring it back).
``/readyz`` answers 200 only once start-up is done, until the instance starts stopping, and
while its database answers; 503 otherwise.

``/metrics`` speaks the Prometheus text format (version 0.0.4), written by hand: a few
gauges and counters need no client library. Figures that describe the whole deployment
(outbox, tickets) are read from the database with indexed queries on each scrape (the
outbox's counts by status, an index scan, at most once a minute), so every instance reports
the same values and nothing is lost in a restart; figures about this
process (webhook requests, updates being handled) are kept in memory and carry the usual
Prometheus counter semantics (reset to zero when the process starts). A scrape must send
``Authorization: Bearer <CAREBOT_METRICS_TOKEN>``; without a token configured ``/metrics``
answers 401 unless ``CAREBOT_METRICS_OPEN=true`` says the port is private.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from tortoise import Tortoise
from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from bot import inbox
from bot.delivery.failures import open_failures
from bot.delivery.health import KINDS
from bot.schedule import in_quiet_hours
from bot.tickets import ACTIVE_STATES
from bot.version import VERSION
from bot.web.auth import bearer_matches
from bot.web.keys import INBOX, SERVICES, WEBHOOK_PATH
from db.models import Ticket, Touchpoint, TouchpointStatus

log = logging.getLogger(__name__)

DB_TIMEOUT = 2.0  # seconds a health check or a scrape waits for the database
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Upper bounds (seconds) of the webhook latency histogram: where a p99 of 200 ms sits.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
FINAL_STATUSES = ("sent", "failed", "unreachable", "expired", "skipped")
OPEN_STATUSES = ("pending", "sending", "held")


@dataclass
class WebhookStats:
    """This process's webhook requests: by answer, and a latency histogram."""

    results: Counter[str] = field(default_factory=Counter)
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    seconds: float = 0.0

    def observe(self, status: int, seconds: float) -> None:
        result = {200: "accepted", 403: "forbidden", 400: "bad_request",
                  503: "busy"}.get(status, str(status))
        self.results[result] += 1
        self.count += 1
        self.seconds += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1


STATS = web.AppKey("ops_webhook_stats", WebhookStats)


# --------------------------------------------------------------------------- the text format


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Builds the text: one HELP and TYPE per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]] | float) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        if isinstance(samples, (int, float)):
            samples = [({}, samples)]
        for labels, value in samples:
            self.sample(name, labels, value)

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


# --------------------------------------------------------------------------- database figures


async def ping_database() -> None:
    """One ``SELECT 1`` on the app's connection; raises when the database does not answer."""
    await Tortoise.get_connection("default").execute_query("SELECT 1")


async def _with_timeout(what: Callable[[], Awaitable[Any]]) -> Any:
    return await asyncio.wait_for(what(), DB_TIMEOUT)


@dataclass
class StatusCounts:
    """Outbox rows by status: a scan of the ``touchpoint_status_due`` index (about 0.2 s per
    million rows), so it is refreshed at most every ``STATUS_EVERY`` seconds per process."""

    counts: dict[str, int] = field(default_factory=dict)
    at: float | None = None  # time.monotonic() of the last count

    async def get(self) -> dict[str, int]:
        if self.at is None or time.monotonic() - self.at >= STATUS_EVERY:
            rows = await Touchpoint.all().annotate(n=Count("id")).group_by("status") \
                .values_list("status", "n")
            self.counts = {str(k): int(v) for k, v in rows}
            self.at = time.monotonic()
        return self.counts


STATUS_EVERY = 60.0


async def database_figures(now: datetime, status_counts: StatusCounts | None = None
                           ) -> dict[str, Any]:
    """The deployment-wide figures: indexed queries (``touchpoint_status_due``,
    ``ticket_state_due``; the ticket table is small), the status counts cached a minute."""
    by_status = await (status_counts or StatusCounts()).get()
    due = Touchpoint.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gte=now),
        status=TouchpointStatus.PENDING, due_at__lte=now,
    )
    sendable = due.filter(customer__telegram_chat_id__isnull=False,
                          customer__unreachable_at__isnull=True)
    depth = await sendable.count()
    oldest = await sendable.order_by("due_at").first().values_list("due_at", flat=True) \
        if depth else None
    waiting = await due.filter(customer__telegram_chat_id__isnull=True).count()
    active = [s.value for s in ACTIVE_STATES]
    open_by_level = dict(await Ticket.filter(state__in=active).annotate(n=Count("id"))
                         .group_by("level").values_list("level", "n"))
    overdue = await Ticket.filter(state__in=active, due_at__lte=now).count()
    breached_open = await Ticket.filter(state__in=active, breaches__gt=0).count()
    breaches = await Ticket.all().annotate(total=Sum("breaches")).first().values_list("total")
    updates = await inbox.stats(now)
    return {
        "inbox_depth": updates.depth,
        "inbox_oldest_seconds": updates.oldest_seconds,
        "inbox_parked": updates.parked,
        "failed_sends": await open_failures(),
        "touchpoints": by_status,
        "queue_depth": depth,
        "queue_oldest_seconds": max(0.0, (now - oldest).total_seconds())
        if isinstance(oldest, datetime) else 0.0,
        "waiting_for_link": waiting,
        "tickets_open": {str(k): int(v) for k, v in open_by_level.items()},
        "tickets_overdue": overdue,
        "tickets_open_breached": breached_open,
        "ticket_breaches": int((breaches[0] if breaches else 0) or 0),
    }


# --------------------------------------------------------------------------- routes


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers ``SELECT 1`` within the timeout, else 503; ``status``
    is ``degraded`` with a ``reason`` while the Bot API has failed for too long."""
    started = time.perf_counter()
    try:
        await _with_timeout(ping_database)
    except Exception as exc:
        log.warning("health check: the database did not answer: %s", type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": type(exc).__name__,
                                  "version": VERSION}, status=503)
    body: dict[str, Any] = {"status": "ok", "database": "ok",
                            "db_ms": round((time.perf_counter() - started) * 1000, 1),
                            "telegram": "ok", "version": VERSION}
    svc = request.app[SERVICES]
    telegram = svc.telegram
    if telegram is not None and not telegram.up:
        body["telegram"] = "failing"
        reason = telegram.degraded_reason(svc.clock.now())
        if reason is not None:
            body.update(status="degraded", reason=reason, telegram="unreachable")
    return web.json_response(body)


async def readyz(request: web.Request) -> web.Response:
    """200 when this instance can serve: start-up done, not stopping, the database
    answering; else 503 with why (a load balancer's readiness check)."""
    if not request.app[SERVICES].ready:
        return web.json_response({"status": "not ready", "reason": "starting or stopping"},
                                 status=503)
    try:
        await _with_timeout(ping_database)
    except Exception as exc:
        return web.json_response({"status": "not ready", "reason": "the database did not "
                                  "answer", "database": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready"})


def _metrics_refusal(request: web.Request) -> str:
    """Why this scrape may not read the figures ("" when it may): with a token set, the
    token; without one, only when ``CAREBOT_METRICS_OPEN`` says the port is private."""
    settings = request.app[SERVICES].settings
    token = settings.metrics_token
    if not token:
        return "" if settings.metrics_open else (
            "/metrics is closed: set CAREBOT_METRICS_TOKEN and scrape with 'Authorization: "
            "Bearer <token>' (or CAREBOT_METRICS_OPEN=true on a private network)\n")
    if bearer_matches(request, token):
        return ""
    return "send 'Authorization: Bearer <METRICS_TOKEN>'\n"


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; 401 without the token (``CAREBOT_METRICS_TOKEN``), or with no
    token configured unless ``CAREBOT_METRICS_OPEN`` is true."""
    refusal = _metrics_refusal(request)
    if refusal:
        return web.Response(status=401, text=refusal, headers={"WWW-Authenticate": "Bearer"})
    svc = request.app[SERVICES]
    now = svc.clock.now()
    out = Exposition()
    started = time.perf_counter()
    figures: dict[str, Any] | None
    try:
        figures = await _with_timeout(lambda: database_figures(now, request.app[COUNTS]))
    except Exception as exc:
        log.warning("metrics: the database did not answer: %r", exc)
        figures = None
    out.family("carebot_up", "gauge",
               "1 when the database answered this scrape, else 0.", figures is not None)
    out.family("carebot_scrape_database_seconds", "gauge",
               "Time the database queries of this scrape took.",
               round(time.perf_counter() - started, 6))
    if figures is not None:
        _database_families(out, figures)
    out.family("carebot_quiet_hours", "gauge",
               "1 while the quiet hours hold scheduled messages back, else 0.",
               in_quiet_hours(now, svc.settings.tz, svc.settings.quiet))
    _process_families(out, request.app)
    _telegram_families(out, request.app, now)
    return web.Response(body=out.text().encode(), headers={"Content-Type": CONTENT_TYPE})


def _database_families(out: Exposition, f: dict[str, Any]) -> None:
    out.family("carebot_inbox_depth", "gauge",
               "Telegram updates stored and not handled yet, all instances.", f["inbox_depth"])
    out.family("carebot_inbox_oldest_seconds", "gauge",
               "How long the oldest unhandled update has waited (0 when none).",
               round(f["inbox_oldest_seconds"], 3))
    out.family("carebot_inbox_parked", "gauge",
               "Updates whose handler kept failing, waiting for a person (carebot inbox).",
               f["inbox_parked"])
    out.family("carebot_failed_sends", "gauge",
               "Messages that could not be sent after every retry and nobody has looked at "
               "yet (console, Today).", f["failed_sends"])
    rows: dict[str, int] = f["touchpoints"]
    out.family("carebot_touchpoints_total", "counter",
               "Outbox messages that reached a final status (sent, failed, unreachable: the "
               "owner blocked the bot, expired, skipped), all time; recounted every minute.",
               [({"status": s}, rows.get(s, 0)) for s in FINAL_STATUSES])
    out.family("carebot_outbox_rows", "gauge",
               "Outbox messages not final yet, by status (pending includes future ones); "
               "recounted every minute.",
               [({"status": s}, rows.get(s, 0)) for s in OPEN_STATUSES])
    out.family("carebot_queue_depth", "gauge",
               "Messages due now for linked, reachable owners and not sent yet.",
               f["queue_depth"])
    out.family("carebot_queue_oldest_seconds", "gauge",
               "How long the oldest message in the queue has been due (0 when empty).",
               round(f["queue_oldest_seconds"], 3))
    out.family("carebot_queue_waiting_for_link", "gauge",
               "Messages due for owners who have not linked Telegram yet (sent once they do).",
               f["waiting_for_link"])
    levels = ("agent", "advisor", "supervisor", "manager")
    out.family("carebot_tickets_open", "gauge",
               "Complaint tickets not resolved or closed, by escalation level.",
               [({"level": lv}, f["tickets_open"].get(lv, 0)) for lv in levels])
    out.family("carebot_tickets_overdue", "gauge",
               "Open tickets whose running deadline has passed and that the deadline check "
               "has not escalated yet (stays above 0 when the check is not running).",
               f["tickets_overdue"])
    out.family("carebot_tickets_open_breached", "gauge",
               "Open tickets that have missed at least one 211 deadline.",
               f["tickets_open_breached"])
    out.family("carebot_ticket_deadline_breaches_total", "counter",
               "211 deadlines missed, all tickets, all time.", f["ticket_breaches"])


def _process_families(out: Exposition, app: web.Application) -> None:
    stats = app[STATS]
    results = ("accepted", "forbidden", "bad_request", "busy")
    out.family("carebot_webhook_requests_total", "counter",
               "Telegram webhook requests this process answered, by result.",
               [({"result": r}, stats.results.get(r, 0)) for r in results]
               + [({"result": r}, n) for r, n in sorted(stats.results.items())
                  if r not in results])
    name = "carebot_webhook_request_seconds"
    out.lines.append(f"# HELP {name} Time to answer a webhook request (queueing the update, "
                     "waiting for room when too many wait).")
    out.lines.append(f"# TYPE {name} histogram")
    for bound, n in zip(LATENCY_BUCKETS, stats.buckets, strict=True):
        out.sample(f"{name}_bucket", {"le": repr(bound)}, n)
    out.sample(f"{name}_bucket", {"le": "+Inf"}, stats.count)
    out.sample(f"{name}_sum", {}, round(stats.seconds, 6))
    out.sample(f"{name}_count", {}, stats.count)
    worker = app[INBOX]
    out.family("carebot_updates_in_progress", "gauge",
               "Telegram updates this process is handling right now.", worker.in_progress)
    out.family("carebot_updates_retried_total", "counter",
               "Handler failures of stored updates in this process (each one tried again or "
               "parked).", worker.failures)
    sender = app[SERVICES].sender
    lanes = ("reply", "staff", "service", "marketing")
    out.family("carebot_sends_total", "counter",
               "Messages this process sent to Telegram, by lane.",
               [({"lane": lane}, sender.stats.get(f"sent_{lane}", 0)) for lane in lanes])
    out.family("carebot_telegram_rate_limited_total", "counter",
               "429 Too Many Requests answers this process received (should stay 0).",
               sender.stats.get("429", 0))
    out.family("carebot_send_retries_total", "counter",
               "Bot API calls this process tried again (429, network errors, timeouts).",
               sender.stats.get("retries", 0))
    out.family("carebot_sends_failed_total", "counter",
               "Bot API calls this process gave up on after every retry (each recorded for "
               "staff).", sender.stats.get("failed", 0))


def _telegram_families(out: Exposition, app: web.Application, now: datetime) -> None:
    svc = app[SERVICES]
    health = svc.telegram
    if health is None:
        return
    out.family("carebot_telegram_up", "gauge",
               "1 while this process's Bot API calls get answers, 0 while they all fail "
               "(timeouts, network errors, 5xx).", health.up)
    out.family("carebot_telegram_last_success_age_seconds", "gauge",
               "Seconds since the Bot API last answered this process (since start-up when "
               "it never has).", round(health.last_success_age(now), 3))
    out.family("carebot_telegram_errors_total", "counter",
               "Bot API calls of this process that failed or were refused, by kind.",
               [({"kind": k}, health.errors.get(k, 0)) for k in KINDS])
    webhook = bool(svc.settings.webhook_url)
    out.family("carebot_updates_lag_seconds", "gauge",
               "Polling: seconds since getUpdates last answered (30 at most when all is "
               "well). Webhook: seconds Telegram has held updates it has not delivered.",
               round(health.updates_lag(now, webhook=webhook), 3))


@web.middleware
async def _time_webhook(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    """Count and time the webhook's answers (only that route; others pass straight on)."""
    if request.path != request.app[WEBHOOK_PATH]:
        return await handler(request)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        request.app[STATS].observe(exc.status, time.perf_counter() - started)
        raise
    request.app[STATS].observe(response.status, time.perf_counter() - started)
    return response


COUNTS = web.AppKey("ops_status_counts", StatusCounts)


def add_routes(app: web.Application) -> None:
    """``/healthz`` and ``/metrics``, and the webhook timing; called by ``make_web_app``
    (which has set the shared keys, ``WEBHOOK_PATH`` among them)."""
    app[STATS] = WebhookStats()
    app[COUNTS] = StatusCounts()
    app.middlewares.append(_time_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
