"""Asking what to improve (issue 16 point 3, 003 §2.2 g iv): after a good score the owner
is asked once, optionally, what could be better; the answer is kept with the score."""

from __future__ import annotations

from bot import improvement
from db.models import Score
from tests.conftest import BotEnv
from tests.test_survey import current, linked_owner, send_survey, senv  # noqa: F401 - the fixture

ASK = "还有哪些地方可以做得更好"


async def test_a_good_score_asks_once_and_keeps_the_answer(senv: BotEnv) -> None:  # noqa: F811
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("9")
    await senv.poll()
    last = owner.last_bot_message()
    assert ASK in last["text"] and "9 分" in last["text"]
    assert [b["text"] for row in last["reply_markup"]["inline_keyboard"] for b in row] == ["跳过"]
    owner.send_text("交车的时候等的时间有点长，希望能提前准备好")
    await senv.poll()
    # answered in words: the question's Skip is gone from it
    assert not next(m for m in owner.bot_messages()
                    if m["message_id"] == last["message_id"]).get("reply_markup")
    score = await current(tp)
    assert score.improvement == "交车的时候等的时间有点长，希望能提前准备好"
    assert "宝贵建议" in owner.bot_texts()[-1]
    asked = sum(ASK in t for t in owner.bot_texts())
    owner.send_text("8")  # a changed answer does not ask again
    await senv.poll()
    owner.send_text("另外洗车也可以更仔细")
    await senv.poll()
    assert sum(ASK in t for t in owner.bot_texts()) == asked == 1
    fresh = await current(tp)
    assert fresh.score == 8 and (await Score.get(id=score.id)).improvement.startswith("交车")


async def test_skip_and_low_scores_ask_nothing_more(senv: BotEnv) -> None:  # noqa: F811
    owner, customer, vehicle = await linked_owner(senv)
    tp = await send_survey(senv, customer, vehicle)
    owner.press("10")
    await senv.poll()
    owner.press("跳过")
    await senv.poll()
    owner.send_text("谢谢")
    await senv.poll()
    assert (await current(tp)).improvement == ""

    other, customer2, _ = await linked_owner(senv, user_id=5002, phone="+8613900139000",
                                                    name="刘洋")
    tp2 = await send_survey(senv, customer2, None, key="t2")
    other.press("3")
    await senv.poll()
    assert not any(ASK in t for t in other.bot_texts())
    assert (await current(tp2)).score == 3


def test_skip_button_data() -> None:
    rows = improvement.skip_button(42, "Skip")
    assert rows == [[("Skip", "si:k:42")]] and improvement.parse_skip("si:k:42") == 42
    assert improvement.parse_skip("si:k:x") is None and improvement.parse_skip("sv:1:2") is None
