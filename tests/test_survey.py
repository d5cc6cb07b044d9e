"""Satisfaction surveys end to end: the dispatcher sends a survey touchpoint, the owner
presses or types through the Telegram emulator, and scores, tickets and staff messages follow.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from bot import surveys
from bot.clock import FakeClock
from bot.surveys import Outcome, SurveyRules, decide
from bot.surveys import handover as surveys_handover
from db.models import (
    Customer,
    MessageLog,
    Score,
    ScoreRates,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
    VisitKind,
)
from tests.conftest import BotEnv, make_settings

STAFF_CHAT = -1001000000042
REVIEW = "https://example.com/review"


@pytest_asyncio.fixture
async def senv(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[BotEnv]:
    """carebot with a staff group and a review link."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, staff_chat_id=STAFF_CHAT,
                             review_url=REVIEW)
    emulator.group(STAFF_CHAT, "客服中心", is_forum=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()


async def linked_owner(
    env: BotEnv,
    *,
    user_id: int = 5001,
    phone: str = "+8613800138000",
    name: str = "张伟",
    language: str = "zh_CN",
) -> tuple[Any, Customer, Vehicle]:
    customer = await Customer.create(name=name, phone=phone, language=language,
                                     advisor="王顾问", link_token=secrets.token_urlsafe(16))
    vehicle = await Vehicle.create(
        vin=f"LSVAU218XN{user_id:07d}"[-17:], customer=customer, model="星辰 S7",
        plate="粤A12345", sales_advisor="李娜",
        delivered_at=env.clock.now() - timedelta(days=3),
    )
    owner = env.emu.user(user_id, first_name=name)
    owner.send_text("/start")
    await env.poll()
    owner.share_contact(phone)
    await env.poll()
    customer = await Customer.get(id=customer.id)
    assert customer.telegram_user_id == user_id
    return owner, customer, vehicle


async def send_survey(env: BotEnv, customer: Customer, vehicle: Vehicle | None, *,
                      kind: str = "followup_3d", payload: dict[str, Any] | None = None,
                      key: str = "t1") -> Touchpoint:
    now = env.clock.now()
    tp = await Touchpoint.create(
        customer=customer, vehicle=vehicle, kind=kind, occasion_key=key, due_at=now,
        expires_at=now + timedelta(days=1), payload=payload or {},
    )
    report = await env.tick()
    assert report.sent == 1, report
    return await Touchpoint.get(id=tp.id)


def survey_keyboard(owner: Any, touchpoint_id: int) -> list[list[str]]:
    for message in owner.bot_messages():
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        if rows and rows[0][0].get("callback_data", "").startswith(f"sv:{touchpoint_id}:"):
            return [[b["text"] for b in row] for row in rows]
    raise AssertionError("no survey keyboard in the chat")


async def current(tp: Touchpoint) -> Score:
    score = await Score.get_or_none(touchpoint_id=tp.id, superseded_at__isnull=True)
    assert score is not None
    return score


# --------------------------------------------------------------------------- pure rules

RULES = SurveyRules()
T0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("current_score", "answered", "new", "now", "expected"), [
    (None, None, 8, T0, Outcome.NEW),
    (8, T0, 8, T0 + timedelta(minutes=1), Outcome.SAME),
    (8, T0, 8, T0 + timedelta(days=5), Outcome.SAME),
    (8, T0, 3, T0 + timedelta(hours=23, minutes=59), Outcome.CHANGED),
    (8, T0, 3, T0 + timedelta(hours=24), Outcome.CHANGED),
    (8, T0, 3, T0 + timedelta(hours=24, seconds=1), Outcome.LOCKED),
])
def test_decide(current_score: int | None, answered: datetime | None, new: int, now: datetime,
                expected: Outcome) -> None:
    assert decide(current=current_score, first_answered_at=answered, new=new, now=now,
                  rules=RULES) is expected


