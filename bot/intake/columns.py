"""Column names: which header (English or Chinese, any case or width) means which field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Canonical field -> accepted column names, in order of preference when a file has several.
COLUMNS: dict[str, tuple[str, ...]] = {
    "vin": ("vin", "车架号", "VIN码", "车架号码", "车辆识别代号", "车辆识别代码", "车辆识别号"),
    "plate": (
        "plate", "车牌号", "车牌", "车牌号码", "plate_number", "licence_plate", "license_plate",
    ),
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
    "title": ("title", "称呼", "性别", "salutation", "gender", "sex"),
    "marketing_consent": ("marketing_consent", "营销同意", "同意营销", "营销授权", "consent"),
}  # fmt: skip
REQUIRED = ("vin", "owner_name", "phone", "delivered_at")
_DATE_FIELDS = ("birthday", "licence_expiry", "insurance_expiry", "delivered_at")


_HEADER_NOISE = re.compile(r"[\s_\-./:*#]+")
# Notes in brackets, full-width (\uff08 \uff09) too: Chinese headers write 必填 that way.
_HEADER_NOTE = re.compile(r"[(\[\uff08【].*?[)\]\uff09】]")


# --- column names -----------------------------------------------------------------------


def header_key(text: str) -> str:
    """Compare headers ignoring case, width, spaces, underscores and notes like "(必填)"."""
    text = unicodedata.normalize("NFKC", text)
    text = _HEADER_NOTE.sub("", text)
    return _HEADER_NOISE.sub("", text).casefold()


def build_aliases(columns: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, int]]:
    aliases: dict[str, tuple[str, int]] = {}
    for name, names in columns.items():
        for rank, alias in enumerate(names):
            key = header_key(alias)
            if key in aliases and aliases[key][0] != name:
                raise ValueError(f"column alias {alias!r} is used for two fields")
            aliases.setdefault(key, (name, rank))
    return aliases


_ALIASES = build_aliases(COLUMNS)


@dataclass(frozen=True)
class Spec:
    """What one kind of file holds: its columns, the required ones and the date columns."""

    what: str
    columns: Mapping[str, Sequence[str]]
    required: Sequence[str]
    date_fields: Sequence[str]
    aliases: Mapping[str, tuple[str, int]]


DELIVERIES = Spec("deliveries", COLUMNS, REQUIRED, _DATE_FIELDS, _ALIASES)


def column_field(header: Any, spec: Spec = DELIVERIES) -> tuple[str, int] | None:
    """(canonical field, preference rank) for a column header, or None if not ours."""
    if header is None:
        return None
    return spec.aliases.get(header_key(str(header)))


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def canonical(
    record: Mapping[str, Any], spec: Spec = DELIVERIES
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
        if is_blank(value) and name in best:
            continue
        if name not in best or rank < best[name][0] or is_blank(best[name][1]):
            best[name] = (rank, value)
    return {name: value for name, (_, value) in best.items()}, unknown


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
VISITS = Spec(
    "visits", VISIT_COLUMNS, VISIT_REQUIRED, ("left_at", "next_service_on"),
    build_aliases(VISIT_COLUMNS),
)
