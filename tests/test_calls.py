"""The call list (电话回访, issue 16): follow-ups Telegram cannot carry become phone calls an
agent works in the console, and count in the follow-up rate with their channel.

Owners come in through the delivery import; the console is driven over real HTTP with the
session's CSRF token; time passes on the fake clock.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot import calls
from bot.calls import Answers, CallError
from bot.clock import FakeClock
from bot.intake import import_deliveries_file
from bot.journeys.plans import FOLLOWUP_3D, journey_rules
from bot.kpi import compute, month_period
from db.models import (
    CallOutcome,
    CallReason,
    CallStatus,
    Customer,
    PhoneCall,
    PhoneCallAttempt,
    Score,
    Ticket,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in
from tests.test_walking_skeleton import VIN_A, VIN_B, delivery_row, local, write_csv


@dataclass
class Site:
    base: str
    carebot: Any
    emu: Any
    clock: FakeClock
    settings: Any

    @property
    def services(self) -> Any:
        return self.carebot.services

    async def scan(self) -> int:
        return await calls.scan(self.clock.now(), calls.call_rules(self.settings))

    async def tick(self) -> Any:
        return await self.carebot.dispatcher.dispatch_due()


@pytest_asyncio.fixture
async def site(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Site]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield Site(f"http://127.0.0.1:{settings.web_port}", carebot, emulator, clock, settings)
    finally:
        await carebot.stop()


async def imported(site: Site, tmp_path: Path) -> None:
    """Two buyers, imported on 1 November and never linked: 张伟 and 刘洋 (advisor 李娜)."""
    site.clock.set(local(2026, 11, 1, 12, 0))
    rows = [delivery_row(VIN_A, "13800138000", "2026-11-01 10:00"),
            delivery_row(VIN_B, "13900139000", "2026-11-01 11:00", name="刘洋",
                         plate="粤B67890")]
    result = await import_deliveries_file(write_csv(tmp_path / "d.csv", rows),
                                          rules=journey_rules(site.settings),
                                          now=site.clock.now())
    assert result.created == 2, result.errors


async def post(http: Any, url: str, data: dict[str, str]) -> tuple[int, str, str]:
    token = await csrf(http, url.split("/calls")[0] + "/calls")
    async with http.post(url, data={**data, "_csrf": token}, allow_redirects=True) as r:
        return r.status, str(r.url), await r.text()


async def test_unlinked_owner_followup_is_called_and_counts_by_phone(
        site: Site, tmp_path: Path) -> None:
    await imported(site, tmp_path)
    await add_staff("lina", "agent", name="李娜")
    await add_staff("wang", "agent", name="王客服")

    site.clock.set(local(2026, 11, 4, 9, 59))  # day 3, before the follow-up's 10:00
    await site.tick()
    assert await site.scan() == 0
    site.clock.set(local(2026, 11, 4, 10, 0))
    await site.tick()  # nobody is linked: nothing goes out in Telegram
    assert await site.scan() == 2
    assert await site.scan() == 0  # idempotent
    rows = await PhoneCall.all().order_by("due_at").select_related("assignee", "touchpoint")
    assert [(r.kind, r.reason, r.assignee.name if r.assignee else None) for r in rows] == \
        [(FOLLOWUP_3D, CallReason.NOT_LINKED, "李娜")] * 2
    assert {r.touchpoint.status for r in rows} == {TouchpointStatus.CALL_LIST}
    zhang, liu = rows

    async with await signed_in(site.base, "wang") as http:  # not their owners
        async with http.get(f"{site.base}/calls") as r:
            assert r.status == 200 and "张伟" not in await r.text()
        async with http.get(f"{site.base}/calls/{zhang.id}") as r:
            assert r.status == 404
    async with await signed_in(site.base, "lina") as http:
        async with http.get(f"{site.base}/calls") as r:
            page = await r.text()
        assert page.index("张伟") < page.index("刘洋"), "ordered by due time"
        async with http.get(f"{site.base}/calls/{zhang.id}") as r:
            page = await r.text()
        script = re.search(r'<div class="script" id="script">(.*?)</div>', page, re.DOTALL)
        assert script and "张伟您好" in script.group(1) and "请问现在方便吗" in script.group(1)
        assert (
            "星辰 S7" in page and "粤A12345" in page and "not on Telegram when it was due" in page
        )

        status, url, _ = await post(http, f"{site.base}/calls/{zhang.id}", {
            "outcome": "reached", "score": "4", "category": "charges",
            "comment": "收费比报价高"})
        assert status == 200 and url.endswith("/calls?done=reached")
        status, url, _ = await post(http, f"{site.base}/calls/{liu.id}", {
            "outcome": "reached", "score": "9", "comment": "",
            "improvement": "希望交车时讲解更详细"})
        assert status == 200
        # recorded once: the same form again is refused, nothing changes
        status, _, page = await post(http, f"{site.base}/calls/{liu.id}", {
            "outcome": "reached", "score": "3"})
        assert status == 404 or "已被记录" in page or "already recorded" in page

    low = await Score.get(touchpoint_id=zhang.touchpoint_id)
    assert (low.score, low.source, low.category, low.comment) == (4, "phone", "charges",
                                                                  "收费比报价高")
    ticket = await Ticket.get(score_id=low.id)  # a low answer opens a complaint
    assert ticket.category == "charges" and low.advisor == "李娜"
    high = await Score.get(touchpoint_id=liu.touchpoint_id)
    assert high.score == 9 and not await Ticket.filter(score_id=high.id).exists()
    assert high.improvement == "希望交车时讲解更详细"  # asked after a good score
    assert (await PhoneCall.get(id=zhang.id)).status == CallStatus.REACHED

    report = await compute(month_period("2026-11"), site.settings.tz, by_advisor=True)
    k = report.dealership
    assert (k.followups_due, k.followups_reached, k.followups_reached_phone,
            k.followups_reached_telegram) == (2, 2, 2, 0)
    assert (k.responses, k.responses_phone, k.followup_rate) == (2, 2, 1.0)
    assert (k.scores, k.average, k.tickets_opened) == (2, 6.5, 1)
    lina = next(a for a in report.advisors if a.scope == "李娜")
    assert (lina.followups_reached_phone, lina.responses_phone) == (2, 2)
    await add_staff("boss", "supervisor", name="主管")
    async with await signed_in(site.base, "boss") as http, \
            http.get(f"{site.base}/reports?kind=month&month=2026-11") as r:
        page = await r.text()
    assert r.status == 200 and "… by phone" in page and 'id="lost-reasons"' in page
    async with await signed_in(site.base, "boss") as http, \
            http.get(f"{site.base}/customers/{high.customer_id}") as r:
        assert "希望交车时讲解更详细" in await r.text()  # shown with the survey


async def test_no_answer_three_times_then_unreachable_and_wrong_number_flags(
        site: Site, tmp_path: Path) -> None:
    await imported(site, tmp_path)
    site.clock.set(local(2026, 11, 4, 10, 0))
    await site.scan()
    zhang, liu = await PhoneCall.all().order_by("due_at")
    rules = calls.call_rules(site.settings)
    agent = await add_staff("lina", "agent", name="李娜")

    tried_at = []
    for hour in (10, 15, 19):
        call = await PhoneCall.get(id=zhang.id)
        site.clock.set(max(call.due_at, local(2026, 11, 4, hour, 5)))
        tried_at.append(site.clock.now())
        result = await calls.record(zhang.id, CallOutcome.NO_ANSWER, staff=agent,
                                    now=site.clock.now(), rules=rules)
        if hour < 19:  # back on the list at another time of day
            assert result.call.status == CallStatus.OPEN
            assert calls.part_of_day(result.call.due_at, rules) not in {
                calls.part_of_day(t, rules) for t in tried_at}
            assert result.call.due_at >= site.clock.now() + calls.MIN_GAP
    assert len({calls.part_of_day(t, rules) for t in tried_at}) == 3
    done = await PhoneCall.get(id=zhang.id)
    assert (done.status, done.attempts, done.last_outcome) == (CallStatus.UNREACHABLE, 3,
                                                               "no_answer")
    assert await PhoneCallAttempt.filter(call_id=zhang.id).count() == 3
    try:
        await calls.record(zhang.id, CallOutcome.REACHED, staff=agent, now=site.clock.now(),
                           rules=rules, answers=Answers(score=9))
    except CallError as exc:
        assert exc.key == "closed"
    else:
        raise AssertionError("a closed call takes no more outcomes")

    result = await calls.record(liu.id, CallOutcome.WRONG_NUMBER, staff=agent,
                                now=site.clock.now(), rules=rules)
    assert result.call.status == CallStatus.WRONG_NUMBER
    owner = await Customer.get(id=liu.customer_id)
    assert owner.phone_wrong_at == site.clock.now()  # 电话有误: the file is flagged
    await add_staff("boss", "supervisor", name="主管")
    async with await signed_in(site.base, "boss") as http, \
            http.get(f"{site.base}/customers/{owner.id}") as r:
        assert 'id="wrong-number"' in await r.text()

    k = (await compute(month_period("2026-11"), site.settings.tz)).dealership
    assert (k.followups_due, k.followups_reached, k.unreachable_owners) == (2, 0, 2)


async def test_blocked_and_unanswered_owners_are_called(site: Site) -> None:
    now = site.clock.now()
    people = []
    for n in (1, 2):
        c = await Customer.create(name=f"车主{n}", phone=f"+86138001300{n}", advisor="李娜",
                                  link_token=secrets.token_urlsafe(8),
                                  telegram_user_id=5000 + n, telegram_chat_id=5000 + n)
        site.emu.user(5000 + n, first_name=f"车主{n}")
        v = await Vehicle.create(vin=f"LSVAU2180N000000{n}", customer=c, model="星辰 S7")
        people.append((c, v))
    site.emu.user(5001).block()
    for c, v in people:
        await Touchpoint.create(customer=c, vehicle=v, kind=FOLLOWUP_3D, occasion_key="k",
                                due_at=now, expires_at=now + timedelta(days=1))
    report = await site.tick()
    assert (report.sent, report.unreachable) == (1, 1)
    assert await site.scan() == 1  # the owner who blocked the bot
    blocked = await PhoneCall.get()
    assert blocked.reason == CallReason.BLOCKED and blocked.customer_id == people[0][0].id

    site.clock.advance(days=2)
    assert await site.scan() == 0  # the survey is still fresh
    site.clock.advance(days=1, minutes=1)
    assert await site.scan() == 1
    silent = await PhoneCall.get(reason=CallReason.UNANSWERED)
    tp = await Touchpoint.get(id=silent.touchpoint_id)
    assert tp.status == TouchpointStatus.SENT  # Telegram did reach the owner
    # answered in Telegram meanwhile: nobody needs to call
    await Score.create(touchpoint_id=tp.id, customer_id=tp.customer_id, rates="delivery",
                       score=8, first_answered_at=site.clock.now(),
                       created_at=site.clock.now())
    await site.scan()
    assert (await PhoneCall.get(id=silent.id)).status == CallStatus.ANSWERED


async def test_supervisor_sees_all_and_reassigns(site: Site, tmp_path: Path) -> None:
    await imported(site, tmp_path)
    site.clock.set(local(2026, 11, 4, 10, 0))
    await site.scan()
    await add_staff("lina", "agent", name="李娜")
    wang = await add_staff("wang", "agent", name="王客服")
    await add_staff("boss", "supervisor", name="主管")
    first = await PhoneCall.all().order_by("due_at").first()
    assert first is not None
    async with await signed_in(site.base, "wang") as http:
        token = await csrf(http, f"{site.base}/calls")
        async with http.post(f"{site.base}/calls/{first.id}/assign",
                             data={"assignee": str(wang.id), "_csrf": token}) as r:
            assert r.status == 403  # agents do not reassign
    async with await signed_in(site.base, "boss") as http:
        async with http.get(f"{site.base}/calls") as r:
            page = await r.text()
            assert "张伟" in page and "刘洋" in page
        status, url, _ = await post(http, f"{site.base}/calls/{first.id}/assign",
                                    {"assignee": str(wang.id)})
        assert status == 200 and "done=assigned" in url
    async with await signed_in(site.base, "wang") as http:
        async with http.get(f"{site.base}/calls") as r:
            page = await r.text()
            assert "张伟" in page and "刘洋" not in page
        status, _, page = await post(http, f"{site.base}/calls/{first.id}",
                                     {"outcome": "reached", "score": "11"})
        assert status == 422 and ("1 到 10" in page or "1 to 10" in page)
        assert (await PhoneCall.get(id=first.id)).status == CallStatus.OPEN
