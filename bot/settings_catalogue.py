"""What each setting is, for the people who run carebot: its group on the console's
Settings page, whether the console may change it while carebot runs, and how its value
may be shown (issue 18 point 4).

Titles and one-line explanations are the console's strings, by key, in both languages
(``setting.<name>.title`` and ``.help`` in ``bot/web/console/i18n/*/settings.toml``);
tests/test_settings_catalogue.py fails when a setting is added without a group or without
its words in either language.

*Editable* means: read where it is used (from the running Settings or the rules built from
them), so a change takes effect on every instance at its next check, without a restart
(bot/setting_overrides.py). Not editable: secrets, URLs, the database, Telegram's chats and
limits, ports, paths, the web host, the console's security, and what is fixed when carebot
starts (the scheduler's daily times and intervals, the time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.config_values import SECRETS, mask_url

#: Where the deployment keeps its environment file (docs/deploy.md).
ENV_FILE = "/etc/carebot/carebot.env"

# Each group's settings, in the page's order; a name ending in "*" may be changed in the
# console.
_GROUPS: dict[str, tuple[str, ...]] = {
    "dealership": (
        "dealer_name*", "dealer_phone*", "holidays*", "timezone", "review_url",
    ),
    "followup": (
        "quiet_hours*", "exchange_gap_hours*", "checkin_after_hours*", "checkin_expiry_hours*",
        "followup_day*", "followup_time*", "followup_grace_days*",
        "visit_day*", "visit_time*", "visit_grace_days*",
        "first_service_day*", "first_service_time*", "first_service_deadline_day*",
        "service_followup_day*", "service_followup_time*", "service_followup_deadline_day*",
        "major_repair_followup_days*", "second_followup_day*", "second_followup_time*",
        "service_interval_months*", "service_interval_km*", "service_intervals*",
        "service_due_lead_days*", "service_due_time*", "service_due_grace_days*",
        "repair_reminder_days*", "insurance_lead_days*", "licence_lead_days*",
        "scan_catchup_days*", "scan_time",
    ),
    "surveys": (
        "survey_questionnaires*", "survey_open_days*", "survey_low_threshold*",
        "survey_change_hours*", "survey_max_reasks*", "survey_handover_minutes*",
        "call_unanswered_days*", "call_max_attempts*", "call_times*",
        "recall_after_months*", "recall_time*", "recall_valid_days*",
    ),
    "complaints": (
        "ticket_business_hours*", "ticket_business_days*", "ticket_first_answer_hours*",
        "ticket_handler_answer_days*", "ticket_level_answer_hours*", "ticket_followup_days*",
        "handling_score_threshold*",
        "route_inquiry*", "route_insurance_lead*", "route_booking_request*",
        "route_campaign_lead*", "conversation_first_answer_hours*",
        "first_answer_hours_inquiry*", "first_answer_hours_insurance_lead*",
        "first_answer_hours_booking_request*", "first_answer_hours_campaign_lead*",
        "conversation_remind_minutes*", "reply_window_hours*",
    ),
    "campaigns": (
        "marketing_weekly_cap*", "campaign_valid_days*", "campaign_event_lead_days*",
        "campaign_tick_seconds",
    ),
    "bookings": (
        "booking_slots*", "booking_capacity*", "booking_weekdays*", "booking_horizon_days*",
        "booking_closed_days*", "booking_closed_on_holidays*", "booking_reminder_time*",
        "booking_visit_days*", "booking_digest_time",
    ),
    "reports": (
        "kpi_targets*", "kpi_first_service_days*", "kpi_repeat_repair_days*",
        "report_daily_time*", "report_weekly_day*", "report_weekly_time*",
        "report_monthly_day*", "report_monthly_time*", "report_to_advisors*", "report_chat_id",
    ),
    "telegram": (
        "bot_token", "staff_chat_id", "telegram_api_url", "webhook_url", "webhook_secret",
        "send_rate", "per_chat_interval", "per_chat_burst", "group_per_minute",
        "reply_deadline", "telegram_degraded_after", "sandbox_telegram_port",
    ),
    "console": (
        "web_host", "web_port", "session_secret", "session_hours", "console_lock_failures",
        "console_lock_minutes", "console_secure_cookie", "console_address_failures",
        "console_address_minutes", "trusted_proxies", "api_key", "metrics_token",
        "metrics_open",
    ),
    "operations": (
        "database_url", "scripts_dir", "holidays_file", "update_concurrency",
        "dispatch_batch", "dispatch_concurrency", "dispatch_interval", "max_attempts",
        "lease_seconds", "log_format", "access_log", "error_alert_minutes",
    ),
}

GROUPS: tuple[str, ...] = tuple(_GROUPS)


@dataclass(frozen=True)
class Entry:
    """One setting as the page shows it."""

    name: str  # the Settings field
    group: str
    editable: bool

    @property
    def variable(self) -> str:
        return f"CAREBOT_{self.name.upper()}"

    @property
    def secret(self) -> bool:
        return self.name in SECRETS


def _entries() -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for group, names in _GROUPS.items():
        for raw in names:
            name = raw.rstrip("*")
            out[name] = Entry(name, group, raw.endswith("*"))
    return out


CATALOGUE: dict[str, Entry] = _entries()
EDITABLE: frozenset[str] = frozenset(n for n, e in CATALOGUE.items() if e.editable)


def listed_twice() -> list[str]:
    """Names that appear in more than one group (a test keeps this empty)."""
    seen: list[str] = [raw.rstrip("*") for names in _GROUPS.values() for raw in names]
    return sorted({n for n in seen if seen.count(n) > 1})


def text_of(name: str, value: Any) -> str:
    """A value as typed in an environment file or the console's field: ``true``/``false``,
    ``""`` for none, numbers without a needless ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def shown(name: str, value: Any) -> str | None:
    """A value as the page may show it; None for a secret (the page says set / not set).
    A database URL loses its password."""
    if name in SECRETS:
        return None
    if name == "database_url":
        return mask_url(str(value))
    return text_of(name, value)


def default_of(name: str) -> Any:
    """The value carebot uses when neither the environment nor the console sets it."""
    return Settings.model_fields[name].default


def typed(name: str, text: str) -> Any:
    """What the console stores as text, given to pydantic as the environment would give it:
    an empty field of an optional setting is none."""
    field = Settings.model_fields[name]
    if text.strip() == "" and not field.is_required() and field.default is None:
        return None
    return text
