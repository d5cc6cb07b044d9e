"""Workshop visits in (CSV/XLSX and POST /api/v1/visits) and their follow-ups out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.intake import (
    IntakeError,
    import_deliveries_file,
    import_visits_file,
    validate_visit,
)
from bot.journeys.plans import FIRST_SERVICE, SERVICE_DUE, SERVICE_FOLLOWUP, journey_rules
from db.models import ServiceForecast, Touchpoint, TouchpointStatus, Vehicle, Visit, VisitKind
from tests.conftest import BotEnv
from tests.test_walking_skeleton import (
    SH,
    VIN_A,
    VIN_B,
    delivery_row,
    link_by_contact,
    local,
    write_csv,
)

AUTH = {"Authorization": "Bearer test-api-key"}
VISIT_HEADER = "车架号,维修类型,出厂时间,服务顾问,进厂里程,是否大修,下次保养日期,下次保养里程\n"


def visits_csv(path: Path, rows: list[str]) -> Path:
    path.write_text(VISIT_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


async def deliver(env: BotEnv, tmp_path: Path, *rows: str) -> None:
    path = write_csv(tmp_path / "deliveries.csv", list(rows))
    result = await import_deliveries_file(path, rules=journey_rules(env.settings),
                                          now=env.clock.now())
    assert result.errors == []


async def import_visits(env: BotEnv, path: Path) -> Any:
    return await import_visits_file(path, rules=journey_rules(env.settings), now=env.clock.now())


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"vin": VIN_A, "kind": "洗车", "left_at": "2026-11-01"}, "kind", "not a visit kind"),
        ({"vin": VIN_A, "kind": "保养"}, "left_at", "is required"),
        ({"vin": "LSVAU218XN218329", "kind": "保养", "left_at": "2026-11-01"}, "vin", "17"),
        ({"vin": VIN_A, "kind": "保养", "left_at": "2026-12-25"}, "left_at", "future"),
        ({"vin": VIN_A, "kind": "保养", "left_at": "2026-11-01", "mileage": "lots"},
         "mileage", "kilometres"),
        ({"vin": VIN_A, "kind": "维修", "left_at": "2026-11-01", "major_repair": "maybe"},
         "major_repair", "是/否"),
    ],
)
def test_bad_visit_rows_say_why(record: dict[str, Any], field: str, message: str) -> None:
    now = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    visit, errors, _ = validate_visit(record, row=2, tz=SH, now=now)
    assert visit is None
    assert any(e.field == field and message in e.message for e in errors), errors


def test_visit_columns_in_chinese_and_english() -> None:
    now = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    visit, errors, _ = validate_visit(
        {"VIN码": VIN_A, "工单类型": "首保", "完工时间": "2026/11/1 16:30", "接待顾问": "李娜",
         "公里数": "3,012 km", "大修": "否"}, row=2, tz=SH, now=now)
    assert errors == [] and visit is not None
    assert visit.kind is VisitKind.FIRST_SERVICE and visit.mileage == 3012
    assert visit.left_at == local(2026, 11, 1, 16, 30)
    visit, errors, _ = validate_visit(
        {"vin": VIN_A, "kind": "Accident", "left_at": "2026-11-01", "major_repair": "yes"},
        row=3, tz=SH, now=now)
    assert visit is not None and visit.kind is VisitKind.ACCIDENT and visit.major_repair


async def test_a_visit_writes_its_follow_up_naming_the_job_and_the_next_service(
    env: BotEnv, tmp_path: Path
) -> None:
    env.clock.set(local(2026, 11, 3, 17, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-05-03 10:00"))
    owner = await link_by_contact(env, 5001, "13800138000")
    path = visits_csv(tmp_path / "v.csv", [f"{VIN_A},保养,2026-11-03 16:00,李娜,10200,否,,"])
    result = await import_visits(env, path)
    assert (result.created, result.errors) == (1, [])
    visit = await Visit.get(vehicle__vin=VIN_A)
    tp = await Touchpoint.get(kind=SERVICE_FOLLOWUP)
    assert tp.payload["visit_id"] == visit.id and tp.vehicle_id == visit.vehicle_id  # type: ignore[attr-defined]
    assert tp.due_at == local(2026, 11, 5, 10, 0)
    assert (await Vehicle.get(vin=VIN_A)).mileage == 10200
    env.clock.set(local(2026, 11, 5, 10, 0))
    assert (await env.tick()).sent == 1
    text = owner.bot_texts()[-1]
    assert "张伟" in text and "2026-11-03" in text and "定期保养" in text
    assert "2027-05-03" in text and "20200 公里" in text  # 6 months / 10,000 km later
    assert "1 分表示非常不满意" in text and "020-88886666" in text
    # the same file again: nothing new
    again = await import_visits(env, path)
    assert (again.created, again.unchanged) == (0, 1)
    env.clock.set(local(2026, 11, 6, 10, 0))
    await env.tick()
    assert sum("定期保养" in t for t in owner.bot_texts()) == 1
    # the service-due reminder a week before the next service: 10,200 km in the 184 days
    # since the delivery is 55.4 km a day, which reaches 20,200 km 181 days on, 2027-05-03:
    # the same day as 6 months, and a tie is reported as the date
    forecast = await ServiceForecast.get(vehicle_id=visit.vehicle_id)  # type: ignore[attr-defined]
    assert (forecast.due_on, forecast.remind_on, forecast.by) == (
        date(2027, 5, 3), date(2027, 4, 26), "date")
    assert not await Touchpoint.exists(kind=SERVICE_DUE)  # the scan writes it on its day


async def test_major_repair_follow_up_is_valid_for_a_week(env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-01-03 10:00"),
                  delivery_row(VIN_B, "13800138001", "2026-01-03 10:00", name="王芳"))
    path = visits_csv(tmp_path / "v.csv", [
        f"{VIN_A},维修,2026-10-29 16:00,李娜,30000,是,,",   # major: until 11-05
        f"{VIN_B},维修,2026-10-29 16:00,李娜,30000,否,,",   # ordinary: until end of 11-01
    ])
    assert (await import_visits(env, path)).created == 2
    a = await link_by_contact(env, 5001, "13800138000")
    b = await link_by_contact(env, 5002, "13800138001")
    await env.tick()
    assert "大修" in a.bot_texts()[-1]
    assert not any("维修" in t for t in b.bot_texts())
    statuses = {tp.vehicle_id: tp.status for tp in await Touchpoint.filter(kind=SERVICE_FOLLOWUP)}
    assert sorted(statuses.values()) == [TouchpointStatus.EXPIRED, TouchpointStatus.SENT]


async def test_first_service_visit_cancels_the_first_service_reminder(env: BotEnv,
                                                                      tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-11-03 10:00"))
    owner = await link_by_contact(env, 5001, "13800138000")
    env.clock.set(local(2026, 11, 15, 17, 0))
    result = await import_visits(env, visits_csv(tmp_path / "v.csv",
                                                 [f"{VIN_A},首保,2026-11-15 16:00,李娜,2100,否,,"]))
    assert result.created == 1
    reminder = await Touchpoint.get(kind=FIRST_SERVICE)
    assert reminder.status == TouchpointStatus.SKIPPED and "first service" in reminder.status_reason
    env.clock.set(local(2026, 11, 21, 10, 0))
    await env.tick()
    assert not any("快满三周" in t for t in owner.bot_texts())


async def test_first_service_reminder_is_skipped_at_send_time_too(env: BotEnv,
                                                                  tmp_path: Path) -> None:
    """A visit stored some other way (not through the import) still stops the reminder."""
    env.clock.set(local(2026, 11, 3, 10, 30))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-11-03 10:00"))
    owner = await link_by_contact(env, 5001, "13800138000")
    vehicle = await Vehicle.get(vin=VIN_A)
    await Visit.create(vehicle=vehicle, kind=VisitKind.FIRST_SERVICE,
                       left_at=local(2026, 11, 18, 16, 0))
    env.clock.set(local(2026, 11, 21, 10, 0))
    report = await env.tick()
    assert report.skipped >= 1 and not any("快满三周" in t for t in owner.bot_texts())
    reminder = await Touchpoint.get(kind=FIRST_SERVICE)
    assert reminder.status_reason == "first service already done"


async def test_unknown_car_and_bad_rows_are_reported_good_rows_kept(env: BotEnv,
                                                                    tmp_path: Path) -> None:
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-05-03 10:00"))
    result = await import_visits(env, visits_csv(tmp_path / "v.csv", [
        f"{VIN_A},保养,2026-11-01 16:00,李娜,10200,否,,",
        f"{VIN_B},保养,2026-11-01 16:00,李娜,10200,否,,",
        f"{VIN_A},喷漆打蜡,2026-11-02,李娜,,,,",
    ]))
    assert result.created == 1 and result.failed == 2
    assert [(e.row, e.field) for e in result.errors] == [(3, "vin"), (4, "kind")]
    assert "import its delivery first" in result.errors[0].message


async def test_visits_file_without_required_columns(env: BotEnv, tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("车架号,服务顾问\nX,李娜\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="kind"):
        await import_visits(env, path)


async def test_visits_from_xlsx(env: BotEnv, tmp_path: Path) -> None:
    from openpyxl import Workbook

    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-05-03 10:00"))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["维修工单导出"])
    ws.append(["VIN", "维修类型", "出厂日期", "里程"])
    ws.append([VIN_A, "保修", datetime(2026, 11, 2, 15, 0), 12000])
    wb.save(tmp_path / "v.xlsx")
    result = await import_visits(env, tmp_path / "v.xlsx")
    assert (result.created, result.errors) == (1, [])
    assert (await Visit.get()).kind is VisitKind.WARRANTY


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


async def test_post_visits(env: BotEnv, client: TestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-05-03 10:00"))
    good = {"vin": VIN_A, "kind": "repair", "left_at": "2026-11-02T15:00:00+08:00",
            "advisor": "李娜", "mileage": 12000, "major_repair": True,
            "next_service_on": "2027-01-10"}
    r = await client.post("/api/v1/visits", json=[good])
    assert r.status == 401
    r = await client.post("/api/v1/visits", headers=AUTH, json={"visits": [good, {"vin": 1}]})
    assert r.status == 422
    body = await r.json()
    assert body["created"] == 1 and body["failed"] == 1
    r = await client.post("/api/v1/visits", headers=AUTH, json=[good])
    assert r.status == 200 and (await r.json())["unchanged"] == 1
    r = await client.post("/api/v1/visits", headers=AUTH, data=b"{nope")
    assert r.status == 400
    tp = await Touchpoint.get(kind=SERVICE_FOLLOWUP)
    assert tp.payload["major_repair"] is True and tp.payload["next_service_on"] == "2027-01-10"


async def test_a_corrected_visit_corrects_what_is_still_to_be_sent(env: BotEnv,
                                                                   tmp_path: Path) -> None:
    """The DMS first exported the repair as ordinary, then corrected it to a major one with
    another next-service date: the pending follow-up follows the correction."""
    env.clock.set(local(2026, 11, 3, 10, 0))
    await deliver(env, tmp_path, delivery_row(VIN_A, "13800138000", "2026-01-03 10:00"))
    await import_visits(env, visits_csv(tmp_path / "a.csv", [
        f"{VIN_A},维修,2026-11-02 16:00,李娜,30000,否,2027-01-01,",
    ]))
    before = await Touchpoint.get(kind=SERVICE_FOLLOWUP)
    result = await import_visits(env, visits_csv(tmp_path / "b.csv", [
        f"{VIN_A},维修,2026-11-02 16:00,李娜,30000,是,2027-03-01,",
    ]))
    assert result.updated == 1
    after = await Touchpoint.get(kind=SERVICE_FOLLOWUP)
    assert after.id == before.id and after.status == TouchpointStatus.PENDING
    assert after.payload["major_repair"] is True
    assert after.payload["next_service_on"] == "2027-03-01"
    assert after.expires_at is not None and before.expires_at is not None
    assert after.expires_at > before.expires_at  # a major repair's follow-up has a week
