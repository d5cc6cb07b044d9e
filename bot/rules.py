"""Every feature's rules, parsed from Settings once, where the app is wired (create_app),
and reached as ``services.rules``: no request or tick turns settings into rules again.

The entry points without Services (the CLI's commands, the sandbox's scene) parse what they
need once at their own start with the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.bookings import BookingRules, booking_rules
from bot.calls import CallRules, call_rules
from bot.campaigns.policy import CampaignRules, campaign_rules
from bot.config import Settings
from bot.journeys.occasions import OccasionRules, occasion_rules
from bot.journeys.plans import JourneyRules, journey_rules
from bot.kpi_review import workshop_rules
from bot.recall import RecallRules, recall_rules
from bot.surveys.rules import SurveyRules, survey_rules
from bot.ticket_rules import SlaRules, sla_rules
from bot.workshop_kpi import WorkshopRules


@dataclass(frozen=True)
class Rules:
    """The rules of each feature, as its domain functions take them."""

    journeys: JourneyRules
    occasions: OccasionRules
    surveys: SurveyRules
    tickets: SlaRules
    campaigns: CampaignRules
    bookings: BookingRules
    calls: CallRules
    recall: RecallRules
    workshop: WorkshopRules


def parse_rules(settings: Settings) -> Rules:
    """All of them from ``settings``; a value no rule can take raises, naming it."""
    return Rules(
        journeys=journey_rules(settings), occasions=occasion_rules(settings),
        surveys=survey_rules(settings), tickets=sla_rules(settings),
        campaigns=campaign_rules(settings), bookings=booking_rules(settings),
        calls=call_rules(settings), recall=recall_rules(settings),
        workshop=workshop_rules(settings),
    )
