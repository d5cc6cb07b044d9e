"""An import's problems in the staff member's language.

The intake writes each problem once, in English, for the CLI, the HTTP API and the audit
record (``RowError.message``; stored imports keep it). The console shows it in the reader's
language: ``message_key`` recognises the fixed forms the intake writes and returns a
catalogue key (``imports.problem.<key>``) with the values to fill in. A form not recognised
is shown as written; tests/test_intake_messages.py feeds the intake a file with every kind
of mistake and fails on any problem this module does not know.
"""

from __future__ import annotations

import re

_Q = r"(?P<value>'.*?'|\".*?\")"  # a value quoted by repr()
_VIN_CHECK = _Q + r": check digit \(9th character\) is (?P<got>\w) but should be (?P<want>\w)"

# (key, pattern), tried in order; each matches a whole message.
_FORMS: tuple[tuple[str, str], ...] = (
    ("required", r"is required"),
    ("too_long", r"is (?P<n>\d+) characters; at most (?P<limit>\d+)"),
    ("vin_length", _Q + r" has (?P<n>\d+) characters; a VIN has 17"),
    ("vin_characters", _Q + r" contains (?P<bad>'.*?'|\".*?\"); a VIN has only letters and digits"),
    ("vin_ioq", _Q + r" contains (?P<letters>[IOQ, ]+), which no VIN uses \(read as 1 or 0\? "
                     r"check the registration certificate\)"),
    ("vin_check_digit", _VIN_CHECK + r"; probably a typo"),
    ("vin_check_digit_kept", _VIN_CHECK + r" \(not mandatory for this manufacturer's region; "
                                          r"kept as given\)"),
    ("phone_scientific", _Q + r" is not a valid phone number \(the spreadsheet shows it in "
                              r"scientific notation.*\)"),
    ("phone_invalid", _Q + r" is not a valid phone number"),
    ("phone_landline", (r"(?P<phone>\S+) is a landline; the owner cannot link Telegram by "
                       r"sharing it")),
    ("in_future", r"(?P<when>[\d: -]+) is in the future"),
    ("expected_text", r"expected text, got (?P<type>.+)"),
    ("expected_date", r"expected a date \(.*\), got (?P<type>.+)"),
    ("not_a_date", _Q + r" is not a date \(.*\)"),
    ("not_a_real_date", _Q + r" is not a real date or time"),
    ("implausible_date", r"(?P<value>[\d-]+) is not a plausible date"),
    ("language", _Q + r" is not a language carebot serves.*"),
    ("calendar", _Q + r": write 农历/lunar or 公历/gregorian.*"),
    ("title", _Q + r" is not a title carebot knows.*"),
    ("consent", _Q + r": write yes/no, 是/否 or 1/0.*"),
    ("yes_no", _Q + r": write 是/否 or yes/no"),
    ("visit_kind", _Q + r" is not a visit kind.*"),
    ("expected_km", r"expected a number of kilometres, got (?P<type>.+)"),
    ("not_km", _Q + r" is not a number of kilometres"),
    ("implausible_km", r"(?P<n>\d+) km is not a plausible mileage"),
    ("vin_repeated", r"(?P<vin>\w+) appears again on row (?P<row>\d+); that row is used"),
    ("visit_repeated", r"the same visit appears again on row (?P<row>\d+); that row is used"),
    ("name_changed", (r"(?P<phone>\S+) is (?P<old>'.*?'|\".*?\") on row (?P<row>\d+); the owner's "
                     r"name is set to (?P<new>'.*?'|\".*?\") from this later row")),
    ("delivery_moved", (r"changed from (?P<old>[\d: -]+) to (?P<new>[\d: -]+); messages not yet "
                       r"sent for the old delivery are cancelled")),
    ("ownership_changed", (r"ownership changed: (?P<vin>\w+) was on the file of (?P<old>.+) and "
                          r"now belongs to (?P<new>.+)")),
    ("no_car", r"no car with VIN (?P<vin>\w+) on file; import its delivery first"),
    ("unused_columns", r"columns not used by carebot: (?P<columns>.+)"),
    ("unknown_field", r"unknown field, ignored"),
    ("not_an_object", r"expected an object with the (?P<noun>\w+)'s fields, got (?P<type>.+)"),
    ("not_stored", r"not stored: (?P<why>.+)"),
)
_COMPILED = tuple((key, re.compile(pattern, re.DOTALL)) for key, pattern in _FORMS)
KEYS = tuple(key for key, _ in _FORMS)
# What a value was, as the intake names it (_type_name), for the catalogue's ``type.<name>``.
TYPES = ("true/false", "an object", "a list", "int", "float", "datetime", "date", "time")


def message_key(message: str) -> tuple[str, dict[str, str]] | None:
    """The catalogue key (under ``imports.problem.``) and its values, or None."""
    for key, pattern in _COMPILED:
        match = pattern.fullmatch(message)
        if match:
            return key, {k: v for k, v in match.groupdict().items() if v is not None}
    return None
