"""The questionnaire report (issue 16 point 2, 003 §1.4.1-2): each question's distribution
and 很满意 / 不满意 shares, the strongest and weakest items, sales and service apart; in
``carebot report questions`` and the console's Reports."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cli.report_items import render_items
from bot.surveys.items import item_report
from db.models import Customer, ScoreAnswer, ScoreRates, Touchpoint
from tests.browser.conftest import add_staff
from tests.test_calls import Site, site  # noqa: F401 - the fixture
from tests.test_console_access import signed_in
from tests.test_scripts import cli_env, run_cli

T0 = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)
DELIVERY: dict[str, list[str | None]] = {  # question -> choices given by four owners
    "environment": ["satisfied", "satisfied", "satisfied", None],
    "product_knowledge": ["satisfied", "neutral", "dissatisfied", "dissatisfied"],
}
VISIT: dict[str, list[str | None]] = {
    "repair_quality": ["10", "9", "4", "8"], "charges": ["10", "10", "9", "9"]}
VALUES = {"satisfied": 10, "neutral": 6, "dissatisfied": 2}


async def _seed() -> None:
    for n in range(4):
        customer = await Customer.create(name=f"车主{n}", phone=f"+86138001380{n:02d}",
                                         language="zh_CN", advisor="李娜",
                                         link_token=secrets.token_urlsafe(8))
        for kind, tp_kind, rates, answers in (
                ("delivery", "followup_3d", ScoreRates.DELIVERY, DELIVERY),
                ("visit", "service_followup", ScoreRates.VISIT, VISIT)):
            tp = await Touchpoint.create(customer=customer, kind=tp_kind, occasion_key=f"k{n}",
                                         due_at=T0, expires_at=T0 + timedelta(days=1),
                                         payload={})
            for position, (key, choices) in enumerate(answers.items()):
                choice = choices[n]
                value = None if choice is None else VALUES.get(choice) or int(choice)
                await ScoreAnswer.create(
                    touchpoint=tp, customer=customer, rates=rates, kind=kind, question=key,
                    position=position, dimension=key, choice=choice or "", value=value,
                    skipped=choice is None, answered_at=T0)


async def test_items_shares_strongest_weakest_and_sides(db: str) -> None:
    await _seed()
    sales, service = await item_report(T0 - timedelta(days=1), T0 + timedelta(days=1),
                                       lang="zh_CN", low_threshold=6)
    assert [i.key for i in sales.items] == ["environment", "product_knowledge"]
    env, knowledge = sales.items
    assert (env.answered, env.skipped, env.top_share, env.low_share) == (3, 1, 1.0, 0.0)
    assert "整洁" in env.text  # the question as written in the questionnaire
    assert dict(knowledge.by_choice) == {"satisfied": 1, "neutral": 1, "dissatisfied": 2}
    assert (knowledge.top_share, knowledge.low_share) == (0.25, 0.5)
    assert sales.strongest is env and sales.weakest is knowledge
    quality, charges = service.items
    assert (quality.top_share, quality.low_share, charges.top_share) == (0.5, 0.25, 1.0)
    assert service.strongest is charges and service.weakest is quality
    later = await item_report(T0 + timedelta(days=1), T0 + timedelta(days=2), lang="en",
                              low_threshold=6)
    assert all(not side.items for side in later)  # outside the period: nothing

    data = json.loads(render_items([sales, service], "json", "2026-11"))
    assert data["sales"]["weakest"] == "product_knowledge"
    assert data["service"]["strongest"] == "charges"
    text = render_items([sales, service], "table", "2026-11")
    assert text.index("== sales ==") < text.index("== service ==")
    assert "dissatisfied 50.0%" in text and "weakest: repair_quality" in text


async def test_the_reports_page_shows_the_items(site: Site) -> None:  # noqa: F811
    await _seed()
    await add_staff("boss", "supervisor", name="主管")
    async with await signed_in(site.base, "boss") as http, \
            http.get(f"{site.base}/reports?kind=month&month=2026-11") as r:
        page = await r.text()
    assert r.status == 200 and 'id="items-sales"' in page and 'id="items-service"' in page
    sales = page[page.index('id="items-sales"'):page.index('id="items-service"')]
    assert 'data-item="delivery:product_knowledge" class="weakest"' in sales
    assert "repair_quality" not in sales  # service items are not in the sales table


def test_the_command(tmp_path: Path) -> None:
    done = run_cli("report", "questions", "--month", "2026-11", env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Questionnaire items, " in done.stdout and "== service ==" in done.stdout
