"""The Settings page's catalogue (issue 18 point 4): every setting in exactly one group,
with a title and an explanation in both languages; only what is safe changed at run time;
values checked as start-up checks them."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.config_values import SECRETS
from bot.setting_overrides import Problem, Refused, validated
from bot.settings_catalogue import (
    CATALOGUE,
    EDITABLE,
    GROUPS,
    listed_twice,
    shown,
    text_of,
)
from bot.web.console.render import LANGUAGES, load_strings

STRINGS = load_strings()


def test_every_setting_belongs_to_exactly_one_group() -> None:
    assert listed_twice() == []
    missing = sorted(set(Settings.model_fields) - set(CATALOGUE))
    assert not missing, f"add these to a group in bot/settings_catalogue.py: {missing}"
    assert sorted(set(CATALOGUE) - set(Settings.model_fields)) == []  # no stale names
    assert {entry.group for entry in CATALOGUE.values()} == set(GROUPS)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_setting_and_group_is_explained_in_each_language(lang: str) -> None:
    own = STRINGS[lang]
    missing = [f"setting.{name}.{part}" for name in Settings.model_fields
               for part in ("title", "help") if not own.get(f"setting.{name}.{part}")]
    missing += [f"settings.group.{g}" for g in GROUPS if not own.get(f"settings.group.{g}")]
    assert not missing, f"add to bot/web/console/i18n/{lang}/settings.toml: {missing}"


def test_the_two_languages_say_different_things() -> None:
    """A Chinese explanation copied from the English one is not a translation."""
    same = [key for key, text in STRINGS["zh_CN"].items()
            if key.startswith("setting.") and STRINGS["en"].get(key) == text]
    assert same == []
    assert {k for k in STRINGS["en"] if k.startswith("setting")} == \
        {k for k in STRINGS["zh_CN"] if k.startswith("setting")}


def test_nothing_unsafe_is_changed_at_run_time() -> None:
    unsafe = SECRETS | {"database_url", "telegram_api_url", "webhook_url", "review_url",
                        "web_host", "web_port", "sandbox_telegram_port", "staff_chat_id",
                        "report_chat_id", "timezone", "trusted_proxies", "metrics_open",
                        "console_secure_cookie", "scan_time", "booking_digest_time",
                        "campaign_tick_seconds", "dispatch_interval", "send_rate"}
    assert EDITABLE & unsafe == set()
    paths = {n for n, f in Settings.model_fields.items() if "Path" in str(f.annotation)}
    assert paths and EDITABLE & paths == set()
    # the examples the issue names are changeable
    assert {"followup_day", "call_times", "ticket_level_answer_hours", "quiet_hours",
            "marketing_weekly_cap", "booking_slots", "booking_capacity", "dealer_name",
            "dealer_phone", "recall_after_months"} <= EDITABLE


def test_values_are_shown_as_typed_and_secrets_not_at_all() -> None:
    assert text_of("followup_day", 3) == "3"
    assert text_of("ticket_first_answer_hours", 2.0) == "2"
    assert text_of("report_to_advisors", True) == "true"
    assert text_of("first_answer_hours_inquiry", None) == ""
    assert shown("api_key", "abc") is None
    assert shown("database_url", "postgres://care:pw@db/care") == "postgres://care:***@db/care"


def test_values_are_checked_as_at_start_up() -> None:
    base = Settings(_env_file=None)
    assert validated(base, {"followup_day": "5"}).followup_day == 5
    assert validated(base, {"first_answer_hours_inquiry": ""}).first_answer_hours_inquiry is None
    with pytest.raises(Refused) as caught:
        validated(base, {"followup_day": "0", "call_times": "", "survey_open_days": "x"})
    assert caught.value.problems == {
        "followup_day": Problem("ge", limit="1"),
        "call_times": Problem("format", detail="name at least one time of day, e.g. "
                                               "10:00,15:00,19:00"),
        "survey_open_days": Problem("number", detail="Input should be a valid number, "
                                                      "unable to parse string as a number"),
    }
    with pytest.raises(Refused) as caught:  # refused by a feature's rules, not by pydantic
        validated(base, {"ticket_business_days": "8"})
    assert set(caught.value.problems) == {"ticket_business_days"}

