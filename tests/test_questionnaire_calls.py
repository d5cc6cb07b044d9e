"""The questionnaire on the phone (issue 16 point 2): the call's form shows each question
as a select and stores the answers as Telegram does (source "phone"), the overall score
the weighted mean, and a low overall opens a complaint as a low score does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.clock import FakeClock
from db.models import PhoneCall, Score, ScoreAnswer, Ticket
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_calls import Site, imported, local, post
from tests.test_console_access import signed_in


@pytest_asyncio.fixture
async def qsite(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[Site]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s", survey_questionnaires=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield Site(f"http://127.0.0.1:{settings.web_port}", carebot, emulator, clock, settings)
    finally:
        await carebot.stop()


async def test_the_call_form_asks_the_questionnaire(qsite: Site, tmp_path: Path) -> None:
    await imported(qsite, tmp_path)
    await add_staff("lina", "agent", name="李娜")
    qsite.clock.set(local(2026, 11, 4, 10, 0))
    await qsite.tick()
    assert await qsite.scan() == 2
    zhang, liu = await PhoneCall.all().order_by("due_at")
    answers = {"q_environment": "satisfied", "q_product_knowledge": "neutral",
               "q_service_quality": "", "q_promises_paperwork": "dissatisfied",
               "q_warranty_explained": "satisfied", "q_sales_followup": "satisfied",
               "q_overall_purchase": "satisfied"}
    async with await signed_in(qsite.base, "lina") as http:
        async with http.get(f"{qsite.base}/calls/{zhang.id}") as r:
            page = await r.text()
        assert page.count('<select name="q_') == 7 and 'name="score"' not in page
        assert "整洁程度" in page and ">Dissatisfied</option>" in page
        status, _, page = await post(http, f"{qsite.base}/calls/{zhang.id}", {
            "outcome": "reached", **answers, "q_environment": "9"})
        assert status == 422  # not an answer to that question: refused, nothing stored
        assert not await ScoreAnswer.exists()
        status, url, _ = await post(http, f"{qsite.base}/calls/{zhang.id}",
                                    {"outcome": "reached", **answers})
        assert status == 200 and url.endswith("/calls?done=reached")
        low = {k: "dissatisfied" for k in answers} | {"category": "charges"}
        status, _, _ = await post(http, f"{qsite.base}/calls/{liu.id}",
                                  {"outcome": "reached", **low})
        assert status == 200
    rows = {a.question: a for a in await ScoreAnswer.filter(touchpoint_id=zhang.touchpoint_id)}
    assert len(rows) == 7 and {a.source for a in rows.values()} == {"phone"}
    assert rows["service_quality"].skipped and rows["product_knowledge"].value == 6
    score = await Score.get(touchpoint_id=zhang.touchpoint_id)
    assert (score.score, score.source) == (8, "phone")  # 58 / 7, as in Telegram
    liu_score = await Score.get(touchpoint_id=liu.touchpoint_id)
    assert liu_score.score == 2 and await Ticket.filter(score_id=liu_score.id).exists()
