"""One validation per kind of row, shared by the file and HTTP paths (pure: no database)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, TypeVar

from bot.intake.columns import (
    REQUIRED,
    VISIT_REQUIRED,
    VISITS,
    Spec,
    canonical,
    is_blank,
)
from bot.intake.results import DeliveryRow, RowError, VisitRow
from bot.intake.values import (
    FieldError,
    parse_calendar,
    parse_day,
    parse_flag,
    parse_instant,
    parse_km,
    parse_language,
    parse_marketing_consent,
    parse_plate,
    parse_repair_items,
    parse_text,
    parse_title,
    parse_visit_kind,
    type_name,
)
from bot.phones import PhoneError, parse_phone
from bot.vin import check_vin

FUTURE_TOLERANCE = timedelta(days=1)


_MAX_LEN = {"owner_name": 100, "model": 100, "sales_advisor": 100, "plate": 20}


_T = TypeVar("_T")


def validate_delivery(
    record: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[DeliveryRow | None, list[RowError], list[RowError]]:
    """Check one delivery record; pure (no database), shared by the file and HTTP paths.

    Keys are column names in English or Chinese (case, spaces and underscores ignored);
    values are strings, numbers, None, or date/datetime objects (spreadsheet cells).
    Returns ``(delivery or None, errors, warnings)``; the delivery is None when there are errors.
    """
    values, _ = canonical(record)
    return validate_values(values, row=row, tz=tz, now=now)


class _Checker:
    """One row's values checked field by field; problems collected as errors or warnings."""

    def __init__(self, values: Mapping[str, Any], row: int, required: Sequence[str]) -> None:
        self.values, self.row, self.required = values, row, required
        self.errors: list[RowError] = []
        self.warnings: list[RowError] = []

    def get(
        self, name: str, parse: Callable[[Any], _T | None], *, warn_only: bool = False
    ) -> _T | None:
        row = self.row
        try:
            parsed = parse(self.values.get(name))
        except (FieldError, PhoneError) as exc:
            (self.warnings if warn_only else self.errors).append(RowError(row, name, str(exc)))
            return None
        if parsed is None and name in self.required:
            self.errors.append(RowError(row, name, "is required"))
        limit = _MAX_LEN.get(name)
        if limit is not None and isinstance(parsed, str) and len(parsed) > limit:
            self.errors.append(RowError(row, name, f"is {len(parsed)} characters; at most {limit}"))
            return None
        return parsed

    def vin(self) -> str | None:
        raw_vin = self.get("vin", parse_text)
        if raw_vin is None:
            return None
        checked = check_vin(raw_vin)
        if checked.error:
            self.errors.append(RowError(self.row, "vin", checked.error))
            return None
        if checked.warning:
            self.warnings.append(RowError(self.row, "vin", checked.warning))
        return checked.vin

    def phone(self) -> str | None:
        raw_phone = self.get("phone", parse_text)
        if raw_phone is None:
            return None
        try:
            parsed_phone = parse_phone(raw_phone)
        except PhoneError as exc:
            self.errors.append(RowError(self.row, "phone", str(exc)))
            return None
        phone = parsed_phone.e164
        if parsed_phone.landline:
            self.warnings.append(RowError(
                self.row, "phone",
                f"{phone} is a landline; the owner cannot link Telegram by sharing it"))
        return phone

    def future(self, name: str, when: datetime | None, tz: tzinfo, now: datetime) -> None:
        """An error when ``when`` is later than now allows (a day's tolerance)."""
        if when is not None and when > now + FUTURE_TOLERANCE:
            local = when.astimezone(tz)
            self.errors.append(RowError(self.row, name, f"{local:%Y-%m-%d %H:%M} is in the future"))


def validate_values(
    values: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[DeliveryRow | None, list[RowError], list[RowError]]:
    check = _Checker(values, row, REQUIRED)
    get = check.get
    vin = check.vin()
    phone = check.phone()
    owner_name = get("owner_name", parse_text)
    delivered_at = get("delivered_at", lambda v: parse_instant(v, tz))
    check.future("delivered_at", delivered_at, tz, now)
    birthday = get("birthday", lambda v: parse_day(v, tz))
    if birthday is not None and birthday > now.astimezone(tz).date():
        check.errors.append(RowError(row, "birthday", f"{birthday.isoformat()} is in the future"))
    delivery = DeliveryRow(
        row=row,
        vin=vin or "",
        owner_name=owner_name or "",
        phone=phone or "",
        delivered_at=delivered_at or now,
        plate=get("plate", parse_plate),
        model=get("model", parse_text),
        birthday=birthday,
        licence_expiry=get("licence_expiry", lambda v: parse_day(v, tz)),
        insurance_expiry=get("insurance_expiry", lambda v: parse_day(v, tz)),
        sales_advisor=get("sales_advisor", parse_text),
        language=get("language", parse_language, warn_only=True),
        title=get("title", parse_title, warn_only=True),
        birthday_lunar=get("birthday_calendar", parse_calendar, warn_only=True),
        marketing_consent=get("marketing_consent", parse_marketing_consent, warn_only=True),
    )
    if check.errors:
        return None, check.errors, check.warnings
    return delivery, check.errors, check.warnings


def validate_visit(
    record: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[VisitRow | None, list[RowError], list[RowError]]:
    """Check one visit record; pure, shared by the file and HTTP paths (like deliveries)."""
    values, _ = canonical(record, VISITS)
    return validate_visit_values(values, row=row, tz=tz, now=now)


def validate_visit_values(
    values: Mapping[str, Any], *, row: int, tz: tzinfo, now: datetime
) -> tuple[VisitRow | None, list[RowError], list[RowError]]:
    check = _Checker(values, row, VISIT_REQUIRED)
    get, errors, warnings = check.get, check.errors, check.warnings
    vin = check.vin()
    kind = get("kind", parse_visit_kind)
    left_at = get("left_at", lambda v: parse_instant(v, tz))
    check.future("left_at", left_at, tz, now)
    advisor = get("advisor", parse_text) or ""
    if len(advisor) > 100:
        errors.append(RowError(row, "advisor", f"is {len(advisor)} characters; at most 100"))
    mileage = get("mileage", parse_km)
    major = get("major_repair", parse_flag)
    next_on = get("next_service_on", parse_day, warn_only=True)
    next_km = get("next_service_km", parse_km, warn_only=True)
    recommended = get("recommended_repairs", parse_repair_items) or ()
    done = get("repairs_done", parse_repair_items) or ()
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


def api_candidates(records: Sequence[Any], spec: Spec, noun: str, first_row: int
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
            got = "null" if item is None else type_name(item)
            errors.append(
                RowError(number, "row", f"expected an object with the {noun}'s fields, got {got}")
            )
            continue
        values, unknown = canonical(item, spec)
        for key in unknown:
            if key not in unknown_seen:
                unknown_seen.add(key)
                warnings.append(RowError(number, key, "unknown field, ignored"))
        if all(is_blank(v) for v in values.values()):
            continue
        candidates.append((number, values))
    return candidates, errors, warnings
