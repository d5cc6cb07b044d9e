"""What every part of a campaign shares: its kind and priority in the outbox, the button
kinds, why an owner is left out, the error that says what to do, and the rules from Settings."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.config import QuietHours, Settings
from bot.delivery.dispatcher import MARKETING_PRIORITY_FROM
from db.models import (
    TicketState,
    TouchpointStatus,
)

log = logging.getLogger(__name__)

KIND = "campaign"
PRIORITY = MARKETING_PRIORITY_FROM
BUTTON_KINDS = ("interested", "book", "url")
MAX_BUTTONS = 3
# Callback data: "mk:<campaign id>:<code>"; codes below (and "mk:c:y/n" for the question).
# ("cp:" as first planned is taken by complaints, issue 5.)
BUTTON_CODES = {"interested": "i", "book": "b", "unsubscribe": "u"}
CODE_BUTTONS = {v: k for k, v in BUTTON_CODES.items()}
EXCLUSION_REASONS = ("opted_out", "no_consent", "not_linked", "unreachable", "capped")
OPEN_TICKET = [s for s in TicketState if s != TicketState.CLOSED]
LIVE = (TouchpointStatus.PENDING, TouchpointStatus.SENDING, TouchpointStatus.HELD)
URL = re.compile(r"^https?://[^\s/]+\S*$")


class CampaignError(Exception):
    """A request about a campaign that cannot be done; the message says why and what to do."""


def occasion_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


@dataclass(frozen=True)
class CampaignRules:
    """What launching and sending need from Settings."""

    tz: ZoneInfo
    quiet: QuietHours | None
    weekly_cap: int = 2
    valid_days: float = 3.0
    event_lead_days: int = 14


def campaign_rules(settings: Settings) -> CampaignRules:
    return CampaignRules(
        tz=settings.tz, quiet=settings.quiet, weekly_cap=settings.marketing_weekly_cap,
        valid_days=settings.campaign_valid_days,
        event_lead_days=settings.campaign_event_lead_days,
    )
