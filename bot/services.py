"""What handlers and web views need, wired once in ``create_app`` and reached from context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import Settings
from bot.texts import Scripts

if TYPE_CHECKING:
    from telegram import Update
    from telegram.ext import ContextTypes

    from bot.delivery.alerts import ErrorDigest
    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.health import TelegramHealth
    from bot.delivery.sender import Sender
    from bot.handlers.threads import ThreadSide
    from bot.handlers.ticket_side import StaffSide
    from bot.locks import Locks
    from bot.rules import Rules
    from bot.sandbox.live import Sandbox
    from bot.setting_overrides import SettingOverrides
    from bot.tickets import TicketEffects
    from db.models import Customer

SERVICES_KEY = "carebot.services"

# A handler of free text from an owner: returns True when it took the message. Routes run
# in priority order (lower first) before the default "thank you, we got it".
TextRoute = Callable[["Update", "ContextTypes.DEFAULT_TYPE", "Customer | None"], Awaitable[bool]]


@dataclass
class Services:
    settings: Settings
    clock: Clock
    scripts: Scripts
    dispatcher: Dispatcher
    sender: Sender  # every Bot API call that sends, edits, answers or manages a topic
    rules: Rules  # every feature's rules, parsed from settings once (bot.rules)
    text_routes: list[tuple[int, TextRoute]] = field(default_factory=list)
    # What features hang here for one another, set when they register (None: not running
    # in this process: a CLI, a test without that feature, production without the sandbox).
    locks: Locks | None = None  # this process's advisory locks (create_app)
    ticket_effects: TicketEffects | None = None  # what a ticket's change owes (the staff side)
    staff_side: StaffSide | None = None  # the staff group: tickets' topics, cards, relays
    threads: ThreadSide | None = None  # conversations in the staff group
    sandbox: Sandbox | None = None  # `carebot sandbox` only: the emulator and its clock
    telegram: TelegramHealth | None = None  # is the Bot API answering? (create_app)
    alerts: ErrorDigest | None = None  # error alerts' windows, per process (create_app)
    ready: bool = False  # start-up done and not stopping: /readyz
    # the console's setting changes over the environment (create_app; bot.setting_overrides)
    setting_overrides: SettingOverrides | None = None

    def add_text_route(self, priority: int, route: TextRoute) -> None:
        self.text_routes.append((priority, route))
        self.text_routes.sort(key=lambda pr: pr[0])


def services_of(context: Any) -> Services:
    """The Services of a PTB handler context (stored in application.bot_data)."""
    services: Services = context.application.bot_data[SERVICES_KEY]
    return services
