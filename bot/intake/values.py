"""One cell or JSON value read as text, a date, an instant, a language, a flag, a count.

Each parser returns None for a blank and raises :class:`FieldError` with the words shown to
the person who fixes the file.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from bot import salutation
from bot.consent import parse_consent
from bot.intake.columns import header_key, is_blank
from bot.journeys.repairs import parse_items
from db.models import VisitKind

# A delivery date without a time is taken as 12:00 local: the check-in then falls at 14:00,
# inside working hours, and the same date always yields the same occasion key.
DELIVERY_DEFAULT_TIME = time(12, 0)


_LUNAR_WORDS = frozenset({"农历", "阴历", "旧历", "lunar", "l", "是", "y", "yes", "true", "1"})
_SOLAR_WORDS = frozenset({"公历", "阳历", "新历", "gregorian", "solar", "g", "否", "n", "no",
                          "false", "0"})


_LANGUAGES: dict[str, str] = {
    **dict.fromkeys(
        (
            "zh",
            "zh_cn",
            "zh_hans",
            "zh_hans_cn",
            "cn",
            "chinese",
            "中文",
            "简体中文",
            "汉语",
            "普通话",
        ),
        "zh_CN",
    ),
    **dict.fromkeys(("en", "en_us", "en_gb", "english", "英文", "英语"), "en"),
}
_BLANKS = frozenset({"-", "--", "—", "/", "无", "n/a", "null", "none", "nan"})


_PLATE_NOISE = re.compile(r"[\s\-·.]+")
_DATE_RE = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?)?$"
)
_CN_DATE_RE = re.compile(
    r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]?"
    r"(?:\s*(\d{1,2})[:时点](\d{1,2})分?(?:[:]?(\d{1,2})秒?)?)?$"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:[ T]?(\d{2})(\d{2})(\d{2})?)?$")
_DATE_HINT = "use 2026-11-03, 2026/11/3, 2026.11.3, 20261103 or 2026年11月3日"


# --- values -----------------------------------------------------------------------------


class FieldError(ValueError):
    """A value that cannot be used; the message is shown to the person who fixes the file."""


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def parse_text(value: Any) -> str | None:
    """Plain text from a cell or JSON value; None when blank."""
    if value is None:
        return None
    if isinstance(value, str):
        text = " ".join(unicodedata.normalize("NFKC", value).split())
    elif isinstance(value, bool):
        raise FieldError(f"expected text, got {type_name(value)}")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if math.isnan(value):  # an empty cell from some exporters
            return None
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        raise FieldError(f"expected text, got {type_name(value)}")
    if not text or text.casefold() in _BLANKS:
        return None
    return text


def parse_when(value: Any) -> date | datetime | None:
    """A date (no time given) or a datetime (naive = local, or aware) from any accepted form.

    A time of exactly 00:00 counts as "no time": DMS exports write plain dates that way.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None and value.time() == time(0, 0):
            return value.date()
        return value
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-":
        try:  # the usual 2026-11-03[ 14:30]: C-speed, as this runs for every row
            return parse_when(datetime.fromisoformat(value))
        except ValueError:
            pass  # 2026-11-3, out-of-range values...: the general path below says why
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FieldError(f"expected a date ({_DATE_HINT}), got {type_name(value)}")
    text = parse_text(value)
    if text is None:
        return None
    m = _DATE_RE.match(text) or _CN_DATE_RE.match(text) or _COMPACT_DATE_RE.match(text)
    if m is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FieldError(f"{text!r} is not a date ({_DATE_HINT})") from None
        return parse_when(parsed)
    y, mo, d, hh, mm, ss = (int(g) if g else None for g in m.groups())
    assert y is not None and mo is not None and d is not None
    try:
        if hh is None:
            return date(y, mo, d)
        return parse_when(datetime(y, mo, d, hh, mm or 0, ss or 0))
    except ValueError:
        raise FieldError(f"{text!r} is not a real date or time") from None


def parse_day(value: Any, tz: tzinfo | None = None) -> date | None:
    """A calendar date. An aware timestamp (JavaScript's toISOString() of a local midnight,
    "1988-03-11T16:00:00Z") is read in the dealership's zone, where it is 03-12."""
    when = parse_when(value)
    if isinstance(when, datetime) and when.tzinfo is not None and tz is not None:
        when = when.astimezone(tz)
    day = when.date() if isinstance(when, datetime) else when
    if day is not None and not 1900 <= day.year < 2200:
        raise FieldError(f"{day.isoformat()} is not a plausible date")
    return day


def parse_instant(value: Any, tz: tzinfo) -> datetime | None:
    """An aware UTC datetime; dates without a time are taken at 12:00 local."""
    when = parse_when(value)
    if when is None:
        return None
    if not isinstance(when, datetime):
        when = datetime.combine(when, DELIVERY_DEFAULT_TIME)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    if not 1900 <= when.year < 2200:
        raise FieldError(f"{when.date().isoformat()} is not a plausible date")
    return when.astimezone(UTC)


