"""A number staff type is read as the import reads it; a Telegram contact's as international
digits (issue 18, point 7)."""

from __future__ import annotations

from bot.intake import normalize_phone
from bot.owners import contact_to_e164, phone_to_e164


def test_typed_without_country_code_the_default_region_wins() -> None:
    # 15827469031 is also a valid North American number (+1 582 746 9031)
    assert normalize_phone("+15827469031") == "+15827469031"
    assert phone_to_e164("15827469031") == normalize_phone("15827469031") == "+8615827469031"
    assert phone_to_e164("158 2746 9031") == "+8615827469031"
    assert phone_to_e164("8613800138000") == "+8613800138000"  # international, no '+'
    assert phone_to_e164("+1 650 253 0000") == "+16502530000"
    assert phone_to_e164("16502530000") == "+8616502530000"  # 165...: a CN mobile first
    assert phone_to_e164("442071838750") == "+442071838750"  # no CN number: international
    assert phone_to_e164("hello") is None


def test_a_telegram_contact_is_international_digits() -> None:
    assert contact_to_e164("8615827469031") == "+8615827469031"
    assert contact_to_e164("15827469031") == "+15827469031"  # Telegram gave +1 582...
    assert contact_to_e164("+8613800138000") == "+8613800138000"
