"""KPIs on a fixed data set whose every expected value is worked out by hand below.

The period is November 2026 in Asia/Shanghai: 2026-10-31 16:00 UTC to 2026-11-30 16:00 UTC.
Rows near the edges (local 00:30 on 1 November, local 00:30 on 1 December) check that the
bounds are local midnights, not UTC ones.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import kpi
from bot.cli.report import render
from bot.kpi import DEALERSHIP, Kpis, PeriodError, month_period, range_period, week_period
from db.models import (
    Customer,
    Score,
    ScoreRates,
    Ticket,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
    VisitKind,
)

TZ = ZoneInfo("Asia/Shanghai")


def L(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    """A local (Shanghai) time as the UTC datetime that is stored."""
    return datetime(y, mo, d, h, mi, tzinfo=TZ).astimezone(UTC)


# --------------------------------------------------------------------------- periods


def test_month_week_and_range_periods() -> None:
    nov = month_period("2026-11")
    assert (nov.start, nov.end, nov.label) == (date(2026, 11, 1), date(2026, 12, 1), "2026-11")
    assert nov.utc_bounds(TZ) == (datetime(2026, 10, 31, 16, tzinfo=UTC),
                                  datetime(2026, 11, 30, 16, tzinfo=UTC))
    dec = month_period("2026-12")
    assert dec.end == date(2027, 1, 1)
    w45 = week_period("2026-W45")
    assert (w45.start, w45.end) == (date(2026, 11, 2), date(2026, 11, 9))  # Monday to Monday
    assert week_period("2026w45") == w45
    days = range_period("2026-11-01", "2026-11-15")
    assert (days.start, days.end) == (date(2026, 11, 1), date(2026, 11, 16))
    for bad in ("2026-13", "11/2026", "2026"):
        with pytest.raises(PeriodError):
            month_period(bad)
    with pytest.raises(PeriodError):
        week_period("2026-W54")
    with pytest.raises(PeriodError):
        range_period("2026-11-15", "2026-11-01")


def test_rates_and_categories_of_an_empty_scope() -> None:
    k = Kpis("x")
    assert k.followup_rate is None and k.delight_rate is None and k.average is None
    assert k.weakest == [] and k.strongest == []


# --------------------------------------------------------------------------- the data set


async def _customer(name: str, advisor: str = "") -> Customer:
    return await Customer.create(name=name, phone=f"+86138{secrets.randbelow(10**8):08d}",
                                 advisor=advisor, link_token=secrets.token_urlsafe(12))


async def _vehicle(customer: Customer, vin: str, sales: str, delivered: datetime) -> Vehicle:
    return await Vehicle.create(vin=vin, customer=customer, sales_advisor=sales,
                                delivered_at=delivered)


async def _tp(customer: Customer, vehicle: Vehicle | None, key: str, due: datetime,
              status: TouchpointStatus, *, kind: str = "followup_3d", reason: str = "",
              payload: dict[str, Any] | None = None) -> Touchpoint:
    return await Touchpoint.create(
        customer=customer, vehicle=vehicle, kind=kind, occasion_key=key, due_at=due,
        status=status, status_reason=reason, payload=payload or {},
        sent_at=due if status == TouchpointStatus.SENT else None,
    )


async def _score(tp: Touchpoint, score: int, answered: datetime, advisor: str, *,
                 rates: ScoreRates = ScoreRates.DELIVERY, category: str | None = None,
                 superseded: datetime | None = None, first: datetime | None = None,
                 ticket_id: int | None = None) -> Score:
    return await Score.create(
        touchpoint_id=tp.id, customer_id=tp.customer_id, vehicle_id=tp.vehicle_id,
        rates=rates, advisor=advisor, score=score, category=category,
        first_answered_at=first or answered, created_at=answered, superseded_at=superseded,
        ticket_id=ticket_id,
    )


async def _ticket(customer: Customer, vehicle: Vehicle | None, created: datetime, number: str,
                  category: str = "charges", score_id: int | None = None) -> Ticket:
    return await Ticket.create(number=number, customer=customer, vehicle=vehicle,
                               channel="survey" if score_id else "bot", category=category,
                               created_at=created, first_answer_due=created, score_id=score_id)


async def seed() -> None:
    """The data set. Owners served in November: A (delivery, 李娜), B (visit, 赵师傅),
    E (delivery at local 00:30 on 1 Nov, 陈明), F (delivery, no advisor anywhere) = 4.
    Not served: C (delivered 31 Oct local), D (delivered 00:30 on 1 Dec local)."""
    a = await _customer("A", advisor="王顾问")  # the car's sales advisor wins over this
    b = await _customer("B")
    c = await _customer("C")
    d = await _customer("D")
    e = await _customer("E")
    f = await _customer("F")
    va = await _vehicle(a, "VINA0000000000001", "李娜", L(2026, 11, 5))
    vb = await _vehicle(b, "VINB0000000000001", "李娜", L(2025, 6, 1))  # earlier: returning
    vc = await _vehicle(c, "VINC0000000000001", "陈明", L(2026, 10, 31, 23, 30))
    vd = await _vehicle(d, "VIND0000000000001", "陈明", L(2026, 12, 1, 0, 30))
    ve = await _vehicle(e, "VINE0000000000001", "陈明", L(2026, 11, 1, 0, 30))
    await _vehicle(e, "VINE0000000000002", "陈明", L(2024, 3, 3))  # E is returning
    vf = await _vehicle(f, "VINF0000000000001", "", L(2026, 11, 20))
    visit_b = await Visit.create(vehicle=vb, kind=VisitKind.REPAIR, advisor="赵师傅",
                                 left_at=L(2026, 11, 10))

    # Follow-ups due in November (6 counted):
    t_a = await _tp(a, va, "a", L(2026, 11, 8), TouchpointStatus.SENT)  # 李娜
    t_b = await _tp(b, vb, "b", L(2026, 11, 12), TouchpointStatus.SENT, kind="service_followup",
                    payload={"visit_id": visit_b.id})  # the visit's advisor: 赵师傅
    await _tp(e, ve, "e", L(2026, 11, 4), TouchpointStatus.UNREACHABLE)  # 陈明
    t_c = await _tp(c, vc, "c", L(2026, 11, 3), TouchpointStatus.SENT)  # 陈明
    await _tp(c, vc, "p", L(2026, 11, 30, 23, 0), TouchpointStatus.PENDING)  # 陈明, not sent
    await _tp(e, ve, "k", L(2026, 11, 21), TouchpointStatus.SKIPPED,
              reason="owner unreachable: blocked the bot")  # 陈明, E again
    # ... not counted: declined follow-ups, outside the month, not a CSI follow-up
    await _tp(a, va, "s", L(2026, 11, 20), TouchpointStatus.SKIPPED,
              reason="owner declined follow-ups")
    t_d = await _tp(d, vd, "d", L(2026, 12, 4), TouchpointStatus.SENT)
    t_early = await _tp(c, vc, "early", L(2026, 10, 31, 23, 59), TouchpointStatus.SENT)
    t_t = await _tp(b, vb, "t", L(2026, 11, 16), TouchpointStatus.SENT, kind="ticket_followup")
    await _tp(f, vf, "chk", L(2026, 11, 20, 12), TouchpointStatus.SENT, kind="delivery_checkin")

    # Scores: A said 9 then changed to 3 (charges); B 10; C 7 and, for the October
    # follow-up, 2 answered at local 00:10 on 1 November (counts in November, no category);
    # D's December 1 and B's rating of complaint handling (4) are not CSI November scores.
    await _score(t_a, 9, L(2026, 11, 8, 10, 5), "李娜", superseded=L(2026, 11, 8, 11))
    s_a = await _score(t_a, 3, L(2026, 11, 8, 11), "李娜", category="charges",
                       first=L(2026, 11, 8, 10, 5))
    await _score(t_b, 10, L(2026, 11, 12, 15), "赵师傅", rates=ScoreRates.VISIT)
    await _score(t_c, 7, L(2026, 11, 3, 18), "陈明")
    await _score(t_early, 2, L(2026, 11, 1, 0, 10), "陈明")
    await _score(t_d, 1, L(2026, 12, 4, 11), "陈明", category="environment")
    await _score(t_t, 4, L(2026, 11, 17), "赵师傅", rates=ScoreRates.COMPLAINT, ticket_id=1)

    # Complaints opened in November: A's (from the low score, 李娜) and C's (陈明, the car's
    # sales advisor). B's October complaint is not counted.
    await _ticket(b, vb, L(2026, 10, 25), "T-0001")
    await _ticket(a, va, L(2026, 11, 8, 11, 5), "T-0002", score_id=s_a.id)
    await _ticket(c, vc, L(2026, 11, 15), "T-0003", category="timeliness")


async def test_month_report_dealership(db: str) -> None:
    await seed()
    report = await kpi.compute(month_period("2026-11"), TZ)
    k = report.dealership
    assert (k.followups_due, k.followups_sent, k.followups_reached) == (6, 4, 3)
    assert k.followup_rate == 3 / 6
    assert k.responses == 3 and k.response_rate == 1.0  # A, B and C answered
    assert k.unreachable_owners == 1  # E, twice
    assert k.scores == 4  # 3, 10, 7, 2
    assert k.average == pytest.approx(22 / 4)
    assert k.distribution == {1: 0, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0, 7: 1, 8: 0, 9: 0, 10: 1}
    assert (k.very_satisfied, k.share_9_10) == (1, 1 / 4)
    assert (k.owners_served, k.delighted_owners, k.delight_rate) == (4, 1, 1 / 4)
    assert (k.returning_owners, k.return_rate) == (2, 2 / 4)  # B and E
    assert (k.tickets_opened, k.complaint_rate) == (2, 2 / 4)
    assert (k.low_scores, k.uncategorised_low) == (2, 1)
    assert k.categories == {"service_process": 0, "repair_quality": 0, "charges": 1,
                            "timeliness": 0, "environment": 0, "other": 0}
    assert k.weakest == ["charges"]
    assert k.strongest == ["service_process", "repair_quality", "timeliness", "environment"]
    assert (k.handling_scores, k.handling_average) == (1, 4.0)
    assert report.advisors == []


async def test_month_report_by_advisor(db: str) -> None:
    await seed()
    report = await kpi.compute(month_period("2026-11"), TZ, by_advisor=True)
    by = {k.scope: k for k in report.advisors}
    assert list(by) == ["李娜", "赵师傅", "陈明", ""]  # sorted, "no advisor" last
    li, zhao, chen, nobody = by["李娜"], by["赵师傅"], by["陈明"], by[""]
    assert (li.followups_due, li.followups_sent, li.followups_reached, li.responses) == (
        1, 1, 1, 1)
    assert (zhao.followups_due, zhao.responses) == (1, 1)
    assert (chen.followups_due, chen.followups_sent, chen.followups_reached,
            chen.responses, chen.unreachable_owners) == (4, 2, 1, 1, 1)
    assert (li.scores, li.average, li.low_scores, li.categories["charges"]) == (1, 3.0, 1, 1)
    assert (zhao.scores, zhao.average, zhao.delighted_owners) == (1, 10.0, 1)
    assert (zhao.handling_scores, zhao.handling_average) == (1, 4.0)
    assert (chen.scores, chen.average, chen.uncategorised_low) == (2, 4.5, 1)
    assert [(x.owners_served, x.returning_owners) for x in (li, zhao, chen, nobody)] == [
        (1, 0), (1, 1), (1, 1), (1, 0)]
    assert (li.tickets_opened, zhao.tickets_opened, chen.tickets_opened) == (1, 0, 1)
    assert zhao.delight_rate == 1.0 and chen.complaint_rate == 1.0
    # the dealership total is computed on its own, not summed: the same figures as above
    assert report.dealership.owners_served == 4 and report.dealership.unreachable_owners == 1


async def test_week_and_range(db: str) -> None:
    await seed()
    week = (await kpi.compute(week_period("2026-W45"), TZ)).dealership  # 2-8 November
    assert week.followups_due == 3  # C on the 3rd, E on the 4th, A on the 8th
    assert week.scores == 2  # C's 7 (3rd), A's 3 (first answered on the 8th)
    assert week.owners_served == 1  # A, delivered on the 5th
    first = (await kpi.compute(range_period("2026-11-01", "2026-11-01"), TZ)).dealership
    assert (first.owners_served, first.returning_owners) == (1, 1)  # E at 00:30 local
    assert first.scores == 1 and first.distribution[2] == 1  # the 2 at 00:10 local


async def test_render_formats(db: str) -> None:
    await seed()
    report = await kpi.compute(month_period("2026-11"), TZ, by_advisor=True)
    table = render(report, "table", "Asia/Shanghai")
    assert "2026-11 (2026-11-01 to 2026-11-30, Asia/Shanghai)" in table
    assert "follow-up rate" in table and "50.0%" in table and "(no advisor)" in table
    data = json.loads(render(report, "json"))
    assert data["dealership"]["scope"] == DEALERSHIP
    assert data["dealership"]["average"] == 5.5
    assert data["dealership"]["distribution"]["10"] == 1
    assert [a["scope"] for a in data["advisors"]] == ["李娜", "赵师傅", "陈明", ""]
    lines = render(report, "csv").splitlines()
    assert len(lines) == 1 + 5  # header, the dealership, four advisors
    header = lines[0].split(",")
    row = dict(zip(header, lines[1].split(","), strict=False))
    assert row["period"] == "2026-11" and row["scope"] == "dealership"
    assert row["followups_due"] == "6" and row["return_rate"] == "0.5"


def test_cli_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from db.setup import close_database, open_database

    url = f"sqlite://{tmp_path}/report.sqlite3"

    async def seeded() -> None:
        await open_database(url)
        try:
            await seed()
        finally:
            await close_database()

    asyncio.run(seeded())
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    monkeypatch.setenv("CAREBOT_TIMEZONE", "Asia/Shanghai")
    assert main(["report", "--month", "2026-11", "--format", "json", "--by", "advisor"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dealership"]["followups_due"] == 6
    assert len(data["advisors"]) == 4
    assert main(["report", "--week", "2026-W45"]) == 0
    assert "follow-ups due" in capsys.readouterr().out
    assert main(["report", "--from", "2026-11-01"]) == 2
    assert "--from and --to go together" in capsys.readouterr().err
    assert main(["report", "--month", "2026-13"]) == 2


async def test_delight_counts_only_owners_the_period_served(db: str) -> None:
    """Cars delivered on 29-31 Oct are surveyed in November: their 10s belong to October.

    November served one owner (who never answered): its delight rate is 0 %, not 300 %.
    """
    for i, day in enumerate((29, 30, 31)):
        owner = await _customer(f"十月{i}")
        car = await _vehicle(owner, f"LSVAU218XN21800{i:02d}", "李娜", L(2026, 10, day))
        tp = await _tp(owner, car, f"k{i}", L(2026, 11, 1 + i), TouchpointStatus.SENT)
        await _score(tp, 10, L(2026, 11, 1 + i, 11), "李娜")
    newcomer = await _customer("十一月")
    await _vehicle(newcomer, "LSVAU218XN2189999", "李娜", L(2026, 11, 10))

    november = (await kpi.compute(month_period("2026-11"), TZ)).dealership
    assert (november.owners_served, november.delighted_owners) == (1, 0)
    assert november.delight_rate == 0.0
    october = (await kpi.compute(month_period("2026-10"), TZ)).dealership
    assert (october.owners_served, october.delighted_owners) == (3, 3)
    assert october.delight_rate == 1.0


async def test_responses_count_each_answered_follow_up_once(db: str) -> None:
    """Responses come from merging the sent follow-ups with the scored touchpoints in id
    order: touchpoints between them that are not the period's follow-ups must not count.

    November, in id order: f1 answered 9 then 4 (one response), f2 reached but never
    answered, a complaint follow-up answered, f3 a workshop follow-up answered, f4 due and
    answered in December, f5 answered, f6 unreachable. Reached: f1 f2 f3 f5 = 4; responses:
    f1 f3 f5 = 3; response rate 3/4. Per advisor: 李娜 has f1 f2 f5 (2 of 3), 赵师傅 f3.
    """
    owner = await _customer("G", advisor="李娜")
    car = await _vehicle(owner, "VING0000000000001", "李娜", L(2026, 6, 1))
    visit = await Visit.create(vehicle=car, kind=VisitKind.MAINTENANCE, advisor="赵师傅",
                               left_at=L(2026, 11, 10))
    sent = TouchpointStatus.SENT
    f1 = await _tp(owner, car, "f1", L(2026, 11, 2), sent)
    await _tp(owner, car, "f2", L(2026, 11, 3), sent)
    complaint = await _tp(owner, car, "t1", L(2026, 11, 4), sent, kind="ticket_followup")
    f3 = await _tp(owner, car, "f3", L(2026, 11, 12), sent, kind="service_followup",
                   payload={"visit_id": visit.id})
    f4 = await _tp(owner, car, "f4", L(2026, 12, 2), sent)
    f5 = await _tp(owner, car, "f5", L(2026, 11, 20), sent)
    await _tp(owner, car, "f6", L(2026, 11, 21), TouchpointStatus.UNREACHABLE)
    await _score(f1, 9, L(2026, 11, 2, 11), "李娜", superseded=L(2026, 11, 2, 12))
    await _score(f1, 4, L(2026, 11, 2, 12), "李娜", first=L(2026, 11, 2, 11))
    await _score(complaint, 8, L(2026, 11, 4, 11), "李娜", rates=ScoreRates.COMPLAINT)
    await _score(f3, 10, L(2026, 11, 12, 11), "赵师傅", rates=ScoreRates.VISIT)
    await _score(f4, 9, L(2026, 12, 2, 11), "李娜")
    await _score(f5, 8, L(2026, 11, 20, 11), "李娜")

    report = await kpi.compute(month_period("2026-11"), TZ, by_advisor=True)
    k = report.dealership
    assert (k.followups_due, k.followups_sent, k.followups_reached) == (5, 5, 4)
    assert (k.responses, k.response_rate) == (3, 3 / 4)
    by = {a.scope: a for a in report.advisors}
    assert (by["李娜"].followups_reached, by["李娜"].responses) == (3, 2)
    assert (by["赵师傅"].followups_reached, by["赵师傅"].responses) == (1, 1)


async def test_low_threshold_moves_low_scores_and_categories(db: str) -> None:
    """The November scores are 3 (charges), 10, 7 and 2 (no category)."""
    await seed()
    nov = month_period("2026-11")
    two = (await kpi.compute(nov, TZ, low_threshold=2)).dealership
    assert (two.low_scores, two.uncategorised_low, two.categories["charges"]) == (1, 1, 0)
    assert two.weakest == [] and len(two.strongest) == 5  # every ranked category ties at 0
    none = (await kpi.compute(nov, TZ, low_threshold=0)).dealership
    assert (none.low_scores, none.uncategorised_low, sum(none.categories.values())) == (0, 0, 0)
    assert none.scores == 4 and none.average == pytest.approx(22 / 4)
    every = (await kpi.compute(nov, TZ, low_threshold=10)).dealership
    assert (every.low_scores, every.uncategorised_low, every.categories["charges"]) == (4, 3, 1)
