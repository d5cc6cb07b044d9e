"""A ticket event's recorded reason reads in the reader's language (issue 18, point 1)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot import ticket_reasons
from bot.ticket_rules import DueKind, overdue_reason
from tests.test_walking_skeleton import local

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("reason,key,values", [
    ("first answer", "first_answer", {}),
    ("no first answer to the owner by 11-04 12:00", "overdue_first_answer",
     {"when": "11-04 12:00"}),
    ("handler did not resolve by 11-05 09:30", "overdue_handler", {"when": "11-05 09:30"}),
    ("supervisor level did not act by 11-05 09:30", "overdue_level",
     {"level": "supervisor", "when": "11-05 09:30"}),
    ("owner rated the handling 3/10 (at or below 6)", "rated_low",
     {"score": "3", "threshold": "6"}),
    ("owner rated the handling 9/10", "rated", {"score": "9"}),
    ("ignored: ticket is closed", "ignored", {"state": "closed"}),
    ("improvement: 培训前台", "improvement", {"text": "培训前台"}),
    ("escalated by 王客服", "escalated_by", {"name": "王客服", "why": ""}),
    ("escalated by 王客服: 车主很着急: 今天要用车", "escalated_by_why",
     {"name": "王客服", "why": "车主很着急: 今天要用车"}),
    ("marked major by 钱经理: 安全问题", "major_by_why", {"name": "钱经理", "why": "安全问题"}),
])
def test_each_recorded_form_has_its_key(reason: str, key: str, values: dict[str, str]) -> None:
    assert ticket_reasons.reason_key(reason) == (key, values)


def test_levels_passed_over_are_split_from_the_reason() -> None:
    assert ticket_reasons.split_skipped(
        "handler did not resolve by 11-05 09:30; no staff at advisor, supervisor, passed over"
    ) == ("handler did not resolve by 11-05 09:30", ["advisor", "supervisor"])
    assert ticket_reasons.split_skipped("no staff at advisor, passed over") == ("", ["advisor"])
    assert ticket_reasons.split_skipped("first answer") == ("first answer", [])


def test_free_text_is_left_as_written() -> None:
    assert ticket_reasons.reason_key("车主要求换人处理") is None
    assert ticket_reasons.reason_key("channel telegram") is None


def test_the_deadline_reasons_written_today_are_recognised() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    for kind in (DueKind.FIRST_ANSWER, DueKind.HANDLER_ANSWER, "level"):
        assert ticket_reasons.reason_key(overdue_reason(kind, local(2026, 11, 4, 12, 0),
                                                        "advisor", tz)) is not None


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_key_is_in_both_catalogues(lang: str) -> None:
    keys = {key for key, _ in ticket_reasons._FORMS} | {"escalated_by_why", "major_by_why",
                                                       "skipped"}
    console = tomllib.loads((ROOT / f"bot/web/console/i18n/{lang}/tickets.toml").read_text())
    scripts = tomllib.loads((ROOT / f"bot/scripts/{lang}/tickets.toml").read_text())
    assert keys <= set(console["tickets"]["reason"])
    assert {f"tk_reason_{k}" for k in keys} <= set(scripts)
