"""The Reports page and its CSV exports over real HTTP, on SQLite and PostgreSQL: who may
open what, the scoping of figures and exports by role, the charts, period errors.

The data: November 2026 (Asia/Shanghai). Advisor 李娜 has two owners (scores 3 and 9),
agent 赵敏 one (score 10), 王强 (no console account) one (score 7); a low score of 李娜's
owner opened a complaint that breached its first-answer deadline, 王强's owner has one on
time. Every expected value below follows from these rows.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.web.console import access
from db.models import (
    Customer,
    Score,
    ScoreRates,
    Staff,
    StaffRole,
    Ticket,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)
from tests.browser.conftest import add_staff
from tests.test_console_access import signed_in, site  # noqa: F401 - the site fixture

TZ = ZoneInfo("Asia/Shanghai")
ROLES = [r.value for r in StaffRole]
SECRET_TEXT = "刹车异响很严重，请尽快处理"  # a complaint text: must never appear in a report


def L(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ).astimezone(UTC)


async def owner(name: str, advisor: str, phone: str, vin: str, score: int,
                category: str | None = None) -> Customer:
    """An owner delivered on 1 November whose 3-day follow-up was answered with ``score``."""
    customer = await Customer.create(name=name, phone=phone, advisor=advisor,
                                     link_token=secrets.token_urlsafe(12))
    vehicle = await Vehicle.create(vin=vin, customer=customer, sales_advisor=advisor,
                                   plate=f"粤A{vin[-5:]}", model="星辰 S7",
                                   delivered_at=L(2026, 11, 1))
    tp = await Touchpoint.create(customer=customer, vehicle=vehicle, kind="followup_3d",
                                 occasion_key=vin, due_at=L(2026, 11, 2),
                                 status=TouchpointStatus.SENT, sent_at=L(2026, 11, 2))
    await Score.create(touchpoint_id=tp.id, customer_id=customer.id, vehicle_id=vehicle.id,
                       rates=ScoreRates.DELIVERY, advisor=advisor, score=score,
                       category=category, comment="不满意" if category else "",
                       first_answered_at=L(2026, 11, 2, 12), created_at=L(2026, 11, 2, 12))
    return customer


async def seed() -> dict[str, Any]:
    li = await add_staff("li", "advisor", name="李娜")
    zhao = await add_staff("zhao", "agent", name="赵敏")
    a1 = await owner("张伟", "李娜", "+8613800000001", "VINLI000000000001", 3, "charges")
    a2 = await owner("王芳", "李娜", "+8613800000002", "VINLI000000000002", 9)
    b1 = await owner("刘洋", "赵敏", "+8613800000003", "VINZH000000000001", 10)
    c1 = await owner("陈静", "王强", "+8613800000004", "VINWA000000000001", 7)
    await Ticket.create(number="T-0001", customer=a1, channel="survey", category="charges",
                        description=SECRET_TEXT, created_at=L(2026, 11, 2, 13),
                        first_answer_due=L(2026, 11, 2, 15), breaches=1)
    await Ticket.create(number="T-0002", customer=c1, channel="bot", category="timeliness",
                        description=SECRET_TEXT, created_at=L(2026, 11, 2, 14),
                        first_answer_due=L(2026, 11, 2, 16),
                        first_answered_at=L(2026, 11, 2, 14, 30))
    return {"li": li, "zhao": zhao, "owners": [a1, a2, b1, c1]}


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, Any]:
    async with http.get(url, allow_redirects=False) as r:
        raw = await r.read()
        return r.status, raw.decode("utf-8", "replace"), r.headers


def rows_of(body: str) -> list[list[str]]:
    assert body.startswith("\ufeff"), "UTF-8 with BOM, so Excel reads Chinese"
    return list(csv.reader(io.StringIO(body[1:])))


# --------------------------------------------------------------------------- access


PATHS = ["/reports", "/reports/export.csv?what=kpi", "/reports/export.csv?what=scores"]


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_opens_reports_and_only_scoped_roles_are_kept_to_their_own(
        site: str, role: str) -> None:  # noqa: F811
    await seed()
    staff = await add_staff(f"user-{role}", role)
    http = await signed_in(site, staff.login)
    async with http:
        for path in PATHS:
            status, _, _ = await get(http, f"{site}{path}")
            assert status == (200 if access.can(staff, access.REPORTS) else 403), (role, path)
            # another advisor's figures: only for those who see every report
            sep = "&" if "?" in path else "?"
            status, body, _ = await get(http, f"{site}{path}{sep}advisor=王强")
            expected = 200 if access.can(staff, access.REPORTS_ALL) else 403
            assert status == expected, (role, path, status)
            if expected == 403:
                assert "陈静" not in body and "王强" not in body


async def test_signed_out_visitors_are_sent_to_sign_in(site: str) -> None:  # noqa: F811
    async with aiohttp.ClientSession() as http:
        for path in PATHS:
            status, _, headers = await get(http, f"{site}{path}")
            assert status == 303 and headers["Location"].startswith("/login?next="), path


# --------------------------------------------------------------------------- exports


async def test_scores_export_holds_only_the_agents_and_advisors_own_customers(
        site: str) -> None:  # noqa: F811
    await seed()
    await add_staff("boss", "manager", name="王经理")
    await add_staff("mk", "marketing", name="市场")
    expected = {
        "zhao": {"刘洋"},
        "li": {"张伟", "王芳"},
        "boss": {"张伟", "王芳", "刘洋", "陈静"},
        "mk": {"张伟", "王芳", "刘洋", "陈静"},
    }
    for login, names in expected.items():
        http = await signed_in(site, login)
        async with http:
            status, body, headers = await get(
                http, f"{site}/reports/export.csv?what=scores&kind=month&month=2026-11")
        assert status == 200
        assert headers["Content-Type"].startswith("text/csv")
        assert 'filename="carebot-scores-2026-11.csv"' in headers["Content-Disposition"]
        rows = rows_of(body)
        header, data = rows[0], rows[1:]
        assert header[:3] == ["Answered at", "Owner", "Phone"]
        assert {r[1] for r in data} == names, login
        assert SECRET_TEXT not in body and "不满意" not in body  # no texts, no comments
        phones = {r[1]: r[2] for r in data}
        if login == "mk":  # marketing may not open customer files: numbers are masked
            assert phones["刘洋"] == "+86138****0003"
        else:
            assert set(phones.values()) <= {"+8613800000001", "+8613800000002",
                                            "+8613800000003", "+8613800000004"}
        scores = {r[1]: r[7] for r in data}
        assert scores.get("刘洋") in (None, "10") and scores.get("张伟") in (None, "3")


async def test_kpi_export_rows_by_role(site: str) -> None:  # noqa: F811
    await seed()
    await add_staff("boss", "manager")
    http = await signed_in(site, "boss")
    async with http:
        status, body, headers = await get(
            http, f"{site}/reports/export.csv?what=kpi&kind=range&from=2026-11-01&to=2026-11-15")
    assert status == 200
    assert 'filename="carebot-kpi-2026-11-01_to_2026-11-15.csv"' in \
        headers["Content-Disposition"]
    rows = rows_of(body)
    header = rows[0]
    scope = {r[3]: dict(zip(header, r, strict=False)) for r in rows[1:]}
    assert list(scope) == ["Dealership", "李娜", "王强", "赵敏"]
    assert scope["Dealership"]["Scores"] == "4" and scope["Dealership"]["Average score"] == "7.25"
    assert scope["李娜"]["Scores"] == "2" and scope["李娜"]["Low scores"] == "1"
    assert scope["Dealership"]["Period"] == "2026-11-01..2026-11-15"

    http = await signed_in(site, "zhao")  # an agent: their own row only, in Chinese
    await Staff.filter(login="zhao").update(language="zh_CN")
    async with http:
        status, body, _ = await get(http, f"{site}/reports/export.csv?what=kpi&month=2026-11")
    rows = rows_of(body)
    assert status == 200 and len(rows) == 2
    assert rows[0][3] == "范围" and rows[1][3] == "赵敏"
    assert dict(zip(rows[0], rows[1], strict=False))["评分数"] == "1"


# --------------------------------------------------------------------------- the page


def svg(body: str, chart_id: str) -> str:
    m = re.search(rf'<svg[^>]*id="{chart_id}".*?</svg>', body, re.DOTALL)
    assert m, f"chart {chart_id} is on the page"
    return m.group(0)


async def test_manager_sees_the_dealership_with_charts_and_every_advisor(site: str) -> None:  # noqa: F811
    await seed()
    await add_staff("boss", "manager")
    http = await signed_in(site, "boss")
    async with http:
        status, body, _ = await get(http, f"{site}/reports?month=2026-11")
        assert status == 200
        assert SECRET_TEXT not in body
        # the distribution: ten bars, one score each of 3, 7, 9 and 10
        dist = svg(body, "chart-distribution")
        values = re.findall(r'<rect class="bar"[^>]*data-label="(\d+)"[^>]*data-value="(\d+)"',
                            dist)
        assert len(values) == 10
        assert {k: v for k, v in values if v != "0"} == {"3": "1", "7": "1", "9": "1", "10": "1"}
        assert "<title>Score 3: 1</title>" in dist
        # the trend: six months up to November; only November has scores
        trend = svg(body, "chart-trend")
        assert trend.count('<circle class="point"') == 1
        assert "2026-06" in trend and "2026-11: average 7.25 (4 scores)" in trend
        # low scores by category: one "charges"; deadlines: one on time, one breached
        cats = svg(body, "chart-categories")
        assert re.search(r'data-label="Charges" data-value="1"', cats)
        deadlines = svg(body, "chart-deadlines")
        assert "On time: 1 of 2" in deadlines and "Breached: 1 of 2" in deadlines
        # the KPI table has every figure with its formula
        assert 'title="Follow-ups reached ÷ follow-ups due (target 100%).' in body
        assert 'title="Scores at or below 6."' in body
        assert '<b id="complaints-total">2</b>' in body
        assert '<b id="complaints-breached">1</b>' in body
        assert '<b id="complaints-first-answer">0 h 30 min</b>' in body

        status, body, _ = await get(http, f"{site}/reports?month=2026-11&by=advisor")
        head = re.search(r"<thead>(.*?)</thead>", body, re.DOTALL)
        assert head is not None
        assert re.findall(r'<th scope="col">([^<]*)</th>', head.group(1)) == \
            ["Figure", "Dealership", "李娜", "王强", "赵敏"]

        status, body, _ = await get(http, f"{site}/reports?month=2026-11&advisor=李娜")
        assert status == 200
        assert "<title>Score 3: 1</title>" in svg(body, "chart-distribution")
        assert "<title>Score 10: 0</title>" in svg(body, "chart-distribution")
        assert '<b id="complaints-total">1</b>' in body  # 李娜's customer's ticket only


async def test_figures_are_kept_for_a_minute_while_the_period_settles(
        site: str, clock: FakeClock) -> None:  # noqa: F811
    await seed()
    await add_staff("boss", "manager")
    http = await signed_in(site, "boss")
    async with http:
        _, body, _ = await get(http, f"{site}/reports?month=2026-11")
        assert "<title>Score 8: 0</title>" in svg(body, "chart-distribution")
        await owner("周杰", "李娜", "+8613800000005", "VINLI000000000003", 8)
        _, body, _ = await get(http, f"{site}/reports?month=2026-11")
        assert "<title>Score 8: 0</title>" in svg(body, "chart-distribution")  # cached
        clock.advance(seconds=61)
        _, body, _ = await get(http, f"{site}/reports?month=2026-11")
        assert "<title>Score 8: 1</title>" in svg(body, "chart-distribution")


async def test_advisor_sees_only_their_own_figures(site: str) -> None:  # noqa: F811
    await seed()
    http = await signed_in(site, "li")
    async with http:
        status, body, _ = await get(http, f"{site}/reports?month=2026-11&by=advisor")
    assert status == 200
    assert "王强" not in body and "赵敏" not in body and "陈静" not in body
    assert 'id="report-advisor"' not in body  # no advisor choice for a scoped person
    dist = svg(body, "chart-distribution")
    assert "<title>Score 3: 1</title>" in dist and "<title>Score 9: 1</title>" in dist
    assert "<title>Score 10: 0</title>" in dist and "<title>Score 7: 0</title>" in dist
    assert '<b id="complaints-total">1</b>' in body and '<b id="complaints-breached">1</b>' in body
    head = re.search(r"<thead>(.*?)</thead>", body, re.DOTALL)
    assert head is not None
    assert re.findall(r'<th scope="col">([^<]*)</th>', head.group(1)) == ["Figure", "李娜"]


async def test_weeks_dates_and_the_trend_of_weeks(site: str) -> None:  # noqa: F811
    await seed()
    await add_staff("boss", "supervisor")
    http = await signed_in(site, "boss")
    async with http:
        status, body, _ = await get(http, f"{site}/reports?kind=week&week=2026-W45&trend=8")
        assert status == 200
        trend = svg(body, "chart-trend")
        assert trend.count("<text") >= 8 and "2026-W38" in trend and "2026-W45" in trend
        assert trend.count('<circle class="point"') == 1  # the scores are on 2 November
        assert "(2026-11-02 to 2026-11-08)" in body
        status, body, _ = await get(http, f"{site}/reports?kind=range&from=2026-11-03"
                                          f"&to=2026-11-30")
        assert status == 200
        assert "<title>Score 3: 0</title>" in svg(body, "chart-distribution")  # before the 3rd
        assert "No scores in this period" in svg(body, "chart-distribution")
        status, body, _ = await get(http, f"{site}/reports")  # the current month by default
        assert status == 200 and "2026-11 (2026-11-01 to 2026-11-30)" in body


PERIOD_ERRORS = [
    ("month=2026-13", "“2026-13” is not a month: use YYYY-MM"),
    ("kind=month&month=nov", "“nov” is not a month"),
    ("kind=week&week=2026-W54", "“2026-W54” is not an ISO week"),
    ("kind=range&from=2026-11-01", "need both a first day (From) and a last day (To)"),
    ("kind=range&from=2026-11-31&to=2026-12-01", "“2026-11-31” is not a date"),
    ("kind=range&from=2026-11-15&to=2026-11-01", "The last day (2026-11-01) is before the first"),
    ("kind=range&from=2020-01-01&to=2026-11-01", "Choose at most 366 days"),
    ("kind=year", "Unknown period kind “year”"),
    ("month=2026-11&trend=50", "The trend shows 6 to 12 periods"),
]


async def test_period_errors_get_a_clear_message(site: str) -> None:  # noqa: F811
    await add_staff("boss", "manager")
    http = await signed_in(site, "boss")
    async with http:
        for query, message in PERIOD_ERRORS:
            for path in ("/reports", "/reports/export.csv"):
                status, body, headers = await get(http, f"{site}{path}?{query}")
                assert status == 400, (path, query)
                assert headers["Content-Type"].startswith("text/html")
                m = re.search(r'id="period-error">([^<]*)<', body)
                assert m and message in m.group(1), (path, query)
                assert 'id="report-filters"' in body  # the form, to correct the period
        status, body, _ = await get(http, f"{site}/reports/export.csv?what=xls&month=2026-11")
        assert status == 400 and "Unknown export “xls”" in body
    await Staff.filter(login="boss").update(language="zh_CN")
    http = await signed_in(site, "boss")
    async with http:
        status, body, _ = await get(http, f"{site}/reports?month=2026-13")
        assert status == 400 and "“2026-13”不是有效的月份" in body


async def test_conversations_by_kind_first_answer_and_renewal_rate(site: str) -> None:  # noqa: F811
    from db.models import Thread, ThreadKind, ThreadState

    data = await seed()
    await add_staff("boss", "manager")
    a1, a2, b1, c1 = data["owners"]
    opened = L(2026, 11, 1, 10)  # before the clock (3 November)

    async def talk(customer: Customer, kind: ThreadKind, outcome: str = "",
                   answered_after: timedelta | None = timedelta(minutes=40)) -> None:
        await Thread.create(
            customer=customer, kind=kind, created_at=opened, updated_at=opened,
            first_answer_due=opened + timedelta(hours=2), outcome=outcome,
            state=ThreadState.DONE if outcome else ThreadState.OPEN,
            first_answered_at=opened + answered_after if answered_after else None)

    await talk(a1, ThreadKind.INSURANCE_LEAD, "renewed_here")
    await talk(a2, ThreadKind.INSURANCE_LEAD, "renewed_elsewhere")
    await talk(b1, ThreadKind.INQUIRY, answered_after=timedelta(hours=3))  # late
    await talk(c1, ThreadKind.BOOKING_REQUEST, answered_after=None)  # unanswered: late
    http = await signed_in(site, "boss")
    async with http:
        status, body, _ = await get(http, f"{site}/reports?month=2026-11")
    assert status == 200
    section = body[body.index('id="conversations"'):]
    assert re.search(r'id="conversations-total">4<', section)
    assert re.search(r'id="conversations-late">2<', section)
    assert re.search(r'id="renewal-rate">50', section)  # 1 renewed with us of 2 decided
    assert re.search(r'data-kind="insurance_lead"><th scope="row">[^<]+</th><td>2<', section)
    li = await signed_in(site, "li")  # the advisor sees only her own owners' (a1, a2)
    async with li:
        _, body, _ = await get(li, f"{site}/reports?month=2026-11")
    assert re.search(r'id="conversations-total">2<', body)
