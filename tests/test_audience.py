"""Audience filters on a fixed data set: each filter (and combinations) gives exactly the
expected owners. Runs on SQLite and PostgreSQL (``db`` fixture)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.campaigns import audiences
from bot.campaigns.audiences import Audience, parse_audience
from bot.campaigns.policy import CampaignError, CampaignRules
from db.models import (
    Customer,
    CustomerTag,
    Score,
    ScoreRates,
    Ticket,
    TicketState,
    Touchpoint,
    Vehicle,
    Visit,
    VisitKind,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def local(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=SH)


async def _owner(name: str, phone: str, language: str = "zh_CN") -> Customer:
    return await Customer.create(name=name, phone=phone, language=language,
                                 link_token=f"tok-{phone}")


_vin = iter(range(100, 999))


async def _car(owner: Customer, model: str, delivered: datetime,
               insurance: date | None = None) -> Vehicle:
    return await Vehicle.create(vin=f"LSVAU2180N2183{next(_vin)}", model=model,
                                customer_id=owner.id, delivered_at=delivered,
                                insurance_expiry=insurance)


async def _visit(car: Vehicle, left: datetime) -> None:
    await Visit.create(vehicle_id=car.id, kind=VisitKind.MAINTENANCE, left_at=left)


async def _score(owner: Customer, value: int, at: datetime) -> None:
    tp = await Touchpoint.create(customer_id=owner.id, kind="followup_3d",
                                 occasion_key=f"s{value}{at:%Y%m%d}", due_at=at)
    await Score.create(touchpoint_id=tp.id, customer_id=owner.id, rates=ScoreRates.DELIVERY,
                       score=value, first_answered_at=at, created_at=at)


async def _ticket(owner: Customer, number: str, state: TicketState) -> None:
    await Ticket.create(number=number, customer_id=owner.id, channel="bot", category="other",
                        state=state, created_at=NOW, first_answer_due=NOW)


@pytest.fixture
async def people(db: str) -> dict[str, int]:
    """A: loyal S7 owner, recent visit, insurance soon, vip, score 9.
    B: lost X3 owner (last visit 2024), English, latest score 3, an open ticket.
    C: new S7 owner, no visits, insurance in 57 days, a closed ticket, tag ev.
    D: two cars (X3, S7), English, three visits, last 2025-10-01."""
    a = await _owner("张一", "+8613800000001")
    b = await _owner("李二", "+8613800000002", "en")
    c = await _owner("王三", "+8613800000003")
    d = await _owner("赵四", "+8613800000004", "en")
    a1 = await _car(a, "星辰 S7", local(2025, 1, 10), date(2026, 11, 20))
    await _visit(a1, local(2025, 6, 1))
    await _visit(a1, local(2026, 1, 15))
    await CustomerTag.create(customer_id=a.id, tag="vip", created_at=NOW)
    await _score(a, 9, local(2025, 6, 3))
    b1 = await _car(b, "星辰 X3", local(2023, 5, 1), date(2027, 5, 1))
    await _visit(b1, local(2024, 2, 1))
    await _score(b, 8, local(2023, 5, 4))
    await _score(b, 3, local(2024, 2, 3))
    await _ticket(b, "T-0001", TicketState.CLAIMED)
    await _car(c, "星辰 S7", local(2026, 10, 1), date(2026, 12, 30))
    await _ticket(c, "T-0002", TicketState.CLOSED)
    await CustomerTag.create(customer_id=c.id, tag="ev", created_at=NOW)
    d1 = await _car(d, "星辰 X3", local(2024, 3, 1))
    d2 = await _car(d, "星辰 S7", local(2024, 9, 1))
    await _visit(d1, local(2024, 9, 1))
    await _visit(d2, local(2025, 3, 1))
    await _visit(d1, local(2025, 10, 1))
    return {"A": a.id, "B": b.id, "C": c.id, "D": d.id}


CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "ABCD"),
    ({"models": ["星辰 S7"]}, "ACD"),
    ({"models": "星辰 X3"}, "BD"),
    ({"delivered_from": "2024-01-01", "delivered_to": "2025-12-31"}, "AD"),
    ({"delivered_to": "2023-05-01"}, "B"),
    ({"last_visit_after": "2026-01-01"}, "A"),
    ({"last_visit_before": "2025-12-01"}, "BD"),
    ({"min_visits": 2}, "AD"),
    ({"min_visits": 3}, "D"),
    ({"no_visit_months": 12}, "BD"),
    ({"no_visit_months": 36}, ""),
    ({"insurance_within_days": 30}, "A"),
    ({"insurance_within_days": 60}, "AC"),
    ({"languages": ["en"]}, "BD"),
    ({"score_max": 6}, "B"),  # B's latest score is 3 (the 8 came first)
    ({"score_min": 7}, "A"),
    ({"score_min": 7, "score_max": 8}, ""),
    ({"open_ticket": True}, "B"),
    ({"open_ticket": False}, "ACD"),
    ({"tags": ["vip"]}, "A"),
    ({"tags": ["vip", "ev"]}, "AC"),
    ({"models": ["星辰 S7"], "languages": ["en"]}, "D"),
    ({"min_visits": 2, "score_min": 7}, "A"),
    ({"models": ["星辰 S7"], "open_ticket": False, "no_visit_months": 12}, "D"),
]


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[str(c[0]) for c in CASES])
async def test_audience_filter(people: dict[str, int], filters: dict[str, Any],
                               expected: str) -> None:
    audience = parse_audience(filters)
    ids = await audiences.audience_query(audience, now=NOW, tz=SH).values_list("id", flat=True)
    names = "".join(sorted(k for k, v in people.items() if v in set(ids)))
    assert names == expected


async def test_audience_counts_exclusions_by_reason(people: dict[str, int]) -> None:
    await Customer.filter(id=people["A"]).update(marketing_consent=True, telegram_chat_id=1,
                                                 telegram_user_id=1)
    await Customer.filter(id=people["B"]).update(marketing_consent=True)  # not linked
    await Customer.filter(id=people["C"]).update(marketing_consent=False,
                                                 marketing_consent_at=NOW)  # withdrew
    rules = CampaignRules(tz=SH, quiet=None)
    count = await audiences.count_audience(Audience(), now=NOW, rules=rules)
    assert count.targeted == 4 and count.eligible == 1
    assert count.excluded == {"opted_out": 1, "no_consent": 1, "not_linked": 1,
                              "unreachable": 0, "capped": 0}


@pytest.mark.parametrize(("filters", "message"), [
    ({"colour": "red"}, "unknown filter"),
    ({"min_visits": "many"}, "not a whole number"),
    ({"delivered_from": "yesterday"}, "not a date"),
    ({"languages": ["fr"]}, "not served"),
    ({"score_min": 8, "score_max": 3}, "score_min is above"),
    ({"score_min": 11}, "outside"),
])
def test_bad_audience_is_refused_with_a_reason(filters: dict[str, Any], message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        parse_audience(filters)


def test_audience_round_trips() -> None:
    audience = parse_audience({"models": ["A", "B"], "delivered_from": "2024-01-01",
                               "min_visits": "2", "open_ticket": "false"})
    assert parse_audience(audience.to_dict()) == audience
    assert audience.delivered_from == date(2024, 1, 1) and audience.open_ticket is False
