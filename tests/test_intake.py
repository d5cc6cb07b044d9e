"""Deliveries in: validation (pure) and the CSV/XLSX/JSON import into the customer file."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from bot import intake
from bot.clock import FakeClock
from bot.config import parse_quiet_hours
from bot.intake import (
    ImportResult,
    IntakeError,
    RowError,
    import_deliveries_file,
    import_deliveries_records,
    validate_delivery,
)
from bot.intake import deliveries as intake_deliveries
from bot.journeys.plans import CHECKIN, JourneyRules
from bot.vin import check_digit
from db.models import Customer, Touchpoint, TouchpointStatus, Vehicle

TZ = ZoneInfo("Asia/Shanghai")
RULES = JourneyRules(tz=TZ, quiet=parse_quiet_hours("21:00-09:00"))
HEADER = [
    "vin",
    "plate",
    "model",
    "owner_name",
    "phone",
    "birthday",
    "licence_expiry",
    "insurance_expiry",
    "delivered_at",
    "sales_advisor",
    "language",
]
CN_HEADER = [
    "车架号",
    "车牌号",
    "车型",
    "车主姓名",
    "手机",
    "生日",
    "驾照到期",
    "保险到期",
    "交车时间",
    "销售顾问",
    "语言",
]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "deliveries.csv"


def make_vin(serial: int, prefix: str = "LSVAU2180T") -> str:
    """A valid Chinese VIN (check digit fixed up) for a serial number."""
    body = f"{prefix}{serial:07d}"
    return body[:8] + check_digit(body) + body[9:]


V1, V2, V3, V4 = (make_vin(n) for n in (1, 2, 3, 4))


def row(
    vin: str = V1,
    name: str = "张伟",
    phone: str = "138 0013 8000",
    delivered: str = "2026-11-01 14:30",
    **extra: str,
) -> list[str]:
    values = {
        "vin": vin,
        "plate": "沪A·D12345",
        "model": "朗逸",
        "owner_name": name,
        "phone": phone,
        "birthday": "1985-03-12",
        "licence_expiry": "2029-06-30",
        "insurance_expiry": "2027-10-31",
        "delivered_at": delivered,
        "sales_advisor": "李娜",
        "language": "",
    }
    values.update(extra)
    return [values[h] for h in HEADER]


def write_csv(
    path: Path, rows: list[list[Any]], header: list[str] = HEADER, encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def validate(
    record: dict[str, Any], clock: FakeClock
) -> tuple[Any, list[RowError], list[RowError]]:
    return validate_delivery(record, row=2, tz=TZ, now=clock.now())


def base_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "vin": V1,
        "owner_name": "张伟",
        "phone": "13800138000",
        "delivered_at": "2026-11-01 14:30",
    }
    record.update(changes)
    return record


def messages(items: list[RowError]) -> list[tuple[int, str]]:
    return [(e.row, e.field) for e in items]


# --- validation (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-01",
        "2026/11/1",
        "2026/11/01",
        "2026.11.1",
        "20261101",
        20261101,
        "2026年11月1日",
        "２０２６年１１月１日",
        date(2026, 11, 1),
        datetime(2026, 11, 1, 0, 0),  # an Excel date cell
        "2026-11-01 00:00:00",  # a DMS writing dates as midnight datetimes
    ],
)
def test_delivery_dates_without_time_mean_noon_local(value: Any, clock: FakeClock) -> None:
    delivery, errors, _ = validate(base_record(delivered_at=value), clock)
    assert errors == []
    assert delivery.delivered_at == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 12:00 +08:00


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-01 14:30",
        "2026/11/1 14:30:00",
        "2026.11.1 14:30",
        "2026-11-01T14:30",
        "2026年11月1日 14:30",
        "2026年11月1日 14时30分",
        datetime(2026, 11, 1, 14, 30),
        "2026-11-01T14:30:00+08:00",
        "2026-11-01T06:30:00Z",
    ],
)
def test_delivery_times_are_local_and_stored_in_utc(value: Any, clock: FakeClock) -> None:
    delivery, errors, _ = validate(base_record(delivered_at=value), clock)
    assert errors == []
    assert delivery.delivered_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert delivery.delivered_at.tzinfo is not None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("birthday", "1985-03-12", date(1985, 3, 12)),
        ("birthday", "1985/3/12", date(1985, 3, 12)),
        ("birthday", "1985.3.12", date(1985, 3, 12)),
        ("birthday", "19850312", date(1985, 3, 12)),
        ("birthday", "1985年3月12日", date(1985, 3, 12)),
        ("birthday", datetime(1985, 3, 12), date(1985, 3, 12)),
        ("birthday", "1985-03-12 00:00:00", date(1985, 3, 12)),
        ("licence_expiry", "2029/6/30", date(2029, 6, 30)),
        ("insurance_expiry", date(2027, 10, 31), date(2027, 10, 31)),
        ("insurance_expiry", "", None),
        ("insurance_expiry", None, None),
        ("insurance_expiry", "-", None),
    ],
)
def test_plain_dates(field: str, value: Any, expected: date | None, clock: FakeClock) -> None:
    delivery, errors, _ = validate(base_record(**{field: value}), clock)
    assert errors == []
    assert getattr(delivery, field) == expected


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("delivered_at", "2026-13-01", "not a real date"),
        ("delivered_at", "2026-02-30", "not a real date"),
        ("delivered_at", "yesterday", "is not a date"),
        ("delivered_at", "", "is required"),
        ("delivered_at", "2026-11-05 10:00", "in the future"),
        ("birthday", "2030-01-01", "in the future"),
        ("birthday", "0985-03-12", "not a plausible date"),
        ("insurance_expiry", "31/10/2027", "is not a date"),
        ("phone", "12345", "'12345' is not a valid phone number"),
        ("phone", "", "is required"),
        ("owner_name", "  ", "is required"),
        ("owner_name", "张" * 101, "at most 100"),
        ("vin", "LSVAU2180T2051637", "check digit"),
        ("vin", None, "is required"),
    ],
)
def test_bad_values_are_row_errors(field: str, value: Any, reason: str, clock: FakeClock) -> None:
    delivery, errors, _ = validate(base_record(**{field: value}), clock)
    assert delivery is None
    assert [(e.row, e.field) for e in errors] == [(2, field)]
    assert reason in errors[0].message


def test_delivery_just_within_a_day_ahead_is_accepted(clock: FakeClock) -> None:
    soon = (clock.now() + timedelta(hours=23)).astimezone(TZ).strftime("%Y-%m-%d %H:%M")
    delivery, errors, _ = validate(base_record(delivered_at=soon), clock)
    assert errors == [] and delivery is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zh", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh_CN", "zh_CN"),
        ("中文", "zh_CN"),
        ("en", "en"),
        ("EN", "en"),
        ("English", "en"),
        ("", None),
    ],
)
def test_languages(value: str, expected: str | None, clock: FakeClock) -> None:
    delivery, errors, warnings = validate(base_record(language=value), clock)
    assert errors == [] and warnings == []
    assert delivery.language == expected


def test_unknown_language_is_a_warning_not_an_error(clock: FakeClock) -> None:
    delivery, errors, warnings = validate(base_record(language="français"), clock)
    assert errors == [] and delivery.language is None
    assert messages(warnings) == [(2, "language")]


def test_values_are_normalised(clock: FakeClock) -> None:
    record = base_record(
        vin=" " + V1.lower()[:5] + " " + V1.lower()[5:],
        phone="+86 138-0013-8000",
        plate="沪a·d 12345",
        owner_name="  张伟 ",
    )
    delivery, errors, _ = validate(record, clock)
    assert errors == []
    assert (delivery.vin, delivery.phone, delivery.plate, delivery.owner_name) == (
        V1,
        "+8613800138000",
        "沪AD12345",
        "张伟",
    )


def test_headers_in_chinese_and_odd_spellings(clock: FakeClock) -> None:
    record: dict[str, Any] = {
        "VIN码": V1,
        "客户姓名": "张伟",
        "手机号": "13800138000",
        "交车日期": "2026-11-01",
    }
    delivery, errors, _ = validate(record, clock)
    assert errors == [] and delivery.owner_name == "张伟"
    record = {"VIN": V1, "Owner Name": "张伟", "PHONE": 13800138000, "Delivered At": "20261101"}
    delivery, errors, _ = validate(record, clock)
    assert errors == [] and delivery.phone == "+8613800138000"


def test_european_vin_with_odd_check_digit_is_a_warning(clock: FakeClock) -> None:
    delivery, errors, warnings = validate(base_record(vin="WBA3A5C50CF256985"), clock)
    assert errors == [] and delivery.vin == "WBA3A5C50CF256985"
    assert messages(warnings) == [(2, "vin")]


def test_column_aliases_do_not_collide() -> None:
    seen: dict[str, str] = {}
    for name, aliases in intake.COLUMNS.items():
        for alias in aliases:
            assert intake.column_field(alias) is not None
            assert intake.column_field(alias)[0] == name  # type: ignore[index]
            seen[alias] = name
    assert all(h in seen for h in HEADER + CN_HEADER)


def test_result_summary_and_dict() -> None:
    result = ImportResult(total=3, created=1, unchanged=1)
    result.errors.append(RowError(3, "phone", "'1' is not a valid phone number"))
    text = result.summary()
    assert "3 rows: 1 created, 0 updated, 1 unchanged, 1 with errors" in text
    assert "row 3, phone: '1' is not a valid phone number" in text
    data = result.to_dict()
    assert data["failed"] == 1
    assert data["errors"] == [
        {"row": 3, "field": "phone", "message": "'1' is not a valid phone number"}
    ]


# --- importing files ----------------------------------------------------------------------


async def test_example_file_imports_cleanly(db: str, clock: FakeClock) -> None:
    result = await import_deliveries_file(EXAMPLE, rules=RULES, now=clock.now())
    assert result.errors == [] and result.warnings == []
    assert (result.total, result.created) == (8, 8)
    assert await Vehicle.all().count() == 8
    assert await Customer.all().count() == 7  # 张伟 bought two cars
    zhang = await Customer.get(phone="+8613800138000").prefetch_related("vehicles")
    assert sorted(v.model for v in zhang.vehicles) == ["上汽大众 朗逸 2026款", "宝马 530Li"]
    yang = await Customer.get(name="杨帆")
    assert yang.language == "en"


async def test_csv_with_bad_rows_reports_them_and_stores_the_good(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        [
            row(V1, "张伟", "138 0013 8000"),  # row 2: good
            row(V2, "王芳", "12345"),  # row 3: bad phone
            row("LSVAU2180T2051637", "李强", "13700001234"),  # row 4: bad check digit
            ["", "", "", "", "", "", "", "", "", "", ""],  # row 5: empty, skipped
            row(V3, "刘洋", "13612345678", delivered=""),  # row 6: missing date
            row(V4, "陈静", "15800001111"),  # row 7: good
        ],
    )
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert messages(result.errors) == [(3, "phone"), (4, "vin"), (6, "delivered_at")]
    assert result.errors[0].message == "'12345' is not a valid phone number"
    assert (result.total, result.created, result.failed) == (5, 2, 3)
    assert sorted(await Vehicle.all().values_list("vin", flat=True)) == sorted([V1, V4])
    assert await Customer.filter(phone="+8613800138000").exists()
    assert "3 with errors" in result.summary()


async def test_checkin_touchpoint_due_two_hours_after_delivery(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "d.csv", [row(V1, delivered="2026-11-01 14:30")])
    await import_deliveries_file(path, rules=RULES, now=clock.now())
    vehicle = await Vehicle.get(vin=V1)
    delivered = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert vehicle.delivered_at == delivered
    tp = await Touchpoint.get(kind=CHECKIN)
    assert tp.due_at == delivered + timedelta(hours=2)
    assert tp.vehicle_id == vehicle.id
    assert tp.customer_id == vehicle.customer_id


async def test_reimport_changes_nothing(db: str, clock: FakeClock, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        [row(V1), row(V2, "王芳", "13912345678"), row(V3, "张伟", "13800138000")],
    )
    first = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    touchpoints = await Touchpoint.all().count()
    customers = await Customer.all().values("id", "link_token", "updated_at")
    assert touchpoints == 3 * 4  # the delivery journey: check-in, day 3, day 7, first service
    clock.advance(hours=1)
    again = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert (again.total, again.created, again.updated, again.unchanged) == (3, 0, 0, 3)
    assert again.errors == [] and again.warnings == []
    assert await Touchpoint.all().count() == touchpoints
    assert await Customer.all().values("id", "link_token", "updated_at") == customers


async def test_reimport_with_changes_updates_and_blank_never_erases(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    await import_deliveries_file(
        write_csv(tmp_path / "a.csv", [row(V1), row(V2, "王芳", "13912345678")]),
        rules=RULES,
        now=clock.now(),
    )
    changed = row(V1, plate="沪A99999", birthday="", insurance_expiry="2028-10-31")
    result = await import_deliveries_file(
        write_csv(tmp_path / "b.csv", [changed, row(V2, "王芳", "13912345678")]),
        rules=RULES,
        now=clock.now(),
    )
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    vehicle = await Vehicle.get(vin=V1)
    assert (vehicle.plate, vehicle.insurance_expiry) == ("沪A99999", date(2028, 10, 31))
    owner = await Customer.get(phone="+8613800138000")
    assert owner.birthday == date(1985, 3, 12)  # the blank cell kept it


async def test_same_phone_two_vins_is_one_customer_two_vehicles(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "d.csv", [row(V1, phone="138 0013 8000"), row(V2, phone="+86 13800138000")]
    )
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert result.created == 2 and result.errors == []
    customer = await Customer.get().prefetch_related("vehicles")
    assert customer.phone == "+8613800138000"
    assert sorted(v.vin for v in customer.vehicles) == sorted([V1, V2])
    assert customer.advisor == "李娜"
    assert 24 <= len(customer.link_token) <= 64
    assert await Touchpoint.filter(customer_id=customer.id, kind=CHECKIN).count() == 2


async def test_same_vin_twice_later_row_wins(db: str, clock: FakeClock, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [row(V1, plate="沪A11111"), row(V1, plate="沪A22222")])
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert (result.total, result.created, result.superseded) == (2, 1, 1)
    assert messages(result.warnings) == [(2, "vin")]
    assert "row 3" in result.warnings[0].message
    assert (await Vehicle.get(vin=V1)).plate == "沪A22222"


async def test_vin_on_another_owners_file_moves_with_a_warning(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    await import_deliveries_file(
        write_csv(tmp_path / "a.csv", [row(V1, "张伟", "13800138000")]),
        rules=RULES,
        now=clock.now(),
    )
    result = await import_deliveries_file(
        write_csv(tmp_path / "b.csv", [row(V1, "王芳", "13912345678")]),
        rules=RULES,
        now=clock.now(),
    )
    assert (result.created, result.updated) == (0, 1)
    assert messages(result.warnings) == [(2, "vin")]
    assert result.warnings[0].message.startswith("ownership changed")
    vehicle = await Vehicle.get(vin=V1).prefetch_related("customer")
    assert vehicle.customer.name == "王芳"
    assert await Customer.all().count() == 2
    # The first owner must not be asked about a car that is not theirs.
    old, new = await Touchpoint.filter(kind=CHECKIN).order_by("id").prefetch_related("customer")
    assert await Touchpoint.filter(customer__name="张伟").exclude(
        status=TouchpointStatus.SKIPPED).count() == 0  # nor any later step of that journey
    assert (old.customer.name, old.status) == ("张伟", TouchpointStatus.SKIPPED)
    assert (new.customer.name, new.status) == ("王芳", TouchpointStatus.PENDING)


async def test_corrected_delivery_time_replaces_the_planned_checkin(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    await import_deliveries_file(
        write_csv(tmp_path / "a.csv", [row(V1, delivered="2026-11-03 09:00")]),
        rules=RULES,
        now=clock.now(),
    )
    result = await import_deliveries_file(
        write_csv(tmp_path / "b.csv", [row(V1, delivered="2026-11-03 09:30")]),
        rules=RULES,
        now=clock.now(),
    )
    assert result.updated == 1
    assert messages(result.warnings) == [(2, "delivered_at")]
    assert "09:00 to 2026-11-03 09:30" in result.warnings[0].message
    old, new = await Touchpoint.filter(kind=CHECKIN).order_by("id")
    assert old.status == TouchpointStatus.SKIPPED and old.status_reason
    assert new.status == TouchpointStatus.PENDING
    assert new.due_at == datetime(2026, 11, 3, 3, 30, tzinfo=UTC)  # 11:30 local


async def test_seconds_only_difference_keeps_the_checkin(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    """A CSV export with seconds, then an XLSX without: the same delivery, nothing cancelled."""
    await import_deliveries_file(
        write_csv(tmp_path / "a.csv", [row(V1, delivered="2026-11-03 09:30:05")]),
        rules=RULES,
        now=clock.now(),
    )
    result = await import_deliveries_file(
        write_csv(tmp_path / "b.csv", [row(V1, delivered="2026-11-03 09:30")]),
        rules=RULES, now=clock.now(),
    )
    assert result.warnings == []
    [checkin] = await Touchpoint.filter(kind=CHECKIN)
    assert checkin.status == TouchpointStatus.PENDING


async def test_corrected_time_after_the_checkin_went_out_sends_no_second_one(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    await import_deliveries_file(
        write_csv(tmp_path / "a.csv", [row(V1, delivered="2026-11-03 09:00")]),
        rules=RULES,
        now=clock.now(),
    )
    await Touchpoint.filter(kind=CHECKIN).update(status=TouchpointStatus.SENT, sent_at=clock.now())
    await import_deliveries_file(
        write_csv(tmp_path / "b.csv", [row(V1, delivered="2026-11-03 09:40")]),
        rules=RULES,
        now=clock.now(),
    )
    checkins = await Touchpoint.filter(kind=CHECKIN)
    assert [t.status for t in checkins] == [TouchpointStatus.SENT]  # no new check-in planned
    # the rest of the journey moves to the corrected time
    assert await Touchpoint.filter(status=TouchpointStatus.PENDING).exclude(kind=CHECKIN).exists()


async def test_utf8_bom_and_gb18030_files(db: str, clock: FakeClock, tmp_path: Path) -> None:
    bom = write_csv(tmp_path / "bom.csv", [row(V1, "张伟")], header=CN_HEADER, encoding="utf-8-sig")
    gbk = write_csv(
        tmp_path / "gbk.csv", [row(V2, "王芳", "13912345678")], header=CN_HEADER, encoding="gb18030"
    )
    assert gbk.read_bytes().decode("gb18030")  # really not UTF-8
    with pytest.raises(UnicodeDecodeError):
        gbk.read_bytes().decode("utf-8")
    for path in (bom, gbk):
        result = await import_deliveries_file(path, rules=RULES, now=clock.now())
        assert result.errors == [] and result.created == 1, result.summary()
    assert sorted(await Customer.all().values_list("name", flat=True)) == ["张伟", "王芳"]


async def test_xlsx_file(db: str, clock: FakeClock, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["交车明细表 2026-11"])  # a title line above the header, as DMS exports have
    ws.append([*CN_HEADER, "备注"])
    ws.append(
        [
            V1,
            "沪A·D12345",
            "朗逸",
            "张伟",
            13800138000,
            datetime(1985, 3, 12),
            datetime(2029, 6, 30),
            datetime(2027, 10, 31),
            datetime(2026, 11, 1, 14, 30),
            "李娜",
            "中文",
            "VIP",
        ]
    )
    ws.append([])  # an empty row: skipped
    ws.append(
        [V2, None, "速腾", "王芳", "139 1234 5678", None, None, 46691, "2026/11/2", None, "en"]
    )  # 46691: a date cell that lost its format (2027-10-31)
    ws.append([V3, None, None, "李强", "junk", None, None, None, datetime(2026, 11, 2), None, None])
    path = tmp_path / "deliveries.xlsx"
    wb.save(path)
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert messages(result.errors) == [(6, "phone")]
    assert result.created == 2
    assert messages(result.warnings) == [(2, "header")]  # 备注 is not used
    v1 = await Vehicle.get(vin=V1).prefetch_related("customer")
    assert v1.delivered_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert v1.customer.birthday == date(1985, 3, 12)
    assert v1.customer.phone == "+8613800138000"
    v2 = await Vehicle.get(vin=V2).prefetch_related("customer")
    assert v2.insurance_expiry == date(2027, 10, 31)
    assert v2.delivered_at == datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
    assert v2.customer.language == "en"


async def test_missing_required_column_is_one_clear_error(clock: FakeClock, tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "phone"]
    path = tmp_path / "d.csv"
    path.write_text(",".join(header) + "\n" + ",".join(["x"] * len(header)) + "\n")
    with pytest.raises(IntakeError) as info:
        await import_deliveries_file(path, rules=RULES, now=clock.now())
    message = str(info.value)
    assert "missing required column: phone" in message
    assert "'owner_name'" in message  # lists the headers it found


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("d.pdf", b"%PDF", "unknown file type .pdf"),
        ("d.xls", b"\xd0\xcf\x11\xe0", ".xlsx or CSV"),
        ("d.csv", b"", "is empty"),
        ("d.csv", b"a,b,c\n1,2,3\n", "no header row"),
        ("d.csv", b"\xff\xfe\xff\xff\x00", "not valid UTF-16"),
        ("d.xlsx", b"not a zip", "cannot open"),
    ],
)
async def test_unusable_files(
    name: str, content: bytes, reason: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IntakeError, match=reason):
        await import_deliveries_file(path, rules=RULES, now=clock.now())


async def test_missing_file(clock: FakeClock, tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="cannot read"):
        await import_deliveries_file(tmp_path / "nope.csv", rules=RULES, now=clock.now())


async def test_tab_separated_utf16_export(db: str, clock: FakeClock, tmp_path: Path) -> None:
    lines = ["\t".join(CN_HEADER), "\t".join(row(V1))]
    path = tmp_path / "d.txt"
    path.write_bytes("\n".join(lines).encode("utf-16"))
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert result.created == 1 and result.errors == []


async def test_chunks_share_owners(
    db: str, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of one owner spread over several chunks make one owner file."""
    monkeypatch.setattr(intake_deliveries, "CHUNK_SIZE", 2)
    rows = [row(make_vin(n), "张伟", "13800138000") for n in range(1, 6)]
    rows.insert(2, row(make_vin(9), "王芳", "13912345678"))
    path = write_csv(tmp_path / "d.csv", rows)
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert (result.created, result.updated, result.unchanged) == (6, 0, 0)
    assert await Customer.all().count() == 2
    assert await Touchpoint.filter(kind=CHECKIN).count() == 6
    again = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)