@pytest.mark.parametrize(("sent", "now", "open_"), [
    (None, T0, False),
    (T0, T0, True),
    (T0, T0 + timedelta(days=6, hours=23), True),
    (T0, T0 + timedelta(days=7), False),
    (T0, T0 - timedelta(seconds=1), False),
])
def test_is_open(sent: datetime | None, now: datetime, open_: bool) -> None:
    assert surveys.is_open(sent, now, RULES) is open_


@pytest.mark.parametrize(("score", "low", "delighted"), [
    (1, True, False), (6, True, False), (7, False, False), (8, False, False),
    (9, False, True), (10, False, True),
])
def test_thresholds(score: int, low: bool, delighted: bool) -> None:
    assert surveys.is_low(score, RULES) is low
    assert surveys.is_delighted(score) is delighted


# --------------------------------------------------------------------------- end to end


async def test_survey_has_a_1_to_10_keyboard(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle, payload={"delivered_on": "2026-10-31"})
    assert tp.status == TouchpointStatus.SENT
    assert survey_keyboard(owner, tp.id) == [["1", "2", "3", "4", "5"],
                                             ["6", "7", "8", "9", "10"],
                                             ["☎️ 联系客服"]]  # every follow-up offers a person
    text = owner.bot_texts()[-1]
    assert "张伟" in text and "1 到 10" in text


