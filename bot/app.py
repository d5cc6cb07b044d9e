"""The one place that wires everything: PTB application, dispatcher, scheduler, web app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from pathlib import Path

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import BotCommand, Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot import inbox, locks
from bot.clock import Clock, Pace, RealPace, SystemClock
from bot.config import Settings
from bot.delivery.alerts import ErrorDigest
from bot.delivery.dispatcher import Dispatcher, DispatchReport
from bot.delivery.failures import Failures
from bot.delivery.health import TelegramHealth
from bot.delivery.limits import Limits
from bot.delivery.sender import Sender
from bot.features import FEATURES, TICKING
from bot.handlers import errors
from bot.rules import parse_rules
from bot.services import SERVICES_KEY, Services
from bot.setting_overrides import SettingOverrides
from bot.startup import StartupError
from bot.telegram_http import AiohttpRequest
from bot.terminal_words import t
from bot.texts import Scripts
from bot.web import access_log
from bot.web.access_log import AccessLog
from bot.web.server import make_web_app
from db.models import InboxUpdate

log = logging.getLogger(__name__)

COMMANDS = [
    ("start", "绑定车主档案 / link your owner file"),
    ("help", "帮助 / help"),
    ("language", "语言 / language"),
    ("title", "称呼 / how we address you"),
    ("stop", "停止接收 / stop messages"),
    ("book", "预约到店 / book a visit"),
    ("complain", "投诉与求助 / complaints and help"),
    ("subscribe", "接收优惠活动 / receive offers"),
]

# How often an instance looks for script edits and setting changes saved on another (one
# indexed read each).
SCRIPTS_EVERY = 5.0

# While this instance dispatches, it confirms it still holds the dispatcher lock about this
# often (seconds of sending): a long queue is sent in runs of that length.
LOCK_CHECK_SECONDS = 10.0
POLL_TIMEOUT = 30  # seconds a long poll waits at Telegram for updates
SHARE_EVERY = 10.0  # seconds between counts of the instances sharing the global rate
ALERTS_EVERY = 30.0  # seconds between looks for error alert windows that closed
PROBE_EVERY = 30.0  # seconds between webhook probes (getWebhookInfo: reachable? pending?)


class CareBot:
    """A running carebot: start() and stop() bring every part up and down together."""

    def __init__(self, settings: Settings, clock: Clock, scripts_dir: Path | None = None,
                 pace: Pace | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.pace = pace or RealPace()
        # Every Bot API call's outcome lands here: is Telegram reachable? (/healthz, /metrics)
        self.telegram = TelegramHealth(clock, degraded_after=settings.telegram_degraded_after)
        # Kept to close them when getMe failed: PTB then never shuts them down itself.
        self._requests = (AiohttpRequest(connection_pool_size=256, observer=self.telegram),
                          AiohttpRequest(connection_pool_size=1, observer=self.telegram))
        builder: ApplicationBuilder = (  # type: ignore[type-arg]
            Application.builder()
            .token(settings.bot_token)
            .base_url(f"{settings.telegram_api_url}/bot")
            .base_file_url(f"{settings.telegram_api_url}/file/bot")
            .request(self._requests[0])  # cheaper than httpx per call
            .get_updates_request(self._requests[1])
        )
        builder = builder.updater(None)  # updates come through the inbox (bot/inbox.py)
        self.application = builder.build()
        self.scripts = Scripts(scripts_dir or settings.scripts_dir)
        limits = Limits(settings.send_rate, per_chat_interval=settings.per_chat_interval,
                        per_chat_burst=settings.per_chat_burst,
                        group_per_minute=settings.group_per_minute, pace=self.pace)
        failures = Failures(clock)
        self.sender = Sender(self.application.bot, limits, deadline=settings.reply_deadline,
                             record_failure=failures.record,
                             mark_unreachable=failures.mark_unreachable)
        self.dispatcher = Dispatcher(self.sender, settings, clock, self.scripts)
        # Every feature's rules, parsed once here (a wrong value stops start-up, naming it).
        self.services = Services(settings, clock, self.scripts, self.dispatcher, self.sender,
                                 parse_rules(settings))
        # Several instances on one PostgreSQL: the singleton jobs and the dispatcher take
        # advisory locks on this process's own connection (no-op on SQLite).
        self.locks = locks.Locks(settings.database_url)
        self.services.locks = self.locks
        self.services.telegram = self.telegram
        self.services.alerts = ErrorDigest(settings.error_alert_minutes)
        # The console's setting changes, over the environment, on every instance: checked
        # before each dispatcher tick, by a job and after the console's own saves.
        self.services.setting_overrides = SettingOverrides(settings, self._rules_changed)
        self.dispatcher.before_tick.append(self.services.setting_overrides.refresh)
        self.application.bot_data[SERVICES_KEY] = self.services
        # Every update is stored before Telegram hears "got it", then handled from the inbox.
        self.inbox = inbox.Inbox(self.application, clock,
                                 concurrency=settings.update_concurrency,
                                 on_parked=self._alert_parked, locks=self.locks)
        for feature in FEATURES:
            feature.register(self.application, self.services)
        self.application.add_error_handler(errors.report_error)
        self.web_app = make_web_app(self.services, self.application, self.inbox)
        self.scheduler: AsyncIOScheduler | None = None
        self._runner: web.AppRunner | None = None
        self._offset: int | None = None
        self._polling: asyncio.Task[None] | None = None

    async def initialize(self) -> None:
        """Reach Telegram (getMe) without receiving updates yet; what tests start with."""
        await self.application.initialize()

    async def start(self, *, serve_web: bool = True, receive_updates: bool = True,
                    schedule: bool = True) -> None:
        await self.application.initialize()
        await self.services.scripts.refresh()  # the console's script edits, from the start
        await self._overrides().refresh()  # and its setting changes
        await self._share_rate()  # takes this instance's slot before it claims anything
        if receive_updates:
            await self._set_commands()
            await self.application.start()
            self.inbox.start(single_process=self.settings.database_url.startswith("sqlite"))
            if self.settings.webhook_url:
                await self.application.bot.set_webhook(
                    self.settings.webhook_endpoint, secret_token=self.settings.webhook_secret,
                    allowed_updates=Update.ALL_TYPES,
                )
            else:
                await self.application.bot.delete_webhook()
                self._polling = asyncio.create_task(self._poll_forever())
        if serve_web:
            # CAREBOT_ACCESS_LOG: one safe line per request (bot/web/access_log.py), or none
            self._runner = web.AppRunner(
                self.web_app, access_log_class=AccessLog,
                access_log=access_log.LOGGER if self.settings.access_log else None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port)
            try:
                await site.start()
            except OSError as exc:  # taken, or a host this machine does not have
                raise StartupError(t("startup.web_port_taken", host=self.settings.web_host,
                                     port=self.settings.web_port,
                                     why=exc.strerror or exc)) from exc
            log.info("web on http://%s:%s", self.settings.web_host, self.settings.web_port)
        if schedule:
            self.scheduler = AsyncIOScheduler(timezone=self.settings.tz)
            self.scheduler.add_job(self._share_rate, "interval", seconds=SHARE_EVERY,
                                   id="share_rate", max_instances=1, coalesce=True)
            self.scheduler.add_job(
                self._tick_dispatch, "interval", seconds=self.settings.dispatch_interval,
                id="dispatch", max_instances=1, coalesce=True,
            )
            self.scheduler.add_job(self._refresh_console_changes, "interval",
                                   seconds=SCRIPTS_EVERY, id="console_changes",
                                   max_instances=1, coalesce=True)
            self.scheduler.add_job(self.tell_error_digests, "interval", seconds=ALERTS_EVERY,
                                   id="error_digests", max_instances=1, coalesce=True)
            if receive_updates and self.settings.webhook_url:
                self.scheduler.add_job(self.probe_webhook, "interval", seconds=PROBE_EVERY,
                                       id="webhook_probe", max_instances=1, coalesce=True)
            for ticking in TICKING:
                ticking.schedule(self.scheduler, self.services)
            self.scheduler.start()
        self.services.ready = True  # /readyz: this instance can serve

    async def _share_rate(self) -> None:
        """Telegram's global rate is the deployment's: each running instance takes its part."""
        try:
            self.sender.limits.share(await self.locks.instances())
        except Exception:  # a failed count must not stop start-up or the scheduler
            log.exception("could not count the running instances; keeping the last share")

    async def _refresh_console_changes(self) -> None:
        """A script edited or a setting changed in the console on any instance is used here
        within seconds (each append-only table read again only when its newest id moved)."""
        checks = (("scripts", self.services.scripts.refresh),
                  ("settings", self._overrides().refresh))
        for what, refresh in checks:
            try:
                if await refresh():
                    log.info("%s: the console's changes reloaded", what)
            except Exception:  # the database away: keep what is loaded, try again later
                log.exception("could not check the console's %s changes", what)

    async def tell_error_digests(self) -> None:
        """Error alert windows that closed: their counts told to the staff group, once."""
        try:
            await errors.tell_digests(self.services)
        except Exception:  # the database away: the windows stay, the next tick tells them
            log.exception("could not tell the error alerts' digests")

    async def probe_webhook(self) -> None:
        """Webhook mode: ask Telegram what it holds for us. The answer (or its absence) tells
        ``self.telegram`` whether Telegram is reachable while nothing else calls it, and how
        many updates wait (``/metrics``: ``carebot_updates_lag_seconds``)."""
        try:
            info = await self.application.bot.get_webhook_info()
        except TelegramError as exc:  # already counted by the HTTP layer, said once there
            log.debug("webhook probe: %s", type(exc).__name__)
            return
        self.telegram.webhook_pending(info.pending_update_count)

    def _rules_changed(self, settings: Settings) -> None:
        """The console changed settings: every feature's rules parsed again, once."""
        self.services.rules = parse_rules(settings)

    def _overrides(self) -> SettingOverrides:
        assert self.services.setting_overrides is not None  # set in __init__
        return self.services.setting_overrides

    async def _set_commands(self) -> None:
        await self.application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])

    async def _tick_dispatch(self) -> None:
        """Send what is due, if this instance holds the dispatcher lock; else stand by.

        One instance sends, so the global rate holds across instances. A long queue is sent
        in runs of about ``LOCK_CHECK_SECONDS``, the lock confirmed between runs: a process
        whose lock connection broke stops within one run while another takes over."""
        settings = self.settings
        batches = max(1, math.ceil(settings.send_rate * LOCK_CHECK_SECONDS
                                   / settings.dispatch_batch))
        try:
            while await self.locks.keep(locks.DISPATCHER):
                report = await self.dispatcher.dispatch_due(max_batches=batches)
                if report.sent or report.failed or report.unreachable:
                    log.info("dispatched: %s", report)
                if _handled(report) < batches * settings.dispatch_batch:
                    return  # the queue is drained (or quiet hours): wait for the next tick
        except Exception:  # a failed tick must not kill the scheduler
            log.exception("dispatcher tick failed; the next tick will retry")

    async def _fetch(self, wait: int) -> int:
        """One getUpdates (waiting up to ``wait`` seconds at Telegram for updates); the batch
        is stored before the next call confirms its offset."""
        updates = await self.application.bot.get_updates(
            offset=self._offset, timeout=wait, allowed_updates=Update.ALL_TYPES)
        if updates:
            await inbox.store([u.to_dict() for u in updates], self.clock.now())
            self._offset = updates[-1].update_id + 1
            self.inbox.wake()
        return len(updates)

    async def _poll_forever(self) -> None:
        """Long polling into the inbox; Telegram or the network failing only slows it down."""
        pause = 1.0
        while True:
            try:
                await self._fetch(wait=POLL_TIMEOUT)
                pause = 1.0
            except asyncio.CancelledError:
                raise
            except NetworkError as exc:  # TimedOut too: said once by self.telegram
                log.debug("polling: %s; trying again in %gs", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception as exc:  # the database, a refusal by Telegram...
                log.warning("polling: %s; trying again in %gs", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    async def poll_once(self) -> int:
        """Fetch pending updates once, store them, and handle everything that may be handled
        now to completion (tests, the sandbox scene): the production path, stepwise."""
        fetched = await self._fetch(wait=0)
        await self.inbox.drain()
        return fetched

    async def _alert_parked(self, row: InboxUpdate) -> None:
        """Tell the staff group once that an owner's update could not be handled."""
        await errors.report_parked(self.services, row)

    async def stop(self) -> None:
        self.services.ready = False  # /readyz 503: the load balancer stops sending here
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.inbox.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        for request in self._requests:  # a no-op after a clean shutdown
            await request.shutdown()
        await self.locks.close()


def _handled(report: DispatchReport) -> int:
    """Rows a dispatch run claimed and settled."""
    return report.sent + report.retried + report.unreachable + report.failed


def create_app(settings: Settings, clock: Clock | None = None,
               scripts_dir: Path | None = None, pace: Pace | None = None) -> CareBot:
    """Build carebot from typed settings; nothing starts until ``start()``. ``pace``: time
    for pacing Telegram calls (a test's virtual time, shared with its emulator)."""
    return CareBot(settings, clock or SystemClock(), scripts_dir, pace)
