"""Deliveries in: CSV/XLSX files from the DMS and JSON records from the HTTP API.

Both ways in share one validation (:func:`validate_delivery`) and one upsert, so a row means
the same thing whichever way it arrives. Every bad row is reported with the row number the
person sees and the reason; every good row is stored; a row's owner, car and touchpoints are
written in one transaction, so nothing is half-written. Re-importing the same data changes
nothing: owners are matched by phone, cars by VIN, and touchpoints by their unique key.

Speed matters (a dealer group imports 100,000 deliveries at once): rows are stored in chunks
with one ``__in`` query per table, bulk inserts for new rows and updates only for changed ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import logging
import math
import re
import secrets
import unicodedata
import zipfile
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from bot.consent import apply_import, parse_consent
from bot.journeys.forecasts import refresh_forecasts
from bot.journeys.plans import (
    FIRST_SERVICE,
    JourneyRules,
    TouchpointPlan,
    delivery_key,
    plan_delivery,
    plan_visit,
    write_touchpoints,
)
from bot.journeys.repairs import VisitRepairs, parse_items, record_repairs
from bot.journeys.timing import birthday_key
from bot.phones import PhoneError, normalize_phone, parse_phone
from bot.vin import VinCheck, check_vin, normalize_vin
from db.models import Customer, Touchpoint, TouchpointStatus, Vehicle, Visit, VisitKind

log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "DeliveryRow",
    "ImportResult",
    "IntakeError",
    "RowError",
    "VinCheck",
    "VisitRow",
    "check_vin",
    "import_deliveries_file",
    "import_deliveries_records",
    "import_visits_file",
    "import_visits_records",
    "normalize_phone",
    "normalize_vin",
    "validate_delivery",
    "validate_visit",
]

CHUNK_SIZE = 1000
DEFAULT_LANGUAGE = "zh_CN"
# A delivery date without a time is taken as 12:00 local: the check-in then falls at 14:00,
# inside working hours, and the same date always yields the same occasion key.
DELIVERY_DEFAULT_TIME = time(12, 0)
FUTURE_TOLERANCE = timedelta(days=1)
HEADER_SEARCH_ROWS = 10
# What one file may hold (issue 15): a crafted workbook must not take the server's memory.
# A workbook's parts are checked by the sizes its zip declares, before anything is unpacked
# (a zip member never unpacks to more than it declares: Python's reader stops there).
MAX_ROWS = 200_000  # rows with data (an import of 100,000 deliveries is the large case)
MAX_COLUMNS = 200  # columns read; a sheet declaring more is refused
XLSX_MAX_UNPACKED = 256 * 1024 * 1024  # all parts together
XLSX_MAX_PART = 24 * 1024 * 1024  # a part read whole (shared strings, styles), not streamed
XLSX_MAX_PARTS = 2_000
_MB = 1024 * 1024
_TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}

# Canonical field -> accepted column names, in order of preference when a file has several.
COLUMNS: dict[str, tuple[str, ...]] = {
    "vin": ("vin", "车架号", "VIN码", "车架号码", "车辆识别代号", "车辆识别代码", "车辆识别号"),
    "plate": ("plate", "车牌号", "车牌", "车牌号码", "plate_number", "licence_plate", "license_plate"),
    "model": ("model", "车型", "车型名称", "vehicle_model"),
    "owner_name": (
        "owner_name", "车主姓名", "客户姓名", "姓名", "车主", "客户名称", "customer_name", "name",
    ),
    "phone": (
        "phone", "手机", "手机号", "手机号码", "电话", "联系电话", "车主电话", "客户电话", "mobile",
        "phone_number",
    ),
    "birthday": ("birthday", "生日", "出生日期", "date_of_birth", "birth_date", "dob"),
    "birthday_calendar": (
        "birthday_calendar", "生日类型", "生日历法", "农历生日", "birthday_type", "lunar_birthday",
    ),
    "licence_expiry": (
        "licence_expiry", "license_expiry", "驾照到期", "驾驶证到期日", "驾照到期日", "驾驶证到期",
        "驾驶证有效期至", "driving_licence_expiry", "driving_license_expiry",
    ),
    "insurance_expiry": ("insurance_expiry", "保险到期", "保险到期日", "保险到期日期"),
    "delivered_at": (
        "delivered_at", "交车时间", "交车日期", "delivery_date", "delivery_time", "delivered_on",
        "delivered",
    ),
    "sales_advisor": ("sales_advisor", "销售顾问", "销售", "sales_consultant", "salesperson"),
    "language": ("language", "语言", "语种", "lang"),
    "marketing_consent": ("marketing_consent", "营销同意", "同意营销", "营销授权", "consent"),
}  # fmt: skip
REQUIRED = ("vin", "owner_name", "phone", "delivered_at")
_DATE_FIELDS = ("birthday", "licence_expiry", "insurance_expiry", "delivered_at")
_LUNAR_WORDS = frozenset({"农历", "阴历", "旧历", "lunar", "l", "是", "y", "yes", "true", "1"})
_SOLAR_WORDS = frozenset({"公历", "阳历", "新历", "gregorian", "solar", "g", "否", "n", "no",
                          "false", "0"})
_MAX_LEN = {"owner_name": 100, "model": 100, "sales_advisor": 100, "plate": 20}

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
_HEADER_NOISE = re.compile(r"[\s_\-./:*#]+")
_HEADER_NOTE = re.compile(r"[(\[（【].*?[)\]）】]")
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


class IntakeError(Exception):
    """The whole file cannot be imported (unreadable, unknown format, missing columns)."""


@dataclass(frozen=True)
class RowError:
    """One problem with one row: ``row`` as the person sees it (header = row 1 in a file)."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class DeliveryRow:
    """A validated delivery. Optional values are None when not given: None never erases."""

    row: int
    vin: str
    owner_name: str
    phone: str  # E.164
    delivered_at: datetime  # UTC
    plate: str | None = None
    model: str | None = None
    birthday: date | None = None
    licence_expiry: date | None = None
    insurance_expiry: date | None = None
    sales_advisor: str | None = None
    language: str | None = None  # "zh_CN" or "en"
    birthday_lunar: bool | None = None  # celebrates the 农历 anniversary of ``birthday``
    marketing_consent: bool | None = None  # yes/no/是/否/1/0; recorded by bot.consent (issue 6)


