"""What handlers and web views need, wired once in ``create_app`` and reached from context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import Settings
from bot.texts import Scripts

if TYPE_CHECKING:
    from bot.campaigns.dispatcher import Dispatcher

SERVICES_KEY = "carebot.services"


@dataclass
class Services:
    settings: Settings
    clock: Clock
    scripts: Scripts
    dispatcher: Dispatcher


def services_of(context: Any) -> Services:
    """The Services of a PTB handler context (stored in application.bot_data)."""
    services: Services = context.application.bot_data[SERVICES_KEY]
    return services
