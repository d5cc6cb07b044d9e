"""The dealership's workshop figures (issue 17, point 4) on hand-made data, values worked out
by hand in the comments, on SQLite and PostgreSQL; targets met and missed, with the trend."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.kpi_review import review, workshop_rules
from bot.kpi_targets import AT_LEAST, AT_MOST, Target, judge, parse_targets
from bot.periods import month_period, week_period
from bot.workshop_kpi import WorkshopRules, compute_workshop, previous_period
from db.models import (
    Booking,
    BookingKind,
    BookingStatus,
    Customer,
    Thread,
    ThreadKind,
    Vehicle,
    VehicleStatus,
    Visit,
    VisitKind,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SH)
_n = itertools.count(1)


def L(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
      second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


async def car(delivered: datetime | None, *, advisor: str = "李娜", sales: str = "",
              status: VehicleStatus = VehicleStatus.ACTIVE) -> Vehicle:
    i = next(_n)
    owner = await Customer.create(name=f"车主{i}", phone=f"+86138{i:08d}", link_token=f"t{i}",
                                  advisor=advisor)
    return await Vehicle.create(vin=f"LSVAU2180T{i:07d}", customer=owner, delivered_at=delivered,
                                sales_advisor=sales, status=status)


async def visit(v: Vehicle, kind: VisitKind, at: datetime, advisor: str = "") -> Visit:
    return await Visit.create(vehicle=v, kind=kind, left_at=at, advisor=advisor)


async def hand_made() -> dict[str, Vehicle]:
    """November 2026, first-service window 90 days, comeback window 30 days."""
    cars = {
        # 首保率: windows closing in November = deliveries from 3 Aug to 1 Sep (Nov 1 - 90 d
        # = Aug 3; Dec 1 - 90 d = Sep 2, exclusive)
        "A": await car(L(2026, 8, 10, 10), sales="李娜"),   # first service 20 Sep: done in time
        "B": await car(L(2026, 8, 20, 10), sales="王强"),   # first service 1 Dec: too late (18 Nov)
        "C": await car(L(2026, 8, 25, 10), sales="王强"),   # none
        "D": await car(L(2026, 7, 1, 10)),                  # window closed 29 Sep: not counted
        "E": await car(L(2026, 9, 10, 10)),                 # window closes 9 Dec: not counted
        "F": await car(L(2024, 1, 5, 10)),                  # a visit 18 months ago only
        "G": await car(L(2024, 1, 5, 10), status=VehicleStatus.SCRAPPED),
    }
    await visit(cars["A"], VisitKind.FIRST_SERVICE, L(2026, 9, 20, 16), "李娜")
    await visit(cars["B"], VisitKind.FIRST_SERVICE, L(2026, 12, 1, 12), "王强")
    # 返修率: November's jobs (not accidents) and whether the car came back for a repair
    # within 30 days:
    #   A maintenance 5 Nov (李娜) -> A repair 20 Nov: back after 15 days  -> comeback
    #   A repair 20 Nov (李娜)     -> nothing after                          -> no
    #   B repair 10 Nov (王强)     -> (B's 1 Dec visit is a first service)  -> no
    #   C accident 12 Nov          -> not a job
    #   C repair 25 Nov (王强)     -> no
    #   D maintenance 2 Nov (李娜) -> D repair 5 Dec: 33 days               -> no
    # jobs 5, comebacks 1: 返修率 = 1/5 = 20 %; 李娜 1/3, 王强 0/2
    await visit(cars["A"], VisitKind.MAINTENANCE, L(2026, 11, 5, 16), "李娜")
    await visit(cars["A"], VisitKind.REPAIR, L(2026, 11, 20, 16), "李娜")
    await visit(cars["B"], VisitKind.REPAIR, L(2026, 11, 10, 16), "王强")
    await visit(cars["C"], VisitKind.ACCIDENT, L(2026, 11, 12, 16), "王强")
    await visit(cars["C"], VisitKind.REPAIR, L(2026, 11, 25, 16), "王强")
    await visit(cars["D"], VisitKind.MAINTENANCE, L(2026, 11, 2, 16), "李娜")
    await visit(cars["D"], VisitKind.REPAIR, L(2026, 12, 5, 16), "李娜")
    # 基盘客户数 at 1 Dec: a visit from 1 Dec 2025 (12 months) / 1 Dec 2024 (24 months):
    # A, B, C, D in 12 months (B's December visit is after the end, its November one counts)
    # = 4; F's visit of June 2025 adds one to 24 months = 5; G is scrapped
    await visit(cars["F"], VisitKind.MAINTENANCE, L(2025, 6, 1, 16), "李娜")
    await visit(cars["G"], VisitKind.MAINTENANCE, L(2026, 10, 1, 16), "李娜")
    return cars


async def test_first_service_repeat_repair_and_active_base_by_hand(db: str) -> None:
    await hand_made()
    report = await compute_workshop(month_period("2026-11"), SH, WorkshopRules(90, 30),
                                    by_advisor=True)
    d = report.dealership
    # 首保率: A, B, C due; A done = 1/3
    assert (d.first_service_due, d.first_service_done) == (3, 1)
    assert d.first_service_rate == pytest.approx(1 / 3)
    assert (d.jobs, d.comebacks, d.repeat_repair_rate) == (5, 1, pytest.approx(0.2))
    assert (d.base_12m, d.base_24m) == (4, 5)
    li, wang = report.advisors["李娜"], report.advisors["王强"]
    assert (li.jobs, li.comebacks, wang.jobs, wang.comebacks) == (3, 1, 2, 0)
    # first services by the car's sales advisor: A is 李娜's (done), B and C 王强's
    assert (li.first_service_due, li.first_service_done) == (1, 1)
    assert (wang.first_service_due, wang.first_service_done) == (2, 0)
    # the active base by the owner's advisor (every owner here is 李娜's)
    assert (li.base_12m, wang.base_12m) == (4, 0)
    # a longer comeback window takes D's repair 33 days later: 2/5
    longer = await compute_workshop(month_period("2026-11"), SH, WorkshopRules(90, 40))
    assert longer.dealership.comebacks == 2 and not longer.advisors


async def test_booking_rate_from_the_bookings_feature(db: str) -> None:
    cars = await hand_made()
    await Booking.create(customer_id=cars["A"].customer_id, vehicle=cars["A"],
                         day=date(2026, 11, 5), slot="morning", kind=BookingKind.MAINTENANCE,
                         status=BookingStatus.BOOKED, created_at=L(2026, 11, 1, 9))
    report = await compute_workshop(month_period("2026-11"), SH, WorkshopRules(),
                                    by_advisor=True)
    d = report.dealership
    # November's visits: A ×2, B, C ×2, D = 6; A's maintenance on 5 Nov was booked: 1/6
    assert (d.booked_visits, d.visits) == (1, 6)
    assert d.booking_rate == pytest.approx(1 / 6)
    # by the visit's advisor: 李娜 A ×2 and D (one booked) = 1/3; 王强 B, C ×2 = 0/3
    li, wang = report.advisors["李娜"], report.advisors["王强"]
    assert (li.booked_visits, li.visits, wang.booked_visits, wang.visits) == (1, 3, 0, 3)


async def test_renewal_rate_only_from_recorded_outcomes(db: str) -> None:
    cars = await hand_made()
    report = await compute_workshop(month_period("2026-11"), SH, WorkshopRules())
    assert report.dealership.renewal_rate is None  # no outcome recorded: said so, not 0 %
    owner = cars["A"].customer_id
    for outcome in ("renewed_here", "renewed_here", "renewed_elsewhere", "not_renewing", ""):
        await Thread.create(customer_id=owner, kind=ThreadKind.INSURANCE_LEAD, outcome=outcome,
                            created_at=L(2026, 11, 3, 10), updated_at=L(2026, 11, 3, 10))
    report = await compute_workshop(month_period("2026-11"), SH, WorkshopRules())
    # decided 4 (the open lead has no outcome), renewed with us 2: 50 %
    assert (report.dealership.renewals_decided, report.dealership.renewed_here) == (4, 2)
    assert report.dealership.renewal_rate == pytest.approx(0.5)


def test_targets_met_and_missed_with_the_trend() -> None:
    targets = parse_targets("first_service_rate:>=90, repeat_repair_rate:<=1.5%")
    assert targets["first_service_rate"] == Target(0.9, AT_LEAST)
    assert targets["repeat_repair_rate"] == Target(0.015, AT_MOST)
    assert targets["followup_rate"] == Target(1.0, AT_LEAST)  # 回访率 100 %, the manual's
    assert targets["active_base_12m"] == Target(1500, AT_LEAST)
    verdicts = {v.name: v for v in judge(
        {"first_service_rate": 0.95, "repeat_repair_rate": 0.02, "booking_rate": 0.4,
         "active_base_12m": 1200.0},
        {"first_service_rate": 0.8, "repeat_repair_rate": 0.03, "booking_rate": None,
         "active_base_12m": 1200.0},
        targets)}
    fs, rr = verdicts["first_service_rate"], verdicts["repeat_repair_rate"]
    assert (fs.met, fs.trend, fs.better) == (True, "up", True)       # 95 % ≥ 90 %, up from 80
    assert (rr.met, rr.trend, rr.better) == (False, "down", True)    # 2 % > 1.5 %, but down
    assert (verdicts["booking_rate"].met, verdicts["booking_rate"].trend) == (None, "")
    assert (verdicts["active_base_12m"].met, verdicts["active_base_12m"].trend) == (False, "same")
    for bad in ("nonsense:5", "first_service_rate:lots", "booking_rate:>=150"):
        with pytest.raises(ValueError, match=r"first_service_rate|booking_rate|nonsense"):
            parse_targets(bad)


def test_the_period_before() -> None:
    assert previous_period(month_period("2026-03")).label == "2026-02"
    assert previous_period(month_period("2026-01")).label == "2025-12"
    assert previous_period(week_period("2026-W01")).label == "2025-W52"


async def test_the_review_judges_the_dealership_against_its_targets(db: str) -> None:
    await hand_made()
    values: dict[str, Any] = {"_env_file": None, "timezone": "Asia/Shanghai",
                              "kpi_targets": "first_service_rate:>=30, repeat_repair_rate:<=10"}
    settings = Settings(**values)
    got = await review(month_period("2026-11"), settings, workshop_rules(settings), by_advisor=True)
    verdicts = {v.name: v for v in got.verdicts}
    # 首保率 1/3 ≥ 30 %: met; October had no window closing: no trend
    assert verdicts["first_service_rate"].met is True
    assert verdicts["first_service_rate"].trend == ""
    # 返修率 20 % > 10 %: missed; October's one job (G's maintenance) had no comeback: 0 %
    assert verdicts["repeat_repair_rate"].met is False
    assert verdicts["repeat_repair_rate"].previous == 0.0
    assert (
        verdicts["repeat_repair_rate"].trend == "up"
        and verdicts["repeat_repair_rate"].better is False
    )
    # 基盘 4 < 1,500 (the manual's default): missed
    assert verdicts["active_base_12m"].value == 4 and verdicts["active_base_12m"].met is False
    assert got.as_dict()["targets"][0]["figure"] == "followup_rate"


def test_cli_report_shows_the_workshop_figures_and_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main
    from db.setup import close_database, open_database

    url = f"sqlite://{tmp_path}/report.sqlite3"

    async def seeded() -> None:
        await open_database(url)
        try:
            await hand_made()
        finally:
            await close_database()

    asyncio.run(seeded())
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    monkeypatch.setenv("CAREBOT_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("CAREBOT_KPI_TARGETS", "repeat_repair_rate:<=10")
    assert main(["report", "--month", "2026-11", "--by", "advisor"]) == 0
    out = capsys.readouterr().out
    assert "follow-ups due" in out  # the satisfaction KPIs are still there
    line = next(x for x in out.splitlines() if x.strip().startswith("返修率") and "%" in x
                and "≤" in x)
    assert "20.0%" in line and "MISSED" in line and "↑ from 0.0%" in line, line
    assert "李娜" in out and "王强" in out
    # no renewal outcome recorded: said so, not a 0 %
    assert any("续保率" in x and "no renewal outcomes recorded" in x for x in out.splitlines())
    assert main(["report", "--month", "2026-11", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    header, dealer = rows[0], rows[1]
    assert dict(zip(header, dealer, strict=True))["first_service_rate"] == "0.3333"
    target = next(r for r in rows if len(r) > 1 and r[1] == "repeat_repair_rate")
    assert target[2:6] == ["0.2", "0.1", "<=", "missed"]
    assert main(["report", "--month", "2026-11", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workshop"]["dealership"]["active_base_12m"] == 4
