"""A questionnaire in Telegram (issue 16 point 2): the delivery follow-up's seven questions
come one at a time with buttons and Skip, each answer is stored, the owner pauses and comes
back where they left off, and the overall score is the weighted mean, recorded as the
survey's Score so the low-score path works as for a single score."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest_asyncio

from bot.clock import FakeClock
from bot.surveys import answers
from db.models import Score, ScoreAnswer, ScoreRates
from tests.conftest import BotEnv, make_settings
from tests.test_survey import STAFF_CHAT, current, linked_owner, send_survey


@pytest_asyncio.fixture
async def qenv(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[BotEnv]:
    """carebot with the shipped questionnaires on (the default outside tests)."""
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, staff_chat_id=STAFF_CHAT,
                             survey_questionnaires=True)
    emulator.group(STAFF_CHAT, "客服中心", is_forum=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()


def _labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


async def _press(env: BotEnv, owner: Any, label: str) -> dict[str, Any]:
    owner.press(label)
    await env.poll()
    return dict(owner.last_bot_message())


async def test_seven_questions_with_a_skip_a_pause_and_a_resume(qenv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(qenv)
    tp = await send_survey(qenv, customer, vehicle)
    first = owner.last_bot_message()
    assert "（1/7）" in first["text"] and "整洁" in first["text"]
    # the script says what follows: seven questions, not "a number from 1 to 10"
    assert "回答 7 个简短的问题" in first["text"] and "1 到 10" not in first["text"]
    assert _labels(first)[:4] == ["满意", "一般", "不满意", "跳过"]
    assert "（2/7）" in (await _press(qenv, owner, "满意"))["text"]
    assert "（3/7）" in (await _press(qenv, owner, "一般"))["text"]
    assert "（4/7）" in (await _press(qenv, owner, "跳过"))["text"]
    asked = len(owner.bot_messages())
    qenv.clock.advance(timedelta(hours=20))  # the owner pauses
    owner.send_text("/survey")
    await qenv.poll()
    resumed = owner.last_bot_message()
    assert "（4/7）" in resumed["text"] and len(owner.bot_messages()) == asked + 1
    assert await Score.filter(touchpoint_id=tp.id).count() == 0  # not finished yet
    for label, nxt in (("不满意", "（5/7）"), ("满意", "（6/7）"), ("满意", "（7/7）")):
        assert nxt in (await _press(qenv, owner, label))["text"]
    await _press(qenv, owner, "满意")
    rows = {a.question: a for a in await ScoreAnswer.filter(touchpoint_id=tp.id)}
    assert len(rows) == 7 and [k for k, a in rows.items() if a.skipped] == ["service_quality"]
    assert rows["environment"].value == 10 and rows["product_knowledge"].value == 6
    assert rows["promises_paperwork"].value == 2 and rows["overall_purchase"].choice == "satisfied"
    assert {a.rates for a in rows.values()} == {ScoreRates.DELIVERY}
    # weights 1,1,(skipped),1,1,1,2: (10 + 6 + 2 + 10 + 10 + 2*10) / 7 = 8.29 -> 8
    score = await current(tp)
    assert score.score == 8 and score.source == "answers"
    assert "感谢您的评分（8 分）" in owner.bot_texts()[-1]
    # a button of a finished questionnaire changes nothing
    owner.press("✅ 满意")
    await qenv.poll()
    assert (await current(tp)).score == 8 and await ScoreAnswer.filter(
        touchpoint_id=tp.id).count() == 7


async def test_a_low_overall_takes_the_low_score_path(qenv: BotEnv) -> None:
    owner, customer, vehicle = await linked_owner(qenv)
    tp = await send_survey(qenv, customer, vehicle)
    for _ in range(6):
        await _press(qenv, owner, "不满意")
    owner.send_text("没事")  # typed text mid-way: kept, the question asked again
    await qenv.poll()
    assert "（7/7）" in owner.last_bot_message()["text"]
    long = "交车的时候等了很久，销售顾问也没有解释清楚各项费用，希望有人联系我"
    owner.send_text(long)  # a real comment: also offered to staff straight away
    await qenv.poll()
    assert "（7/7）" in owner.last_bot_message()["text"]
    assert any(long in t for t in qenv.emu.group(STAFF_CHAT, "客服中心").bot_texts())
    assert "（7/7）" in owner.last_bot_message()["text"]
    last = await _press(qenv, owner, "一般")
    score = await current(tp)
    # (6 * 2 + 2 * 6) / 8 = 3
    assert score.score == 3 and score.handover == "pending" and "没事" in score.comment
    assert "主要是哪方面" in last["text"] and "收费" in _labels(last)  # as after a single 3


def test_callback_data_round_trips() -> None:
    assert answers.parse_callback("sq:12:3:s") == answers.AnswerCallback(12, 3, "satisfied")
    assert answers.parse_callback("sq:12:0:x") == answers.AnswerCallback(12, 0, None)
    assert answers.parse_callback("sq:12:0:10") == answers.AnswerCallback(12, 0, "10")
    for bad in ("sq:12:0:11", "sq:12:0:q", "sq:a:0:s", "sv:12:0:s", "sq:12:0"):
        assert answers.parse_callback(bad) is None
    assert answers.kind_for("service_followup", {"major_repair": True}) == "major_repair"
    assert answers.kind_for("service_followup", {}) == "visit"
    assert answers.kind_for("birthday", {}) is None