async def test_name_conflict_for_one_phone_warns_and_uses_the_later_name(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "d.csv", [row(V1, "张伟"), row(V2, "张 伟")])
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert messages(result.warnings) == [(3, "owner_name")]
    assert (await Customer.get()).name == "张 伟"


async def test_existing_advisor_is_kept(db: str, clock: FakeClock, tmp_path: Path) -> None:
    await Customer.create(name="张伟", phone="+8613800138000", link_token="t", advisor="周军")
    path = write_csv(tmp_path / "d.csv", [row(V1)])
    result = await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert (result.created, result.errors) == (1, [])
    customer = await Customer.get()
    assert (customer.advisor, customer.link_token) == ("周军", "t")
    assert (await Vehicle.get()).sales_advisor == "李娜"


# --- the HTTP API's path ------------------------------------------------------------------


async def test_records_path(db: str, clock: FakeClock) -> None:
    records: list[Any] = [
        {"vin": V1, "owner_name": "张伟", "phone": 13800138000, "delivered_at": "2026-11-01"},
        ["not", "an", "object"],
        {"vin": V2, "owner_name": "王芳", "phone": True, "delivered_at": "2026-11-01"},
        {
            "vin": V3,
            "owner_name": "李强",
            "phone": "13700001234",
            "delivered_at": 20261101,
            "birthday": ["1985"],
            "insurance_expiry": None,
            "colour": "white",
        },
        {},
        None,
        {
            "vin": V4,
            "owner_name": 42,
            "phone": "15800001111",
            "delivered_at": "2026-11-01T14:30:00+08:00",
            "language": "EN",
            "plate": None,
        },
    ]
    result = await import_deliveries_records(records, rules=RULES, now=clock.now())
    assert messages(result.errors) == [(2, "row"), (3, "phone"), (4, "birthday"), (6, "row")]
    assert "got a list" in result.errors[0].message
    assert "got true/false" in result.errors[1].message
    assert "got null" in result.errors[3].message
    assert messages(result.warnings) == [(4, "colour")]
    assert (result.total, result.created, result.failed) == (6, 2, 4)
    v4 = await Vehicle.get(vin=V4).prefetch_related("customer")
    assert v4.customer.name == "42" and v4.customer.language == "en"
    assert v4.delivered_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    again = await import_deliveries_records(records, rules=RULES, now=clock.now())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