def parse_language(value: Any) -> str | None:
    text = parse_text(value)
    if text is None:
        return None
    found = _LANGUAGES.get(text.casefold().replace("-", "_"))
    if found is None:
        raise FieldError(
            f"{text!r} is not a language carebot serves (zh_CN/中文, en/English); "
            "the owner's language is left as it was (zh_CN for a new owner)"
        )
    return found


def parse_title(value: Any) -> str | None:
    """称呼/性别: "mr" (先生, 男, M) or "ms" (女士, 女, F) for how scripts address the owner;
    None when the cell is empty (a blank never erases a title)."""
    text = parse_text(value)
    if text is None:
        return None
    found = salutation.parse_title(text)
    if not found:
        raise FieldError(
            f"{text!r} is not a title carebot knows (先生/男/Mr or 女士/女/Ms); "
            "the owner's title is left as it was"
        )
    return found


def parse_calendar(value: Any) -> bool | None:
    """生日类型: True for a lunar (农历) birthday, False for Gregorian, None when not given."""
    if isinstance(value, bool):
        return value
    text = parse_text(value)
    if text is None:
        return None
    key = text.casefold()
    if key in _LUNAR_WORDS:
        return True
    if key in _SOLAR_WORDS:
        return False
    raise FieldError(
        f"{text!r}: write 农历/lunar or 公历/gregorian; the owner's birthday calendar is left "
        "as it was (Gregorian for a new owner)"
    )


def parse_marketing_consent(value: Any) -> bool | None:
    """营销同意 column (issue 6): yes/no/是/否/1/0, blank = unchanged."""
    try:
        return parse_consent(None if is_blank(value) else value)
    except ValueError as exc:
        raise FieldError(str(exc)) from None


def parse_plate(value: Any) -> str | None:
    text = parse_text(value)
    return _PLATE_NOISE.sub("", text).upper() if text is not None else None


_VISIT_KINDS: dict[str, VisitKind] = {
    **dict.fromkeys(("firstservice", "首保", "首次保养", "走合保养", "磨合保养", "首次免费保养"),
                    VisitKind.FIRST_SERVICE),
    **dict.fromkeys(("maintenance", "保养", "定期保养", "常规保养", "例行保养", "service"),
                    VisitKind.MAINTENANCE),
    **dict.fromkeys(("repair", "维修", "一般维修", "机修", "故障维修", "机电维修"),
                    VisitKind.REPAIR),
    **dict.fromkeys(("warranty", "保修", "索赔", "三包", "质保", "保修维修"), VisitKind.WARRANTY),
    **dict.fromkeys(("accident", "事故", "事故车", "事故维修", "钣喷", "钣金", "钣金喷漆", "保险",
                     "保险理赔", "insurance", "accidentinsurance"), VisitKind.ACCIDENT),
}  # fmt: skip
_TRUE_WORDS = frozenset({"是", "y", "yes", "true", "1", "x", "√", "✓", "大修", "major"})
_FALSE_WORDS = frozenset({"否", "n", "no", "false", "0", "小修"})
MAX_MILEAGE = 3_000_000


def parse_repair_items(value: Any) -> tuple[str, ...] | None:
    try:
        return parse_items(value) or None
    except ValueError as exc:
        raise FieldError(str(exc)) from None


def parse_visit_kind(value: Any) -> VisitKind | None:
    text = parse_text(value)
    if text is None:
        return None
    found = _VISIT_KINDS.get(header_key(text))
    if found is None:
        raise FieldError(
            f"{text!r} is not a visit kind; use first_service/首保, maintenance/保养, "
            "repair/维修, warranty/保修 or accident/事故"
        )
    return found


def parse_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = parse_text(value)
    if text is None:
        return None
    key = text.casefold()
    if key in _TRUE_WORDS:
        return True
    if key in _FALSE_WORDS:
        return False
    raise FieldError(f"{text!r}: write 是/否 or yes/no")


def parse_km(value: Any) -> int | None:
    """A whole number of kilometres: 12345, "12,345", "12345 km", 12345.0."""
    if isinstance(value, bool):
        raise FieldError(f"expected a number of kilometres, got {type_name(value)}")
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        value = int(value)
    text = parse_text(value)
    if text is None:
        return None
    cleaned = re.sub(r"(?i)\s*(km|公里)$", "", text).replace(",", "").replace(" ", "")
    if not cleaned.isdigit():
        raise FieldError(f"{text!r} is not a number of kilometres")
    number = int(cleaned)
    if number > MAX_MILEAGE:
        raise FieldError(f"{number} km is not a plausible mileage")
    return number


def normalize_plate(value: str) -> str:
    """A plate as stored (``粤A12345``): what staff type in a search, made comparable."""
    return parse_plate(value) or ""