@dataclass
class ImportResult:
    """What an import did, row by row: for the CLI (summary) and the HTTP API (to_dict).

    ``total`` counts non-empty rows: ``created + updated + unchanged + failed + superseded``.
    A row is *created* when its car is new to the files, *updated* when its car or its
    owner's file changed, *unchanged* otherwise; *superseded* rows repeat a VIN that a later
    row of the same import sets.
    """

    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    superseded: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Rows not stored because of errors."""
        return len({e.row for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, limit: int = 50) -> str:
        """A few lines for a person; at most ``limit`` errors and warnings are listed."""
        lines = [
            f"{self.total} row{'' if self.total == 1 else 's'}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} with errors (not imported)"
            + (f", {self.superseded} superseded by a later row" if self.superseded else "")
        ]
        for title, items in (("errors", self.errors), ("warnings", self.warnings)):
            if not items:
                continue
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {item}" for item in items[:limit])
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "superseded": self.superseded,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
        }


# --- column names -----------------------------------------------------------------------


def _header_key(text: str) -> str:
    """Compare headers ignoring case, width, spaces, underscores and notes like "(必填)"."""
    text = unicodedata.normalize("NFKC", text)
    text = _HEADER_NOTE.sub("", text)
    return _HEADER_NOISE.sub("", text).casefold()


def _build_aliases(columns: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, int]]:
    aliases: dict[str, tuple[str, int]] = {}
    for name, names in columns.items():
        for rank, alias in enumerate(names):
            key = _header_key(alias)
            if key in aliases and aliases[key][0] != name:
                raise ValueError(f"column alias {alias!r} is used for two fields")
            aliases.setdefault(key, (name, rank))
    return aliases


_ALIASES = _build_aliases(COLUMNS)


@dataclass(frozen=True)
class _Spec:
    """What one kind of file holds: its columns, the required ones and the date columns."""

    what: str
    columns: Mapping[str, Sequence[str]]
    required: Sequence[str]
    date_fields: Sequence[str]
    aliases: Mapping[str, tuple[str, int]]


DELIVERIES = _Spec("deliveries", COLUMNS, REQUIRED, _DATE_FIELDS, _ALIASES)


def column_field(header: Any, spec: _Spec = DELIVERIES) -> tuple[str, int] | None:
    """(canonical field, preference rank) for a column header, or None if not ours."""
    if header is None:
        return None
    return spec.aliases.get(_header_key(str(header)))


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _canonical(
    record: Mapping[str, Any], spec: _Spec = DELIVERIES
) -> tuple[dict[str, Any], list[str]]:
    """Map a record's keys to canonical fields; where two keys mean one field, the preferred
    non-blank one wins. Returns the values and the keys that mean nothing to us."""
    best: dict[str, tuple[int, Any]] = {}
    unknown: list[str] = []
    for key, value in record.items():
        found = column_field(key, spec)
        if found is None:
            unknown.append(str(key))
            continue
        name, rank = found
        if _is_blank(value) and name in best:
            continue
        if name not in best or rank < best[name][0] or _is_blank(best[name][1]):
            best[name] = (rank, value)
    return {name: value for name, (_, value) in best.items()}, unknown


# --- values -----------------------------------------------------------------------------


class _FieldError(ValueError):
    """A value that cannot be used; the message is shown to the person who fixes the file."""


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _text(value: Any) -> str | None:
    """Plain text from a cell or JSON value; None when blank."""
    if value is None:
        return None
    if isinstance(value, str):
        text = " ".join(unicodedata.normalize("NFKC", value).split())
    elif isinstance(value, bool):
        raise _FieldError(f"expected text, got {_type_name(value)}")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if math.isnan(value):  # an empty cell from some exporters
            return None
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        raise _FieldError(f"expected text, got {_type_name(value)}")
    if not text or text.casefold() in _BLANKS:
        return None
    return text


def _parse_when(value: Any) -> date | datetime | None:
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
            return _parse_when(datetime.fromisoformat(value))
        except ValueError:
            pass  # 2026-11-3, out-of-range values...: the general path below says why
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _FieldError(f"expected a date ({_DATE_HINT}), got {_type_name(value)}")
    text = _text(value)
    if text is None:
        return None
    m = _DATE_RE.match(text) or _CN_DATE_RE.match(text) or _COMPACT_DATE_RE.match(text)
    if m is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _FieldError(f"{text!r} is not a date ({_DATE_HINT})") from None
        return _parse_when(parsed)
    y, mo, d, hh, mm, ss = (int(g) if g else None for g in m.groups())
    assert y is not None and mo is not None and d is not None
    try:
        if hh is None:
            return date(y, mo, d)
        return _parse_when(datetime(y, mo, d, hh, mm or 0, ss or 0))
    except ValueError:
        raise _FieldError(f"{text!r} is not a real date or time") from None


def _day(value: Any, tz: tzinfo | None = None) -> date | None:
    """A calendar date. An aware timestamp (JavaScript's toISOString() of a local midnight,
    "1988-03-11T16:00:00Z") is read in the dealership's zone, where it is 03-12."""
    when = _parse_when(value)
    if isinstance(when, datetime) and when.tzinfo is not None and tz is not None:
        when = when.astimezone(tz)
    day = when.date() if isinstance(when, datetime) else when
    if day is not None and not 1900 <= day.year < 2200:
        raise _FieldError(f"{day.isoformat()} is not a plausible date")
    return day


def _instant(value: Any, tz: tzinfo) -> datetime | None:
    """An aware UTC datetime; dates without a time are taken at 12:00 local."""
    when = _parse_when(value)
    if when is None:
        return None
    if not isinstance(when, datetime):
        when = datetime.combine(when, DELIVERY_DEFAULT_TIME)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    if not 1900 <= when.year < 2200:
        raise _FieldError(f"{when.date().isoformat()} is not a plausible date")
    return when.astimezone(UTC)