async def test_records_first_row_offsets_row_numbers(db: str, clock: FakeClock) -> None:
    result = await import_deliveries_records(
        [{"vin": V1, "owner_name": "张伟", "phone": "x", "delivered_at": "2026-11-01"}],
        rules=RULES,
        now=clock.now(),
        first_row=101,
    )
    assert messages(result.errors) == [(101, "phone")]


async def test_nothing_half_written_when_a_chunk_fails(
    db: str, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing touchpoints rolls back that chunk's owners and cars too."""

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(intake_deliveries, "write_touchpoints", broken)
    path = write_csv(tmp_path / "d.csv", [row(V1), row(V2, "王芳", "13912345678")])
    with pytest.raises(RuntimeError):
        await import_deliveries_file(path, rules=RULES, now=clock.now())
    assert await Customer.all().count() == 0
    assert await Vehicle.all().count() == 0


def test_aware_timestamps_for_dates_are_read_in_the_dealers_zone() -> None:
    from datetime import date as _date
    from datetime import datetime as _dt
    from zoneinfo import ZoneInfo as _Zone

    from bot.intake import validate_delivery as _validate

    row, errors, _ = _validate(
        {"vin": "LSVAU218XN2183294", "owner_name": "王芳", "phone": "13800138000",
         "delivered_at": "2026-11-03 10:00", "birthday": "1988-03-11T16:00:00Z",
         "insurance_expiry": "2027-10-31T16:00:00.000Z"},
        row=1, tz=_Zone("Asia/Shanghai"), now=_dt(2026, 11, 3, 4, 0, tzinfo=UTC),
    )
    assert errors == [] and row is not None
    assert row.birthday == _date(1988, 3, 12)
    assert row.insurance_expiry == _date(2027, 11, 1)
