"""Vehicle identification numbers (ISO 3779): normalising and checking.

One car, one file: the VIN is the vehicle's identity, so a typo would split a car into two
files. Everything a DMS export or a person typing may add (spaces, dashes, full-width
characters, lower case) is removed before checking, and the check digit catches most typos.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

VIN_LENGTH = 17
# Letter values from ISO 3779 / 49 CFR 565; I, O and Q are not allowed in a VIN.
_TRANSLITERATION: dict[str, int] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Regions whose rules make the check digit mandatory: China (GB 16735) and North America.
_CHECK_DIGIT_MANDATORY = tuple("L12345")
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_.·]+")
_VIN_CHARS = re.compile(r"^[A-Z0-9]+$")


@dataclass(frozen=True)
class VinCheck:
    """The outcome of checking one VIN: the normalised value and at most one error/warning."""

    vin: str
    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def normalize_vin(raw: str) -> str:
    """Upper-case, half-width, without spaces or dashes: the form a VIN is stored in."""
    text = unicodedata.normalize("NFKC", raw)
    return _SEPARATORS.sub("", text).upper()


def check_digit(vin: str) -> str:
    """The check digit (position 9) a 17-character VIN should carry: '0'-'9' or 'X'."""
    total = sum(_TRANSLITERATION[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def check_digit_mandatory(vin: str) -> bool:
    """True for VINs from regions that require a valid check digit (China, North America)."""
    return vin.startswith(_CHECK_DIGIT_MANDATORY)


def check_vin(raw: str) -> VinCheck:
    """Normalise ``raw`` and check length, alphabet and check digit.

    A wrong check digit is an error for Chinese (L...) and North American (1-5...) VINs,
    where it is mandatory, and only a warning elsewhere (European and Asian makers need not
    use position 9 as a check digit).
    """
    vin = normalize_vin(raw)
    if not vin:
        return VinCheck(vin, error="is required")
    if len(vin) != VIN_LENGTH:
        return VinCheck(vin, error=f"{vin!r} has {len(vin)} characters; a VIN has 17")
    if not _VIN_CHARS.match(vin):
        bad = "".join(sorted({c for c in vin if not ("A" <= c <= "Z" or "0" <= c <= "9")}))
        return VinCheck(vin, error=f"{vin!r} contains {bad!r}; a VIN has only letters and digits")
    forbidden = "".join(sorted(set(vin) & set("IOQ")))
    if forbidden:
        return VinCheck(
            vin,
            error=(
                f"{vin!r} contains {', '.join(forbidden)}, which no VIN uses "
                "(read as 1 or 0? check the registration certificate)"
            ),
        )
    expected = check_digit(vin)
    if vin[8] == expected:
        return VinCheck(vin)
    message = f"{vin!r}: check digit (9th character) is {vin[8]} but should be {expected}"
    if check_digit_mandatory(vin):
        return VinCheck(vin, error=message + "; probably a typo")
    return VinCheck(
        vin, warning=message + " (not mandatory for this manufacturer's region; kept as given)"
    )
