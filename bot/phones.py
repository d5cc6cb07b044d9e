"""Phone numbers: the owner's identity in the customer file, stored in E.164.

Owners are matched by phone (a DMS row, a shared Telegram contact), so every way of writing
the same number (138 0013 8000, +86 138..., 0086 138...) must become the same string.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

DEFAULT_REGION = "CN"
_SCIENTIFIC = re.compile(r"^\s*\d+(\.\d+)?[eE][+]?\d+\s*$")
_FLOAT_TAIL = re.compile(r"^(\+?\d+)\.0+$")
# Fast path for the usual row, a mainland mobile number: 11 digits starting 13-19, written
# with or without +86/0086 and separators. Checked against the library's own metadata, so it
# gives exactly what the full parse would; anything else takes the full parse.
_SEPARATORS = re.compile(r"[\s\-]+")
_CN_MOBILE_INPUT = re.compile(r"(?:\+86|0086)?(1[3-9]\d{9})")
_CN_METADATA = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_CN_MOBILE_DESC = _CN_METADATA.mobile if _CN_METADATA is not None else None
_CN_MOBILE_PATTERN = _CN_MOBILE_DESC.national_number_pattern if _CN_MOBILE_DESC else None
_CN_MOBILE = re.compile(_CN_MOBILE_PATTERN or r"(?!)")


class PhoneError(ValueError):
    """The text is not a valid phone number; the message says why, for a person to fix."""


@dataclass(frozen=True)
class Phone:
    e164: str
    landline: bool


def parse_phone(raw: str, region: str = DEFAULT_REGION) -> Phone:
    """Parse and validate a phone number written any common way; raise PhoneError if invalid."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if _SCIENTIFIC.match(text):
        raise PhoneError(
            f"{raw!r} is not a valid phone number (the spreadsheet shows it in scientific "
            "notation and lost digits; format the phone column as text and export again)"
        )
    if region == "CN":
        fast = _CN_MOBILE_INPUT.fullmatch(_SEPARATORS.sub("", text))
        if fast is not None and _CN_MOBILE.fullmatch(fast.group(1)):
            return Phone("+86" + fast.group(1), landline=False)
    m = _FLOAT_TAIL.match(text)
    if m:  # 13800138000.0: a number cell exported by a spreadsheet
        text = m.group(1)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        raise PhoneError(f"{raw!r} is not a valid phone number") from None
    # number_type() is UNKNOWN exactly when is_valid_number() is False; one call does both
    # (validation is most of an import's CPU time).
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        raise PhoneError(f"{raw!r} is not a valid phone number")
    landline = kind == PhoneNumberType.FIXED_LINE
    return Phone(phonenumbers.format_number(number, PhoneNumberFormat.E164), landline)


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form of ``raw`` (default region China), e.g. ``+8613800138000``.

    Raises :class:`PhoneError` (a ValueError) when it is not a valid number.
    """
    return parse_phone(raw, region).e164