async def test_press_3_category_comment_opens_a_ticket(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("3")
    await senv.poll()
    assert owner.callback_answers[-1]["text"] == "已记录 3 分，谢谢！"
    assert survey_keyboard(owner, tp.id)[0] == ["✅ 3"]  # the survey shows the choice
    assert "哪方面" in owner.bot_texts()[-1]
    owner.press("收费")
    await senv.poll()
    assert any("您选择的问题类别：收费" in t for t in owner.bot_texts())
    assert "跳过" in str(owner.last_bot_message().get("reply_markup"))
    ask = owner.last_bot_message()["message_id"]
    owner.send_text("保养收费比报价高了300元，也没提前说明")
    await senv.poll()
    # the comment was typed: the question's Skip is gone
    assert not next(m for m in owner.bot_messages() if m["message_id"] == ask).get("reply_markup")
    score = await current(tp)
    assert (score.score, score.category, score.rates) == (3, "charges", ScoreRates.DELIVERY)
    assert "300元" in score.comment
    assert score.advisor == "李娜" and score.vehicle_id == vehicle.id
    from db.models import Ticket

    ticket = await Ticket.get(score_id=score.id)
    assert score.handover == f"ticket:{ticket.id}"
    assert (ticket.channel, ticket.category, ticket.customer_id) == ("survey", "charges",
                                                                     customer.id)
    assert "300元" in ticket.description
    assert await Score.filter(handover="pending").count() == 0
    # the complaint workflow acknowledges with the ticket number and tells staff
    assert ticket.number in owner.bot_texts()[-1] and "抱歉" in owner.bot_texts()[-1]
    staff = senv.emu.group(STAFF_CHAT, "客服中心")
    assert any(ticket.number in t["name"] for t in staff.topics.values())
    assert any("300元" in t for t in staff.bot_texts())
    owner.send_text("abc")  # the survey is answered: text now goes to the ticket, no re-ask
    await senv.poll()
    assert not any("没能识别" in t for t in owner.bot_texts())


async def test_low_score_without_tickets_tells_staff(senv: BotEnv,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag path: no complaints module (or it failed) -> a message in the staff chat."""
    monkeypatch.setattr(surveys_handover, "_tickets", lambda: None)
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("2")
    await senv.poll()
    owner.press("维修质量")
    await senv.poll()
    owner.press("跳过")
    await senv.poll()
    staff = senv.emu.group(STAFF_CHAT, "客服中心").bot_texts()
    assert len(staff) == 1
    assert "张伟" in staff[0] and "+8613800138000" in staff[0] and "2 分" in staff[0]
    assert "维修质量" in staff[0] and "李娜" in staff[0]
    score = await current(tp)
    assert (score.handover, score.category) == ("staff", "repair_quality")
    assert "再次向您致歉" in owner.bot_texts()[-1]


async def test_typed_fullwidth_score_is_recorded(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.send_text("９分")
    await senv.poll()
    score = await current(tp)
    assert (score.score, score.source) == (9, "text")
    reply = owner.bot_texts()[-1]
    assert "9 分的好评" in reply and REVIEW in reply
    assert survey_keyboard(owner, tp.id)[0] == ["✅ 9"]
    assert not senv.emu.group(STAFF_CHAT, "客服中心").bot_texts()


async def test_not_a_score_twice_then_silence(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    before = len(owner.bot_texts())
    for _ in range(2):
        owner.send_text("abc")
        await senv.poll()
    texts = owner.bot_texts()[before:]
    assert len(texts) == 2 and all("1 到 10" in t for t in texts)
    owner.send_text("abc")
    await senv.poll()
    sticker = {"file_id": "CAACAgIAAxk", "file_unique_id": "AgADxk", "type": "regular",
               "width": 512, "height": 512, "is_animated": False, "is_video": False,
               "emoji": "👍"}
    senv.emu.user_message(owner.chat_id, owner.user_id, {"sticker": sticker})
    await senv.poll()
    assert len(owner.bot_texts()) == before + 2  # silence: no third re-ask, not even "received"
    assert await MessageLog.filter(touchpoint_id=tp.id, kind=surveys.LOG_REASK).count() == 2
    # nothing was lost: every text is kept with the survey; a stray "abc" does not page staff
    assert await MessageLog.filter(touchpoint_id=tp.id, kind=surveys.LOG_COMMENT).count() == 3
    assert senv.emu.group(STAFF_CHAT, "客服中心").bot_texts() == []
    owner.send_text(
        "说实话交车的时候等了很久，销售顾问也没有讲清楚车机和辅助驾驶怎么用"
    )  # a real comment
    await senv.poll()
    assert "等了很久" in senv.emu.group(STAFF_CHAT, "客服中心").bot_texts()[-1]
    owner.send_text("8")  # a real answer still counts
    await senv.poll()
    assert (await current(tp)).score == 8


async def test_sticker_and_long_text_get_a_reask_and_staff_see_the_text(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    sticker = {"file_id": "CAACAgIAAxk", "file_unique_id": "AgADxk", "type": "regular",
               "width": 512, "height": 512, "is_animated": False, "is_video": False}
    senv.emu.user_message(owner.chat_id, owner.user_id, {"sticker": sticker})
    await senv.poll()
    assert "没能识别您的评分" in owner.bot_texts()[-1]
    complaint = "交车的时候销售说好送的脚垫到现在还没给我，打了好几次电话都说再等等，太不负责任了"
    owner.send_text(complaint)
    await senv.poll()
    assert "已转给客服同事" in owner.bot_texts()[-1] and "1 到 10" in owner.bot_texts()[-1]
    staff = senv.emu.group(STAFF_CHAT, "客服中心").bot_texts()
    assert len(staff) == 1 and complaint in staff[0] and "张伟" in staff[0]
    # a third non-score: no more asking, but a long text is still acknowledged and passed on
    owner.send_text(complaint + "！")
    await senv.poll()
    assert owner.bot_texts()[-1] == "谢谢您的留言，我们已转给客服同事，会尽快与您联系。"
    owner.press("10")
    await senv.poll()
    score = await current(tp)
    assert score.score == 10 and complaint in score.comment  # the kept text joins the score


async def test_expired_survey_button_says_closed(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    senv.clock.advance(days=7, seconds=1)
    before = len(owner.bot_texts())
    owner.press("5")
    await senv.poll()
    assert owner.callback_answers[-1]["text"] == "这次回访已经结束了，感谢您的关注！"
    assert await Score.filter(touchpoint_id=tp.id).count() == 0
    assert len(owner.bot_texts()) == before
    owner.send_text("5")  # typing after the window is not a survey answer either
    await senv.poll()
    assert await Score.filter(touchpoint_id=tp.id).count() == 0
    # not a survey answer: it is for a person, who is said to answer within business hours
    assert owner.bot_texts()[-1].startswith("已收到，张伟。我们的客服将在")


async def test_change_of_mind_within_24_hours(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("9")
    await senv.poll()
    first = await current(tp)
    n_texts = len(owner.bot_texts())
    owner.press("✅ 9")  # the same again: idempotent
    await senv.poll()
    assert await Score.filter(touchpoint_id=tp.id).count() == 1
    assert len(owner.bot_texts()) == n_texts
    assert survey_keyboard(owner, tp.id)[0] == ["✅ 9"]  # the other scores are gone
    senv.clock.advance(hours=20)
    owner.send_text("7")  # a change of mind is typed
    await senv.poll()
    assert owner.bot_texts()[-1] == "好的，已将您的评分改为 7 分。"
    rows = await Score.filter(touchpoint_id=tp.id).order_by("id")
    assert [(r.score, r.superseded_at is not None) for r in rows] == [(9, True), (7, False)]
    assert rows[1].first_answered_at == first.created_at
    assert survey_keyboard(owner, tp.id)[0] == ["✅ 7"]
    senv.clock.advance(hours=5)  # 25 h after the first answer: it stands
    owner.send_text("4")
    await senv.poll()
    assert (await current(tp)).score == 7
    assert await Score.filter(touchpoint_id=tp.id).count() == 2


async def test_change_to_a_low_score_asks_what_went_wrong(senv: BotEnv,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(surveys_handover, "_tickets", lambda: None)
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("8")
    await senv.poll()
    owner.send_text("4")
    await senv.poll()
    assert "哪方面" in owner.bot_texts()[-1]
    assert (await current(tp)).handover == "pending"
    # the owner never answers: the case goes over anyway after the hand-over delay
    senv.clock.advance(minutes=31)
    assert await surveys.hand_over_stale(now=senv.clock.now(),
                                         services=senv.carebot.services) == 1
    assert (await current(tp)).handover == "staff"
    assert "4 分" in senv.emu.group(STAFF_CHAT, "客服中心").bot_texts()[-1]
    owner.send_text("3")  # still low, already with staff: no second case
    await senv.poll()
    assert (await current(tp)).handover == "staff"
    assert len(senv.emu.group(STAFF_CHAT, "客服中心").bot_texts()) == 1


async def test_service_followup_is_attributed_to_the_visit_advisor(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    visit = await Visit.create(vehicle=vehicle, kind=VisitKind.REPAIR, advisor="赵师傅",
                               left_at=senv.clock.now() - timedelta(days=2))
    tp = await send_survey(senv, customer, vehicle, kind="service_followup",
                           payload={"visit_id": visit.id, "major": False,
                                    "visit_kind": "repair"})
    assert "维修" in owner.bot_texts()[-1]
    owner.send_text("打8分吧")
    await senv.poll()
    score = await current(tp)
    assert (score.rates, score.visit_id, score.advisor, score.score) == (
        ScoreRates.VISIT, visit.id, "赵师傅", 8)
    assert "感谢您的评分（8 分）" in owner.bot_texts()[-1]


async def test_most_recent_open_survey_wins(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    older = await send_survey(senv, customer, vehicle, key="old")
    senv.clock.advance(days=1)
    newer = await send_survey(senv, customer, vehicle, kind="service_followup", key="new")
    owner.send_text("10")
    await senv.poll()
    assert await Score.filter(touchpoint_id=newer.id).count() == 1
    assert await Score.filter(touchpoint_id=older.id).count() == 0
    owner.send_text("6分")  # a change of mind, typed: it goes to the most recent survey
    await senv.poll()
    assert (await current(newer)).score == 6
    assert await Score.filter(touchpoint_id=older.id).count() == 0


async def test_complaint_handling_score_goes_back_to_the_ticket(senv: BotEnv) -> None:
    from bot import tickets
    from db.models import Ticket, TicketState

    owner, customer, vehicle = await linked_owner(senv)
    now = senv.clock.now()
    ticket = await Ticket.create(
        number="T-0001", customer=customer, vehicle=vehicle, channel="bot", category="charges",
        description="收费不透明", state=TicketState.RESOLVED, created_at=now - timedelta(days=2),
        first_answer_due=now, resolved_at=now - timedelta(days=1),
    )
    tp = await send_survey(senv, customer, vehicle, kind=tickets.FOLLOWUP_KIND,
                           payload={"ticket_id": ticket.id, "number": "T-0001",
                                    "category": "charges"})
    owner.press("2")
    await senv.poll()
    score = await current(tp)
    assert (score.rates, score.ticket_id, score.handover) == (ScoreRates.COMPLAINT, ticket.id, "")
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.handling_score == 2 and ticket.state == TicketState.REOPENED
    assert "已重新打开" in owner.bot_texts()[-1]  # the ticket tells the owner itself
    assert not any("哪方面" in t for t in owner.bot_texts())  # no CSI category round


async def test_english_owner(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv, name="Tom", language="en")
    tp = await send_survey(senv, customer, vehicle)
    owner.send_text("ten")
    await senv.poll()
    assert (await current(tp)).score == 10
    assert "thank you so much for the 10" in owner.bot_texts()[-1]
    assert REVIEW in owner.bot_texts()[-1]


async def test_someone_elses_button_is_refused(senv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    other, _, _ = await linked_owner(senv, user_id=5002, phone="+8613900139000", name="李雷")
    senv.emu._queue_callback(other.chat, other.user_id, owner.chat.messages[-1],
                             f"sv:{tp.id}:1", "1")
    await senv.poll()
    assert other.callback_answers[-1]["text"] == "这个按钮不属于您的回访。"
    assert await Score.filter(touchpoint_id=tp.id).count() == 0


async def test_text_during_a_complaint_goes_to_the_ticket(senv: BotEnv) -> None:
    """Not a score, and the owner has a complaint being handled: the ticket gets it."""
    from db.models import Ticket, TicketMessage

    owner, customer, vehicle = await linked_owner(senv)
    now = senv.clock.now()
    ticket = await Ticket.create(number="T-0009", customer=customer, vehicle=vehicle,
                                 channel="bot", category="timeliness", created_at=now,
                                 first_answer_due=now + timedelta(hours=2))
    tp = await send_survey(senv, customer, vehicle)
    owner.send_text("我的车什么时候能修好？")
    await senv.poll()
    assert not any("没能识别" in t for t in owner.bot_texts())
    assert await MessageLog.filter(touchpoint_id=tp.id, kind=surveys.LOG_COMMENT).count() == 0
    assert await TicketMessage.filter(ticket_id=ticket.id, text="我的车什么时候能修好？").exists()
    owner.send_text("8分")  # a score is still a score
    await senv.poll()
    assert (await current(tp)).score == 8


async def test_a_hand_over_cut_short_by_a_crash_is_taken_up_again(senv: BotEnv) -> None:
    """The process died between claiming the hand-over and opening the ticket."""
    from db.models import Ticket

    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("2")
    await senv.poll()
    await Score.filter(touchpoint_id=tp.id).update(handover="handing")  # the crash
    senv.clock.advance(minutes=31)
    assert await surveys.hand_over_stale(now=senv.clock.now(),
                                         services=senv.carebot.services) == 0  # leased still
    senv.clock.advance(minutes=10)
    assert await surveys.hand_over_stale(now=senv.clock.now(),
                                         services=senv.carebot.services) == 1
    score = await current(tp)
    ticket = await Ticket.get(score_id=score.id)
    assert score.handover == f"ticket:{ticket.id}"
    # and once more: the existing ticket is found, no second one is opened
    await Score.filter(id=score.id).update(handover="pending")
    await surveys.hand_over(score, customer, now=senv.clock.now(), services=senv.carebot.services)
    assert await Ticket.filter(score_id=score.id).count() == 1
