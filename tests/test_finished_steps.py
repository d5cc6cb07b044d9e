"""Buttons of a finished step (issue 18 point 6): once the owner answers, the step's
keyboard is removed or replaced on its message (through the sender, as the emulator shows
it), and a button pressed again later — from a second device still showing the old
keyboard — changes nothing and is answered with a short, friendly line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from db.models import Booking, Customer, Score, ScoreAnswer
from tests.conftest import BotEnv
from tests.test_booking import buttons
from tests.test_complaints import owner_with_car
from tests.test_journeys import custom_env  # noqa: F401 - fixture
from tests.test_questionnaire_flow import qenv  # noqa: F401 - fixture
from tests.test_survey import current, linked_owner, send_survey, senv  # noqa: F401

POLITE = "这一步已经完成了，不用再点啦。如需帮助，直接在这里留言即可。"


def _message(owner: Any, message_id: int) -> dict[str, Any]:
    return dict(next(m for m in owner.bot_messages() if m["message_id"] == message_id))


def _stale(query: dict[str, Any], data: str) -> dict[str, Any]:
    """The same message's old keyboard, another of its buttons pressed."""
    return {**query, "data": data}


async def test_survey_score_keyboard_is_replaced_by_the_answer(
        senv: BotEnv) -> None:  # noqa: F811
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    pressed = owner.press("9")
    await senv.poll()
    survey = _message(owner, pressed["message"]["message_id"])
    shown = buttons(survey)
    assert "✅ 9" in shown and not any(str(n) in shown for n in range(1, 11))
    said = len(owner.bot_texts())
    owner.press_again(_stale(pressed, f"sv:{tp.id}:3"))  # an old screen's "3"
    await senv.poll()
    assert owner.callback_answers[-1]["text"] == POLITE
    assert (await current(tp)).score == 9
    assert await Score.filter(touchpoint_id=tp.id).count() == 1
    assert len(owner.bot_texts()) == said  # no low-score questions, nothing at all


async def test_questionnaire_question_keeps_only_its_answer(
        qenv: BotEnv) -> None:  # noqa: F811
    owner, customer, vehicle = await linked_owner(qenv)
    tp = await send_survey(qenv, customer, vehicle)
    pressed = owner.press("满意")
    await qenv.poll()
    first = _message(owner, pressed["message"]["message_id"])
    assert buttons(first)[0] == "✅ 满意"
    assert not {"一般", "不满意", "跳过"} & set(buttons(first))
    assert "（2/7）" in owner.last_bot_message()["text"]
    said = len(owner.bot_messages())
    old = next(b["callback_data"] for row in pressed["message"]["reply_markup"]["inline_keyboard"]
               for b in row if b["text"] == "不满意")
    owner.press_again(_stale(pressed, old))
    await qenv.poll()
    assert owner.callback_answers[-1]["text"] == POLITE
    [answer] = await ScoreAnswer.filter(touchpoint_id=tp.id)
    assert answer.choice == "satisfied"
    assert len(owner.bot_messages()) == said  # question 2 is not asked twice


async def test_booking_picker_steps_cannot_be_pressed_again(
        custom_env: Any, tmp_path: Path) -> None:  # noqa: F811
    env = await custom_env()
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("/book")
    await env.poll()
    job = owner.press("保养")
    await env.poll()
    day = owner.press("11月5日 周四")
    await env.poll()
    owner.press("上午 9:00-12:00")
    await env.poll()
    owner.press("✅ 确认预约")
    await env.poll()
    confirmed = owner.last_bot_message()
    assert "预约成功" in confirmed["text"] and "11月5日" in confirmed["text"]
    assert buttons(confirmed) == ["🔁 改约", "取消预约"]  # the picker's buttons are gone
    for old in (job, day):  # an old screen's job and day buttons
        owner.press_again(old)
        await env.poll()
        assert owner.callback_answers[-1]["text"] == POLITE
    assert owner.last_bot_message() == confirmed  # not turned back into a picker
    assert await Booking.all().count() == 1


async def test_consent_question_buttons_go_once_answered(env: BotEnv) -> None:
    owner, customer, _ = await linked_owner(env)
    owner.send_text("/subscribe")
    await env.poll()
    question = owner.last_bot_message()
    yes = owner.press(buttons(question)[0])
    await env.poll()
    assert not _message(owner, question["message_id"]).get("reply_markup")
    assert (await Customer.get(id=customer.id)).marketing_consent
    owner.press_again(_stale(yes, "mk:c:n"))  # "no" on an old screen: consent stands
    await env.poll()
    assert owner.callback_answers[-1]["text"] == POLITE
    assert (await Customer.get(id=customer.id)).marketing_consent
