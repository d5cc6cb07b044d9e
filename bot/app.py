"""The one place that wires everything: PTB application, dispatcher, scheduler, web app."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import BotCommand, Update
from telegram.ext import Application, ApplicationBuilder, SimpleUpdateProcessor

from bot import locks, touchpoints
from bot.campaigns.dispatcher import Dispatcher, DispatchReport
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.handlers import complaint, errors, marketing, owner, staff, survey
from bot.services import SERVICES_KEY, Services
from bot.telegram_http import AiohttpRequest
from bot.texts import Scripts
from bot.web.server import make_web_app
from db.sqlite import inline_statements

log = logging.getLogger(__name__)

# Feature modules, each with ``register(application, services)`` (handlers, composers,
# text routes) and optionally ``schedule(scheduler, services)`` (APScheduler ticks).
FEATURES: list[Any] = [owner, survey, staff, complaint, marketing, touchpoints]

COMMANDS = [
    ("start", "绑定车主档案 / link your owner file"),
    ("help", "帮助 / help"),
    ("language", "语言 / language"),
    ("stop", "停止接收 / stop messages"),
    ("complain", "投诉与求助 / complaints and help"),
    ("subscribe", "接收优惠活动 / receive offers"),
]

class UpdateProcessor(SimpleUpdateProcessor):
    """Up to ``max_concurrent_updates`` updates at once, each with its SQLite statements run
    on the loop's thread: handlers look up a few rows of one owner or one ticket by index, and
    the worker-thread hop would cost more than the statement (db/sqlite.py)."""

    async def do_process_update(self, update: object, coroutine: Any) -> None:
        with inline_statements():
            await coroutine


# While this instance dispatches, it confirms it still holds the dispatcher lock about this
# often (seconds of sending): a long queue is sent in runs of that length.
LOCK_CHECK_SECONDS = 10.0


class CareBot:
    """A running carebot: start() and stop() bring every part up and down together."""

    def __init__(self, settings: Settings, clock: Clock, scripts_dir: Path | None = None) -> None:
        self.settings = settings
        self.clock = clock
        builder: ApplicationBuilder = (  # type: ignore[type-arg]
            Application.builder()
            .token(settings.bot_token)
            .base_url(f"{settings.telegram_api_url}/bot")
            .base_file_url(f"{settings.telegram_api_url}/file/bot")
            .concurrent_updates(UpdateProcessor(settings.update_concurrency))
            .request(AiohttpRequest(connection_pool_size=256))  # cheaper than httpx per call
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
        )
        if settings.webhook_url:
            builder = builder.updater(None)
        self.application = builder.build()
        self.scripts = Scripts(scripts_dir or settings.scripts_dir)
        self.dispatcher = Dispatcher(self.application.bot, settings, clock, self.scripts)
        self.services = Services(settings, clock, self.scripts, self.dispatcher)
        # Several instances on one PostgreSQL: the singleton jobs and the dispatcher take
        # advisory locks on this process's own connection (no-op on SQLite).
        self.locks = locks.Locks(settings.database_url)
        self.services.extensions[locks.LOCKS_KEY] = self.locks
        self.application.bot_data[SERVICES_KEY] = self.services
        for feature in FEATURES:
            feature.register(self.application, self.services)
        self.application.add_error_handler(errors.report_error)
        self.web_app = make_web_app(self.services, self.application)
        self.scheduler: AsyncIOScheduler | None = None
        self._runner: web.AppRunner | None = None
        self._offset: int | None = None

    async def initialize(self) -> None:
        """Reach Telegram (getMe) without receiving updates yet; what tests start with."""
        await self.application.initialize()

    async def start(self, *, serve_web: bool = True, receive_updates: bool = True,
                    schedule: bool = True) -> None:
        await self.application.initialize()
        if receive_updates:
            await self._set_commands()
            await self.application.start()
            if self.settings.webhook_url:
                await self.application.bot.set_webhook(
                    self.settings.webhook_endpoint, secret_token=self.settings.webhook_secret,
                    allowed_updates=Update.ALL_TYPES,
                )
            elif self.application.updater is not None:
                await self.application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        if serve_web:
            self._runner = web.AppRunner(self.web_app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port)
            await site.start()
            log.info("web on http://%s:%s", self.settings.web_host, self.settings.web_port)
        if schedule:
            self.scheduler = AsyncIOScheduler(timezone=self.settings.tz)
            self.scheduler.add_job(
                self._tick_dispatch, "interval", seconds=self.settings.dispatch_interval,
                id="dispatch", max_instances=1, coalesce=True,
            )
            for feature in FEATURES:
                schedule_jobs = getattr(feature, "schedule", None)
                if schedule_jobs is not None:
                    schedule_jobs(self.scheduler, self.services)
            self.scheduler.start()

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

    async def poll_once(self) -> int:
        """Fetch pending updates once and handle each to completion (tests, sandbox scene)."""
        updates = await self.application.bot.get_updates(offset=self._offset, timeout=0)
        for update in updates:
            self._offset = update.update_id + 1
            # Through the update processor, as in production (statements run inline).
            await self.application.update_processor.process_update(
                update, self.application.process_update(update))
        return len(updates)

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.locks.close()


def _handled(report: DispatchReport) -> int:
    """Rows a dispatch run claimed and settled."""
    return report.sent + report.retried + report.unreachable + report.failed


def create_app(settings: Settings, clock: Clock | None = None,
               scripts_dir: Path | None = None) -> CareBot:
    """Build carebot from typed settings; nothing starts until ``start()``."""
    return CareBot(settings, clock or SystemClock(), scripts_dir)