def _language(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    found = _LANGUAGES.get(text.casefold().replace("-", "_"))
    if found is None:
        raise _FieldError(
            f"{text!r} is not a language carebot serves (zh_CN/中文, en/English); "
            "the owner's language is left as it was (zh_CN for a new owner)"
        )
    return found


def _calendar(value: Any) -> bool | None:
    """生日类型: True for a lunar (农历) birthday, False for Gregorian, None when not given."""
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    key = text.casefold()
    if key in _LUNAR_WORDS:
        return True
    if key in _SOLAR_WORDS:
        return False
    raise _FieldError(
        f"{text!r}: write 农历/lunar or 公历/gregorian; the owner's birthday calendar is left "
        "as it was (Gregorian for a new owner)"
    )


def _consent(value: Any) -> bool | None:
    """营销同意 column (issue 6): yes/no/是/否/1/0, blank = unchanged."""
    try:
        return parse_consent(None if _is_blank(value) else value)
    except ValueError as exc:
        raise _FieldError(str(exc)) from None


def _plate(value: Any) -> str | None:
    text = _text(value)
    return _PLATE_NOISE.sub("", text).upper() if text is not None else None


_T = TypeVar("_T")


def validate_delivery(
    record: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[DeliveryRow | None, list[RowError], list[RowError]]:
    """Check one delivery record; pure (no database), shared by the file and HTTP paths.

    Keys are column names in English or Chinese (case, spaces and underscores ignored);
    values are strings, numbers, None, or date/datetime objects (spreadsheet cells).
    Returns ``(delivery or None, errors, warnings)``; the delivery is None when there are errors.
    """
    values, _ = _canonical(record)
    return _validate(values, row=row, tz=tz, now=now)


def _validate(
    values: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[DeliveryRow | None, list[RowError], list[RowError]]:
    errors: list[RowError] = []
    warnings: list[RowError] = []

    def get(name: str, parse: Callable[[Any], _T | None], *, warn_only: bool = False) -> _T | None:
        try:
            parsed = parse(values.get(name))
        except (_FieldError, PhoneError) as exc:
            (warnings if warn_only else errors).append(RowError(row, name, str(exc)))
            return None
        if parsed is None and name in REQUIRED:
            errors.append(RowError(row, name, "is required"))
        limit = _MAX_LEN.get(name)
        if limit is not None and isinstance(parsed, str) and len(parsed) > limit:
            errors.append(RowError(row, name, f"is {len(parsed)} characters; at most {limit}"))
            return None
        return parsed

    vin: str | None = None
    raw_vin = get("vin", _text)
    if raw_vin is not None:
        checked = check_vin(raw_vin)
        if checked.error:
            errors.append(RowError(row, "vin", checked.error))
        else:
            vin = checked.vin
            if checked.warning:
                warnings.append(RowError(row, "vin", checked.warning))

    phone: str | None = None
    raw_phone = get("phone", _text)
    if raw_phone is not None:
        try:
            parsed_phone = parse_phone(raw_phone)
        except PhoneError as exc:
            errors.append(RowError(row, "phone", str(exc)))
        else:
            phone = parsed_phone.e164
            if parsed_phone.landline:
                warnings.append(
                    RowError(
                        row,
                        "phone",
                        f"{phone} is a landline; the owner cannot link Telegram by sharing it",
                    )
                )

    owner_name = get("owner_name", _text)
    delivered_at = get("delivered_at", lambda v: _instant(v, tz))
    if delivered_at is not None and delivered_at > now + FUTURE_TOLERANCE:
        local = delivered_at.astimezone(tz)
        errors.append(RowError(row, "delivered_at", f"{local:%Y-%m-%d %H:%M} is in the future"))
    birthday = get("birthday", lambda v: _day(v, tz))
    if birthday is not None and birthday > now.astimezone(tz).date():
        errors.append(RowError(row, "birthday", f"{birthday.isoformat()} is in the future"))
    delivery = DeliveryRow(
        row=row,
        vin=vin or "",
        owner_name=owner_name or "",
        phone=phone or "",
        delivered_at=delivered_at or now,
        plate=get("plate", _plate),
        model=get("model", _text),
        birthday=birthday,
        licence_expiry=get("licence_expiry", lambda v: _day(v, tz)),
        insurance_expiry=get("insurance_expiry", lambda v: _day(v, tz)),
        sales_advisor=get("sales_advisor", _text),
        language=get("language", _language, warn_only=True),
        birthday_lunar=get("birthday_calendar", _calendar, warn_only=True),
        marketing_consent=get("marketing_consent", _consent, warn_only=True),
    )
    if errors:
        return None, errors, warnings
    return delivery, errors, warnings


# --- reading files ----------------------------------------------------------------------


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text"), else GB18030."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IntakeError(f"{path.name}: not valid UTF-16 text ({exc.reason})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise IntakeError(
            f"{path.name}: the text is neither UTF-8 nor GB18030; save it as 'CSV UTF-8'"
        ) from None
    log.info("%s: not UTF-8, read as GB18030", path.name)
    return text


def _read_text_table(path: Path) -> Generator[tuple[int, Sequence[Any]], None, None]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntakeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(b"PK\x03\x04"):
        raise IntakeError(f"{path.name} is an Excel workbook, not text; name it .xlsx")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise IntakeError(f"{path.name} is an old Excel (.xls) file; save it as .xlsx or CSV")
    text = _decode(data, path)
    del data
    first_line = next((line for line in io.StringIO(text) if line.strip()), "")
    delimiter = max(",\t;", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, cells in enumerate(reader, start=1):
            while cells and not cells[-1].strip():
                cells.pop()
            if len(cells) > MAX_COLUMNS:
                raise IntakeError(f"{path.name}, row {number}: {len(cells)} columns; carebot "
                                  f"reads at most {MAX_COLUMNS}: remove the columns it does "
                                  "not use")
            yield number, cells
    except csv.Error as exc:
        raise IntakeError(f"{path.name}, row {reader.line_num}: {exc}") from None


def _check_workbook_size(path: Path) -> None:
    """Refuse a workbook whose parts would unpack too big, from the sizes its zip declares,
    before anything is unpacked; the message says what to do instead."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IntakeError(f"cannot open {path.name} as an Excel workbook: {exc}") from None
    advice = "export only the columns and rows to import, or save the sheet as CSV"
    if len(parts) > XLSX_MAX_PARTS:
        raise IntakeError(f"{path.name} holds {len(parts):,} parts (at most "
                          f"{XLSX_MAX_PARTS:,}); {advice}")
    total = sum(part.file_size for part in parts)
    if total > XLSX_MAX_UNPACKED:
        raise IntakeError(f"{path.name} unpacks to {total // _MB:,} MB; carebot reads "
                          f"workbooks up to {XLSX_MAX_UNPACKED // _MB} MB unpacked; {advice}")
    for part in parts:
        if not part.filename.startswith("xl/worksheets/") and part.file_size > XLSX_MAX_PART:
            raise IntakeError(f"{path.name}: its part {part.filename[:60]} unpacks to "
                              f"{part.file_size // _MB:,} MB (at most "
                              f"{XLSX_MAX_PART // _MB} MB); {advice}")


def _read_xlsx_table(path: Path, spec: _Spec = DELIVERIES
                     ) -> Generator[tuple[int, Sequence[Any]], None, None]:
    """A workbook's rows, streamed, at most ``MAX_COLUMNS`` cells each: the first sheet with
    our header in its first rows (e.g. after a cover sheet), else the last one."""
    # Imported here: openpyxl would add ~70 ms to every start; only spreadsheets need it.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    _check_workbook_size(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IntakeError(f"cannot open {path.name} as an Excel workbook: {exc}") from None
    try:
        sheets = workbook.worksheets
        for index, sheet in enumerate(sheets):
            width = sheet.max_column  # as declared; None when the sheet does not say
            if isinstance(width, int) and width > MAX_COLUMNS:
                raise IntakeError(
                    f"{path.name}: sheet {sheet.title!r} is {width:,} columns wide; carebot "
                    f"reads at most {MAX_COLUMNS}: delete the empty or unused columns (or "
                    "save the sheet as CSV)")
            sheet.reset_dimensions()  # type: ignore[union-attr]  # some exporters write wrong ones
            rows = enumerate(sheet.iter_rows(min_row=1, max_col=MAX_COLUMNS, values_only=True),
                             start=1)
            head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
            if index + 1 < len(sheets) and _find_header(head, spec) is None:
                continue  # e.g. a cover sheet: take the first sheet with our columns
            yield from head
            yield from rows
            return
    finally:
        workbook.close()


def _find_header(
    rows: Sequence[tuple[int, Sequence[Any]]], spec: _Spec = DELIVERIES
) -> tuple[int, Sequence[Any]] | None:
    """The header row: the first of the first few rows naming two or more of our columns
    (DMS exports often put a title line above it)."""
    for number, cells in rows[:HEADER_SEARCH_ROWS]:
        if len({f[0] for c in cells if (f := column_field(c, spec)) is not None}) >= 2:
            return number, cells
    return None


def _excel_serial(value: Any) -> Any:
    """A number in a date column of a workbook is a date serial whose cell lost its date
    format; an eight-digit number is a date typed as 20261103 and is left for the parser."""
    from openpyxl.utils.datetime import from_excel  # only spreadsheets: see _read_xlsx_table

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 10_000_000 <= value <= 99_999_999 and float(value).is_integer():
            return value
        if 1 <= value < 2958466:
            return from_excel(value)
    return value


def _file_records(
    path: Path, spec: _Spec = DELIVERIES
) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
    """Read a CSV/XLSX file into (row number, canonical record) pairs; skips empty rows.

    Rows are streamed: only the records kept (at most ``MAX_ROWS``) are held in memory."""
    suffix = path.suffix.lower()
    if suffix in _XLSX_SUFFIXES:
        rows = _read_xlsx_table(path, spec)
    elif suffix in _TEXT_SUFFIXES:
        rows = _read_text_table(path)
    elif suffix == ".xls":
        raise IntakeError(f"{path.name} is an old Excel (.xls) file; save it as .xlsx or CSV")
    else:
        raise IntakeError(f"{path.name}: unknown file type {suffix or '(none)'}; use .csv or .xlsx")
    with contextlib.closing(rows):
        head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
        header = _find_header(head, spec)
        if header is None:
            raise _no_header(path, spec, itertools.chain(head, rows))
        columns, warnings = _header_columns(path, spec, *header)
        records = _records(path, spec, itertools.chain(head, rows), header[0], columns,
                           excel=suffix in _XLSX_SUFFIXES)
    return records, warnings


def _no_header(path: Path, spec: _Spec, rows: Iterable[tuple[int, Sequence[Any]]]
               ) -> IntakeError:
    first = next((cells for _, cells in rows if any(not _is_blank(c) for c in cells)), None)
    if first is None:
        wide = f" (carebot reads the first {MAX_COLUMNS} columns)" \
            if path.suffix.lower() in _XLSX_SUFFIXES else ""
        return IntakeError(f"{path.name} is empty{wide}")
    return IntakeError(
        f"{path.name}: no header row found in the first {HEADER_SEARCH_ROWS} rows; "
        "expected column names such as "
        + ", ".join(f"{n}/{spec.columns[n][1]}" for n in spec.required)
        + f"; first row is: {_show_headers(first)}"
    )


def _header_columns(path: Path, spec: _Spec, header_row: int, header_cells: Sequence[Any]
                    ) -> tuple[dict[str, list[int]], list[RowError]]:
    """Each field's column indexes, in order of preference; warnings for unused columns."""
    columns: dict[str, list[tuple[int, int]]] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header_cells):
        found = column_field(cell, spec)
        if found is None:
            if not _is_blank(cell):
                ignored.append(str(cell).strip())
            continue
        columns.setdefault(found[0], []).append((found[1], index))
    missing = [name for name in spec.required if name not in columns]
    if missing:
        wanted = "; ".join(f"{name} (or {', '.join(spec.columns[name][1:4])})" for name in missing)
        raise IntakeError(
            f"{path.name}: missing required column{'s' if len(missing) > 1 else ''}: {wanted}. "
            f"Headers found in row {header_row}: {_show_headers(header_cells)}"
        )
    warnings: list[RowError] = []
    if ignored:
        warnings.append(
            RowError(header_row, "header", f"columns not used by carebot: {', '.join(ignored)}")
        )
    return {name: [index for _, index in sorted(cols)] for name, cols in columns.items()}, \
        warnings


def _records(path: Path, spec: _Spec, rows: Iterable[tuple[int, Sequence[Any]]],
             header_row: int, order: dict[str, list[int]], *, excel: bool
             ) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    for number, cells in rows:
        if number <= header_row:
            continue
        record: dict[str, Any] = {}
        for name, indexes in order.items():
            value = None
            for index in indexes:
                if index < len(cells) and not _is_blank(cells[index]):
                    value = cells[index]
                    break
            if value is not None:
                if excel and name in spec.date_fields:
                    value = _excel_serial(value)
                record[name] = value
        if record:
            if len(records) >= MAX_ROWS:
                raise IntakeError(f"{path.name} has more than {MAX_ROWS:,} rows with data; "
                                  f"split it into files of at most {MAX_ROWS:,} rows")
            records.append((number, record))
    return records


def _show_headers(cells: Sequence[Any]) -> str:
    return ", ".join(repr(str(c).strip()) for c in cells if not _is_blank(c)) or "(none)"


# --- storing ----------------------------------------------------------------------------


@dataclass
class _Owner:
    """An owner's file as the whole import describes it (later rows win, blanks never erase)."""

    phone: str
    name: str
    row: int
    birthday: date | None = None
    licence_expiry: date | None = None
    language: str | None = None
    advisor: str | None = None
    birthday_lunar: bool | None = None


@dataclass
class _Stored:
    """The outcome of storing some rows; only added to the result once committed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)

    def add(self, other: _Stored) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors
        self.warnings += other.warnings


def _prepare(
    candidates: Sequence[tuple[int, Mapping[str, Any]]], tz: tzinfo, now: datetime
) -> tuple[list[DeliveryRow], dict[str, _Owner], ImportResult]:
    """Validate every row, drop repeated VINs (the later row wins), merge owners by phone."""
    result = ImportResult()
    valid: list[DeliveryRow] = []
    for number, values in candidates:
        result.total += 1
        delivery, errors, warnings = _validate(values, row=number, tz=tz, now=now)
        result.errors += errors
        result.warnings += warnings
        if delivery is not None:
            valid.append(delivery)

    latest: dict[str, DeliveryRow] = {}
    for delivery in valid:
        earlier = latest.get(delivery.vin)
        if earlier is not None:
            result.superseded += 1
            result.warnings.append(
                RowError(
                    earlier.row,
                    "vin",
                    f"{delivery.vin} appears again on row {delivery.row}; that row is used",
                )
            )
        latest[delivery.vin] = delivery
    winners = sorted(latest.values(), key=lambda d: d.row)

    owners: dict[str, _Owner] = {}
    for d in winners:
        owner = owners.get(d.phone)
        if owner is None:
            owners[d.phone] = _Owner(
                phone=d.phone,
                name=d.owner_name,
                row=d.row,
                birthday=d.birthday,
                licence_expiry=d.licence_expiry,
                language=d.language,
                advisor=d.sales_advisor,
                birthday_lunar=d.birthday_lunar,
            )
            continue
        if owner.name != d.owner_name:
            result.warnings.append(
                RowError(
                    d.row,
                    "owner_name",
                    f"{d.phone} is {owner.name!r} on row {owner.row}; "
                    f"the owner's name is set to {d.owner_name!r} from this later row",
                )
            )
        owner.name, owner.row = d.owner_name, d.row
        owner.birthday = d.birthday or owner.birthday
        owner.licence_expiry = d.licence_expiry or owner.licence_expiry
        owner.language = d.language or owner.language
        if d.birthday_lunar is not None:
            owner.birthday_lunar = d.birthday_lunar
        owner.advisor = owner.advisor or d.sales_advisor
    return winners, owners, result


class _Bulk:
    """Plain INSERT/UPDATE statements run with one ``executemany`` per table and chunk.

    Building an ORM instance costs about 100 µs a row, too slow for 100,000 deliveries.
    Values are plain Python objects both drivers accept (str, int, date, aware datetime);
    columns the import does not set get the model's own defaults, read from its metadata, so
    a field added to the model later needs no change here unless it has no default.
    """

    def __init__(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.postgres = conn.capabilities.dialect == "postgres"

    def _marks(self, count: int) -> list[str]:
        return [f"${i}" for i in range(1, count + 1)] if self.postgres else ["?"] * count

    async def insert(
        self, model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        meta = model._meta
        columns = [meta.fields_db_projection[name] for name in fields]
        defaults: list[Any] = []
        for name, column in meta.fields_db_projection.items():
            f = meta.fields_map[name]
            if name in fields or f.generated or f.has_db_default():
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value: Any = self.now
            elif f.default is not None:
                value = f.to_db_value(f.default() if callable(f.default) else f.default, model)
            elif f.null:
                continue
            else:
                raise RuntimeError(f"{model.__name__}.{name} has no default; intake must set it")
            columns.append(column)
            defaults.append(value)
        sql = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
            meta.db_table,
            ", ".join(f'"{c}"' for c in columns),
            ", ".join(self._marks(len(columns))),
        )
        await self.conn.execute_many(sql, [[*row, *defaults] for row in rows])

    async def select(
        self, model: type[Model], fields: Sequence[str], key: str, keys: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """``fields`` of the rows whose ``key`` is in ``keys`` (raw values: on SQLite, dates
        and datetimes come back as ISO strings; see :func:`_as_date`)."""
        if not keys:
            return []
        meta = model._meta
        sql = 'SELECT {} FROM "{}" WHERE "{}" IN ({})'.format(
            ", ".join(f'"{meta.fields_db_projection[name]}"' for name in fields),
            meta.db_table,
            meta.fields_db_projection[key],
            ", ".join(self._marks(len(keys))),
        )
        _, rows = await self.conn.execute_query(sql, list(keys))
        return [tuple(row) for row in rows]

    async def cancel_pending(self, rows: Sequence[Sequence[Any]]) -> None:
        """Mark skipped the pending touchpoints of (reason, customer id, occasion key) rows."""
        if not rows:
            return
        meta = Touchpoint._meta
        col = meta.fields_db_projection
        skipped, reason, at, customer, key, pending = self._marks(6)
        sql = (
            f'UPDATE "{meta.db_table}" SET "{col["status"]}" = {skipped}, '
            f'"{col["status_reason"]}" = {reason}, "{col["updated_at"]}" = {at} '
            f'WHERE "{col["customer_id"]}" = {customer} AND "{col["occasion_key"]}" = {key} '
            f'AND "{col["status"]}" = {pending}'
        )
        skip, wait = TouchpointStatus.SKIPPED.value, TouchpointStatus.PENDING.value
        values = [[skip, why, self.now, cid, occasion, wait] for why, cid, occasion in rows]
        await self.conn.execute_many(sql, values)

    async def update(
        self, model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """``rows`` hold the new values of ``fields`` and then the primary key."""
        if not rows:
            return
        meta = model._meta
        columns = [meta.fields_db_projection[name] for name in (*fields, "updated_at")]
        marks = self._marks(len(columns) + 1)
        sql = 'UPDATE "{}" SET {} WHERE "{}" = {}'.format(
            meta.db_table,
            ", ".join(f'"{c}" = {m}' for c, m in zip(columns, marks, strict=False)),
            meta.db_pk_column,
            marks[-1],
        )
        await self.conn.execute_many(sql, [[*row[:-1], self.now, row[-1]] for row in rows])


def _as_date(value: Any) -> date | None:
    """A date column's raw value as a date (SQLite returns ISO text, PostgreSQL a date)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_datetime(value: Any) -> datetime | None:
    """A datetime column's raw value as an aware datetime (stored in UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


_STALE_REASON = "delivery corrected by import"
_CUSTOMER_NEW = (
    "name", "phone", "birthday", "licence_expiry", "language", "advisor", "birthday_lunar",
    "birthday_md", "link_token",
)
_CUSTOMER_SET = (
    "name", "birthday", "licence_expiry", "language", "advisor", "birthday_lunar", "birthday_md",
)
_VEHICLE_SET = (
    "plate",
    "model",
    "insurance_expiry",
    "sales_advisor",
    "delivered_at",
    "customer_id",
)
_VEHICLE_NEW = ("vin", *_VEHICLE_SET)


async def _store_chunk(
    rows: Sequence[DeliveryRow], owners: Mapping[str, _Owner], rules: JourneyRules, now: datetime
) -> _Stored:
    """Upsert owners, cars and check-ins for ``rows`` in one transaction.

    One query reads the chunk's owners by phone and one its cars by VIN; new ones are bulk
    inserted, changed ones updated, unchanged ones not written at all.
    """
    out = _Stored()
    phones = list(dict.fromkeys(d.phone for d in rows))
    vins = [d.vin for d in rows]
    async with in_transaction() as conn:
        bulk = _Bulk(conn, now)
        customer_ids: dict[str, int] = {}
        touched: set[str] = set()  # phones whose file was created or changed here
        changed: list[list[Any]] = []
        found = await bulk.select(Customer, ("id", "phone", *_CUSTOMER_SET), "phone", phones)
        for cid, phone, name, raw_birthday, raw_licence, language, advisor, raw_lunar, md in found:
            customer_ids[phone] = cid
            o = owners[phone]
            birthday, licence = _as_date(raw_birthday), _as_date(raw_licence)
            lunar = bool(raw_lunar)
            current = [name, birthday, licence, language, advisor, lunar, md]
            new_birthday = o.birthday or birthday
            new_lunar = lunar if o.birthday_lunar is None else o.birthday_lunar
            target = [
                o.name,
                new_birthday,
                o.licence_expiry or licence,
                o.language or language,
                advisor or o.advisor or "",
                new_lunar,
                birthday_key(new_birthday, new_lunar),
            ]
            if target != current:
                changed.append([*target, cid])
                touched.add(phone)
        await bulk.update(Customer, _CUSTOMER_SET, changed)
        new_owners = [owners[p] for p in phones if p not in customer_ids]
        if new_owners:
            await bulk.insert(
                Customer,
                _CUSTOMER_NEW,
                [
                    [
                        o.name,
                        o.phone,
                        o.birthday,
                        o.licence_expiry,
                        o.language or DEFAULT_LANGUAGE,
                        o.advisor or "",
                        bool(o.birthday_lunar),
                        birthday_key(o.birthday, bool(o.birthday_lunar)),
                        secrets.token_urlsafe(24),
                    ]
                    for o in new_owners
                ],
            )
            new_phones = [o.phone for o in new_owners]
            customer_ids.update(await bulk.select(Customer, ("phone", "id"), "phone", new_phones))
            touched.update(new_phones)

        vehicles: dict[str, list[Any]] = {
            vin: [vid, plate, model, _as_date(insurance), advisor, _as_datetime(at), owner]
            for vid, vin, plate, model, insurance, advisor, at, owner in await bulk.select(
                Vehicle, ("id", "vin", *_VEHICLE_SET), "vin", vins
            )
        }
        vehicle_ids = {vin: v[0] for vin, v in vehicles.items()}
        new_vehicles: list[list[Any]] = []
        changed = []
        moved: dict[int, int] = {}  # row -> previous owner's id
        stale: list[list[Any]] = []  # pending touchpoints of a superseded delivery
        corrected: list[tuple[int, str]] = []  # (customer, old key): same owner, new time
        status: dict[int, str] = {}
        for d in rows:
            customer_id = customer_ids[d.phone]
            found_vehicle = vehicles.get(d.vin)
            if found_vehicle is None:
                new_vehicles.append(
                    [
                        d.vin,
                        d.plate or "",
                        d.model or "",
                        d.insurance_expiry,
                        d.sales_advisor or "",
                        d.delivered_at,
                        customer_id,
                    ]
                )
                status[d.row] = "created"
                continue
            vid, plate, model, insurance, advisor, delivered_at, owner_id = found_vehicle
            current = [plate, model, insurance, advisor, delivered_at, owner_id]
            target = [
                plate if d.plate is None else d.plate,
                model if d.model is None else d.model,
                d.insurance_expiry or insurance,
                advisor if d.sales_advisor is None else d.sales_advisor,
                d.delivered_at,
                customer_id,
            ]
            if target != current:
                changed.append([*target, vid])
            if owner_id != customer_id:
                moved[d.row] = owner_id
            old_key = delivery_key(d.vin, delivered_at) if delivered_at is not None else None
            if old_key is not None and (owner_id, old_key) != (
                customer_id,
                delivery_key(d.vin, d.delivered_at),
            ):
                # A corrected delivery time or owner: what was planned for the old one must
                # not go out (it would greet the wrong person, or greet twice). Compared at
                # the key's resolution (minutes): an export with seconds changes nothing.
                stale.append([_STALE_REASON, owner_id, old_key])
                if owner_id == customer_id:
                    corrected.append((customer_id, old_key))
                if delivered_at != d.delivered_at:
                    out.warnings.append(
                        RowError(
                            d.row,
                            "delivered_at",
                            f"changed from {delivered_at.astimezone(rules.tz):%Y-%m-%d %H:%M} "
                            f"to {d.delivered_at.astimezone(rules.tz):%Y-%m-%d %H:%M}; "
                            "messages not yet sent for the old delivery are cancelled",
                        )
                    )
            status[d.row] = "updated" if target != current or d.phone in touched else "unchanged"
        await bulk.update(Vehicle, _VEHICLE_SET, changed)
        await bulk.cancel_pending(stale)
        if new_vehicles:
            await bulk.insert(Vehicle, _VEHICLE_NEW, new_vehicles)
            new_vins = [v[0] for v in new_vehicles]
            vehicle_ids.update(await bulk.select(Vehicle, ("vin", "id"), "vin", new_vins))
        if moved:
            old_ids = list(set(moved.values()))
            previous = {
                cid: (name, phone)
                for cid, name, phone in await bulk.select(
                    Customer, ("id", "name", "phone"), "id", old_ids
                )
            }
            for d in rows:
                if d.row in moved:
                    name, phone = previous.get(moved[d.row], ("?", "?"))
                    out.warnings.append(
                        RowError(
                            d.row,
                            "vin",
                            f"ownership changed: {d.vin} was on the file of {name} ({phone}) "
                            f"and now belongs to {d.owner_name} ({d.phone})",
                        )
                    )

        plans: list[TouchpointPlan] = []
        for d in rows:
            plans += plan_delivery(
                customer_id=customer_ids[d.phone],
                vehicle_id=vehicle_ids[d.vin],
                vin=d.vin,
                delivered_at=d.delivered_at,
                rules=rules,
            )
        if corrected:
            # Same owner, corrected time: what already went out for the old time is not sent
            # again for the new one (each touchpoint is sent once).
            already = {
                (cid, kind)
                for cid, key in corrected
                for kind in await Touchpoint.filter(
                    customer_id=cid, occasion_key=key, status=TouchpointStatus.SENT
                ).using_db(conn).values_list("kind", flat=True)
            }
            plans = [p for p in plans if (p.customer_id, p.kind) not in already]
        await write_touchpoints(plans, batch_size=CHUNK_SIZE, now=now, conn=conn)

    for kind in status.values():
        if kind == "created":
            out.created += 1
        elif kind == "updated":
            out.updated += 1
        else:
            out.unchanged += 1
    return out


async def _store(
    rows: Sequence[DeliveryRow], owners: Mapping[str, _Owner], rules: JourneyRules, now: datetime
) -> _Stored:
    """Store a chunk; on a conflict (another import storing the same owner or car at the same
    moment) retry, then fall back to one row at a time so only the culprit row fails."""
    attempts = 3 if len(rows) > 1 else 2
    failure: IntegrityError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return await _store_chunk(rows, owners, rules, now)
        except IntegrityError as exc:
            log.warning(
                "storing rows %d-%d failed (attempt %d): %s",
                rows[0].row,
                rows[-1].row,
                attempt,
                exc,
            )
            failure = exc
    if len(rows) == 1:
        return _Stored(errors=[RowError(rows[0].row, "row", f"not stored: {failure}")])
    out = _Stored()
    for d in rows:
        out.add(await _store([d], owners, rules, now))
    return out


async def _import(
    candidates: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    rules: JourneyRules,
    now: datetime,
    errors: Iterable[RowError] = (),
    warnings: Iterable[RowError] = (),
    extra_rows: int = 0,
) -> ImportResult:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Validation is CPU work (about 40 µs a row); keep the event loop answering meanwhile.
    winners, owners, result = await asyncio.to_thread(_prepare, candidates, rules.tz, now)
    result.total += extra_rows
    result.errors += errors
    result.warnings += warnings
    for start in range(0, len(winners), CHUNK_SIZE):
        stored = await _store(winners[start : start + CHUNK_SIZE], owners, rules, now)
        result.created += stored.created
        result.updated += stored.updated
        result.unchanged += stored.unchanged
        result.errors += stored.errors
        result.warnings += stored.warnings
    failed_rows = {e.row for e in result.errors}
    consents = {d.phone: d.marketing_consent for d in winners
                if d.marketing_consent is not None and d.row not in failed_rows}
    if consents:  # each change of consent is kept on record (bot.consent, issue 6)
        await apply_import(consents, now=now)
    result.errors.sort(key=lambda e: e.row)
    result.warnings.sort(key=lambda w: w.row)
    log.info(
        "deliveries imported: %d rows, %d created, %d updated, %d unchanged, %d failed",
        result.total,
        result.created,
        result.updated,
        result.unchanged,
        result.failed,
    )
    return result


async def import_deliveries_file(path: Path, *, rules: JourneyRules, now: datetime) -> ImportResult:
    """Import a CSV (UTF-8/GB18030) or XLSX delivery export; see docs/import-format.md.

    Raises :class:`IntakeError` when the file as a whole cannot be used.
    """
    path = Path(path)
    records, warnings = await asyncio.to_thread(_file_records, path, DELIVERIES)
    log.info("importing %d rows from %s", len(records), path.name)
    return await _import(records, rules=rules, now=now, warnings=warnings)


async def import_deliveries_records(
    records: Sequence[Any], *, rules: JourneyRules, now: datetime, first_row: int = 1
) -> ImportResult:
    """Import deliveries sent as JSON objects (the HTTP intake API).

    Keys are the English column names; row numbers count from ``first_row`` in array order.
    An item that is not an object is a row error; an empty object is skipped.
    """
    candidates, errors, warnings = await asyncio.to_thread(
        _api_candidates, records, DELIVERIES, "delivery", first_row)
    return await _import(
        candidates, rules=rules, now=now, errors=errors, warnings=warnings, extra_rows=len(errors)
    )


def _api_candidates(records: Sequence[Any], spec: _Spec, noun: str, first_row: int
                    ) -> tuple[list[tuple[int, Mapping[str, Any]]], list[RowError], list[RowError]]:
    """The API's records as import candidates, row errors for non-objects, a warning per
    unknown field (in a worker thread: thousands of records are CPU work)."""
    candidates: list[tuple[int, Mapping[str, Any]]] = []
    errors: list[RowError] = []
    warnings: list[RowError] = []
    unknown_seen: set[str] = set()
    for offset, item in enumerate(records):
        number = first_row + offset
        if not isinstance(item, Mapping):
            got = "null" if item is None else _type_name(item)
            errors.append(
                RowError(number, "row", f"expected an object with the {noun}'s fields, got {got}")
            )
            continue
        values, unknown = _canonical(item, spec)
        for key in unknown:
            if key not in unknown_seen:
                unknown_seen.add(key)
                warnings.append(RowError(number, key, "unknown field, ignored"))
        if all(_is_blank(v) for v in values.values()):
            continue
        candidates.append((number, values))
    return candidates, errors, warnings


# --- workshop visits (issue 3) -------------------------------------------------------------

VISIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "vin": COLUMNS["vin"],
    "kind": (
        "kind", "visit_kind", "维修类型", "业务类型", "工单类型", "服务类型", "进厂类型", "类型",
        "repair_type", "job_type",
    ),
    "left_at": (
        "left_at", "出厂时间", "出厂日期", "离厂时间", "完工时间", "结算时间", "交车出厂时间",
        "left_workshop_at", "left_on", "completed_at",
    ),
    "advisor": ("advisor", "服务顾问", "接待顾问", "service_advisor", "顾问"),
    "mileage": ("mileage", "里程", "行驶里程", "进厂里程", "公里数", "odometer", "km"),
    "major_repair": ("major_repair", "是否大修", "大修", "major"),
    "next_service_on": (
        "next_service_on", "下次保养日期", "下次保养时间", "next_service_date", "next_service",
    ),
    "next_service_km": ("next_service_km", "下次保养里程", "next_service_mileage"),
    # issue 17: work the owner postponed, and earlier recommendations this visit did
    "recommended_repairs": ("recommended_repairs", "建议维修项目", "建议维修", "建议项目",
                            "recommended", "postponed_work"),
    "repairs_done": ("repairs_done", "已完成建议项目", "完成建议项目", "done_repairs"),
}  # fmt: skip
VISIT_REQUIRED = ("vin", "kind", "left_at")
VISITS = _Spec(
    "visits", VISIT_COLUMNS, VISIT_REQUIRED, ("left_at", "next_service_on"),
    _build_aliases(VISIT_COLUMNS),
)
_VISIT_KINDS: dict[str, VisitKind] = {
    **dict.fromkeys(("firstservice", "首保", "首次保养", "走合保养", "磨合保养", "首次免费保养"),
                    VisitKind.FIRST_SERVICE),
    **dict.fromkeys(("maintenance", "保养", "定期保养", "常规保养", "例行保养", "service"),
                    VisitKind.MAINTENANCE),
    **dict.fromkeys(("repair", "维修", "一般维修", "机修", "故障维修", "机电维修"), VisitKind.REPAIR),
    **dict.fromkeys(("warranty", "保修", "索赔", "三包", "质保", "保修维修"), VisitKind.WARRANTY),
    **dict.fromkeys(("accident", "事故", "事故车", "事故维修", "钣喷", "钣金", "钣金喷漆", "保险",
                     "保险理赔", "insurance", "accidentinsurance"), VisitKind.ACCIDENT),
}  # fmt: skip
_TRUE_WORDS = frozenset({"是", "y", "yes", "true", "1", "x", "√", "✓", "大修", "major"})
_FALSE_WORDS = frozenset({"否", "n", "no", "false", "0", "小修"})
MAX_MILEAGE = 3_000_000


@dataclass(frozen=True)
class VisitRow:
    """A validated workshop visit."""

    row: int
    vin: str
    kind: VisitKind
    left_at: datetime  # UTC
    advisor: str = ""
    mileage: int | None = None
    major_repair: bool = False
    next_service_on: date | None = None
    next_service_km: int | None = None
    recommended_repairs: tuple[str, ...] = ()
    repairs_done: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, datetime, str]:
        return self.vin, self.left_at, self.kind.value


def _items(value: Any) -> tuple[str, ...] | None:
    try:
        return parse_items(value) or None
    except ValueError as exc:
        raise _FieldError(str(exc)) from None


def _visit_kind(value: Any) -> VisitKind | None:
    text = _text(value)
    if text is None:
        return None
    found = _VISIT_KINDS.get(_header_key(text))
    if found is None:
        raise _FieldError(
            f"{text!r} is not a visit kind; use first_service/首保, maintenance/保养, "
            "repair/维修, warranty/保修 or accident/事故"
        )
    return found


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    key = text.casefold()
    if key in _TRUE_WORDS:
        return True
    if key in _FALSE_WORDS:
        return False
    raise _FieldError(f"{text!r}: write 是/否 or yes/no")


def _count(value: Any) -> int | None:
    """A whole number of kilometres: 12345, "12,345", "12345 km", 12345.0."""
    if isinstance(value, bool):
        raise _FieldError(f"expected a number of kilometres, got {_type_name(value)}")
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        value = int(value)
    text = _text(value)
    if text is None:
        return None
    cleaned = re.sub(r"(?i)\s*(km|公里)$", "", text).replace(",", "").replace(" ", "")
    if not cleaned.isdigit():
        raise _FieldError(f"{text!r} is not a number of kilometres")
    number = int(cleaned)
    if number > MAX_MILEAGE:
        raise _FieldError(f"{number} km is not a plausible mileage")
    return number


def validate_visit(
    record: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[VisitRow | None, list[RowError], list[RowError]]:
    """Check one visit record; pure, shared by the file and HTTP paths (like deliveries)."""
    values, _ = _canonical(record, VISITS)
    return _validate_visit(values, row=row, tz=tz, now=now)


def _validate_visit(
    values: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[VisitRow | None, list[RowError], list[RowError]]:
    errors: list[RowError] = []
    warnings: list[RowError] = []

    def get(name: str, parse: Callable[[Any], _T | None], *, warn_only: bool = False) -> _T | None:
        try:
            parsed = parse(values.get(name))
        except _FieldError as exc:
            (warnings if warn_only else errors).append(RowError(row, name, str(exc)))
            return None
        if parsed is None and name in VISIT_REQUIRED:
            errors.append(RowError(row, name, "is required"))
        return parsed

    vin: str | None = None
    raw_vin = get("vin", _text)
    if raw_vin is not None:
        checked = check_vin(raw_vin)
        if checked.error:
            errors.append(RowError(row, "vin", checked.error))
        else:
            vin = checked.vin
            if checked.warning:
                warnings.append(RowError(row, "vin", checked.warning))
    kind = get("kind", _visit_kind)
    left_at = get("left_at", lambda v: _instant(v, tz))
    if left_at is not None and left_at > now + FUTURE_TOLERANCE:
        errors.append(
            RowError(row, "left_at", f"{left_at.astimezone(tz):%Y-%m-%d %H:%M} is in the future")
        )
    advisor = get("advisor", _text) or ""
    if len(advisor) > 100:
        errors.append(RowError(row, "advisor", f"is {len(advisor)} characters; at most 100"))
    mileage = get("mileage", _count)
    major = get("major_repair", _flag)
    next_on = get("next_service_on", _day, warn_only=True)
    next_km = get("next_service_km", _count, warn_only=True)
    recommended = get("recommended_repairs", _items) or ()
    done = get("repairs_done", _items) or ()
    if errors or vin is None or kind is None or left_at is None:
        return None, errors, warnings
    return (
        VisitRow(
            row=row, vin=vin, kind=kind, left_at=left_at, advisor=advisor, mileage=mileage,
            major_repair=bool(major), next_service_on=next_on, next_service_km=next_km,
            recommended_repairs=recommended, repairs_done=done,
        ),
        errors,
        warnings,
    )


def _prepare_visits(
    candidates: Sequence[tuple[int, Mapping[str, Any]]], tz: tzinfo, now: datetime
) -> tuple[list[VisitRow], ImportResult]:
    """Validate every row; a visit repeated in the file (same car, kind, time): the later
    row wins."""
    result = ImportResult()
    latest: dict[tuple[str, datetime, str], VisitRow] = {}
    for number, values in candidates:
        result.total += 1
        visit, errors, warnings = _validate_visit(values, row=number, tz=tz, now=now)
        result.errors += errors
        result.warnings += warnings
        if visit is None:
            continue
        earlier = latest.get(visit.key)
        if earlier is not None:
            result.superseded += 1
            result.warnings.append(
                RowError(earlier.row, "row", f"the same visit appears again on row {visit.row}; "
                         "that row is used")
            )
        latest[visit.key] = visit
    return sorted(latest.values(), key=lambda v: v.row), result


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


_VISIT_FIRST_SERVICE_DONE = "first service already done (workshop visit recorded)"


async def _store_visits(rows: Sequence[VisitRow], rules: JourneyRules, now: datetime) -> _Stored:
    """Store a chunk of visits and their follow-ups in one transaction.

    The car must be on file (its delivery imported first). A first-service visit cancels the
    car's pending first-service reminder; a newer visit cancels older service-due reminders.
    """
    out = _Stored()
    async with in_transaction() as conn:
        found = await Vehicle.filter(vin__in=list({v.vin for v in rows})).values_list(
            "vin", "id", "customer_id", "mileage"
        )
        cars = {vin: (vid, cid, mileage) for vin, vid, cid, mileage in found}
        known: list[VisitRow] = []
        for v in rows:
            if v.vin in cars:
                known.append(v)
            else:
                out.errors.append(RowError(v.row, "vin", f"no car with VIN {v.vin} on file; "
                                           "import its delivery first"))
        if not known:
            return out
        vids = list({cars[v.vin][0] for v in known})
        fields = ("id", "vehicle_id", "left_at", "kind", "advisor", "mileage", "major_repair",
                  "next_service_on", "next_service_km")
        existing = {
            (r[1], _utc(r[2]), str(r[3])): r
            for r in await Visit.filter(vehicle_id__in=vids).values_list(*fields)
        }
        new: list[Visit] = []
        corrected_visits: set[int] = set()  # visits whose details the DMS corrected
        for v in known:
            vid = cars[v.vin][0]
            target = (v.advisor, v.mileage, v.major_repair, v.next_service_on, v.next_service_km)
            row = existing.get((vid, v.left_at, v.kind.value))
            if row is None:
                new.append(Visit(vehicle_id=vid, kind=v.kind, left_at=v.left_at, advisor=v.advisor,
                                 mileage=v.mileage, major_repair=v.major_repair,
                                 next_service_on=v.next_service_on,
                                 next_service_km=v.next_service_km))
                out.created += 1
            elif tuple(row[4:]) != target:
                await Visit.filter(id=row[0]).update(
                    advisor=v.advisor, mileage=v.mileage, major_repair=v.major_repair,
                    next_service_on=v.next_service_on, next_service_km=v.next_service_km,
                )
                corrected_visits.add(row[0])
                out.updated += 1
            else:
                out.unchanged += 1
        if new:
            await Visit.bulk_create(new, ignore_conflicts=True)
        visits = await Visit.filter(vehicle_id__in=vids).values_list(
            "id", "vehicle_id", "left_at", "kind"
        )
        ids = {(vid, _utc(at), str(kind)): vid_ for vid_, vid, at, kind in visits}

        mileage: dict[int, int] = {}
        for v in known:
            vid, _, current = cars[v.vin]
            if v.mileage is not None and (current is None or v.mileage > current):
                mileage[vid] = max(v.mileage, mileage.get(vid, 0))
        for vid, km in mileage.items():
            await Vehicle.filter(id=vid).update(mileage=km, updated_at=now)

        plans: list[TouchpointPlan] = []
        for v in known:
            vid, cid, _ = cars[v.vin]
            visit_id = ids[(vid, v.left_at, v.kind.value)]
            plans += plan_visit(
                visit_id=visit_id, customer_id=cid, vehicle_id=vid, kind=v.kind.value,
                left_at=v.left_at, major_repair=v.major_repair, mileage=v.mileage,
                next_on=v.next_service_on, next_km=v.next_service_km, advisor=v.advisor,
                rules=rules,
            )
        for plan in plans:
            if plan.payload.get("visit_id") in corrected_visits:
                # A corrected visit corrects what is still to be sent for it (major repair,
                # next service date); what already went out stays as it was.
                await Touchpoint.filter(
                    customer_id=plan.customer_id, kind=plan.kind,
                    occasion_key=plan.occasion_key, status=TouchpointStatus.PENDING,
                ).using_db(conn).update(due_at=plan.due_at, expires_at=plan.expires_at,
                                        payload=plan.payload)
        await write_touchpoints(plans, batch_size=CHUNK_SIZE, now=now, conn=conn)
        first = [cars[v.vin][0] for v in known if v.kind is VisitKind.FIRST_SERVICE]
        if first:
            await Touchpoint.filter(
                kind=FIRST_SERVICE, status=TouchpointStatus.PENDING, vehicle_id__in=first
            ).update(status=TouchpointStatus.SKIPPED, status_reason=_VISIT_FIRST_SERVICE_DONE)
    await record_repairs([
        VisitRepairs(visit_id=ids[(cars[v.vin][0], v.left_at, v.kind.value)],
                     vehicle_id=cars[v.vin][0], customer_id=cars[v.vin][1],
                     left_on=v.left_at.astimezone(rules.tz).date(),
                     recommended=v.recommended_repairs, done=v.repairs_done)
        for v in known
    ], today=now.astimezone(rules.tz).date(), now=now, delay_days=rules.repair_reminder_days)
    # The cars' service forecasts (by date or mileage) follow their new readings; a moved
    # forecast drops its unsent reminder.
    await refresh_forecasts(vids, now=now, rules=rules)
    return out


async def _import_visits(
    candidates: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    rules: JourneyRules,
    now: datetime,
    errors: Iterable[RowError] = (),
    warnings: Iterable[RowError] = (),
    extra_rows: int = 0,
) -> ImportResult:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    winners, result = await asyncio.to_thread(_prepare_visits, candidates, rules.tz, now)
    result.total += extra_rows
    result.errors += errors
    result.warnings += warnings
    for start in range(0, len(winners), CHUNK_SIZE):
        chunk = winners[start : start + CHUNK_SIZE]
        try:
            stored = await _store_visits(chunk, rules, now)
        except IntegrityError as exc:  # e.g. the car deleted meanwhile: report, go on
            log.warning("storing visit rows %d-%d failed: %s", chunk[0].row, chunk[-1].row, exc)
            stored = _Stored(errors=[RowError(v.row, "row", f"not stored: {exc}") for v in chunk])
        result.created += stored.created
        result.updated += stored.updated
        result.unchanged += stored.unchanged
        result.errors += stored.errors
        result.warnings += stored.warnings
    result.errors.sort(key=lambda e: e.row)
    result.warnings.sort(key=lambda w: w.row)
    log.info("visits imported: %d rows, %d created, %d updated, %d unchanged, %d failed",
             result.total, result.created, result.updated, result.unchanged, result.failed)
    return result


async def import_visits_file(path: Path, *, rules: JourneyRules, now: datetime) -> ImportResult:
    """Import a CSV/XLSX export of workshop visits (docs/import-format.md, "Visits").

    Raises :class:`IntakeError` when the file as a whole cannot be used.
    """
    path = Path(path)
    records, warnings = await asyncio.to_thread(_file_records, path, VISITS)
    log.info("importing %d visit rows from %s", len(records), path.name)
    return await _import_visits(records, rules=rules, now=now, warnings=warnings)


async def import_visits_records(
    records: Sequence[Any], *, rules: JourneyRules, now: datetime, first_row: int = 1
) -> ImportResult:
    """Import visits sent as JSON objects (``POST /api/v1/visits``); as for deliveries."""
    candidates, errors, warnings = await asyncio.to_thread(
        _api_candidates, records, VISITS, "visit", first_row)
    return await _import_visits(
        candidates, rules=rules, now=now, errors=errors, warnings=warnings, extra_rows=len(errors)
    )


def normalize_plate(value: str) -> str:
    """A plate as stored (``粤A12345``): what staff type in a search, made comparable."""
    return _plate(value) or ""
