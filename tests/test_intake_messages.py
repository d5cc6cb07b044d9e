"""Every problem the intake reports reads in the staff member's language (issue 18, point 1).

The intake is fed one bad value of every kind, and cross-row cases through real imports;
each problem it writes must be a form bot.intake_messages knows, with a text in both
console catalogues. A new kind of problem added without its catalogue entry fails here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot import intake_messages
from bot.clock import FakeClock
from bot.intake import RowError, import_deliveries_file, import_visits_file, validate_visit
from bot.web.console.pages.imports import problem_text
from bot.web.console.render import Translator, load_strings
from tests.test_intake import RULES, TZ, V1, V2, base_record, make_vin, row, validate, write_csv

ROOT = Path(__file__).resolve().parent.parent

BAD_DELIVERY_VALUES: list[tuple[str, Any]] = [
    ("delivered_at", "2026-13-01"),
    ("delivered_at", "yesterday"),
    ("delivered_at", ""),
    ("delivered_at", "2026-11-05 10:00"),
    ("delivered_at", 3.5),
    ("birthday", "0985-03-12"),
    ("phone", "12345"),
    ("phone", "1.38001E+10"),
    ("phone", "020-88886666"),
    ("owner_name", "张" * 101),
    ("owner_name", ["张"]),
    ("model", {"a": 1}),
    ("vin", "LSVAU2180T2051637"),
    ("vin", "LSVAU2180"),
    ("vin", "LSVAU2180T205163!"),
    ("vin", "LSVAU2180T20516O7"),
    ("vin", "WVWZZZ1JZXW000001"),
    ("language", "klingon"),
    ("title", "老板"),
    ("birthday_calendar", "maybe"),
    ("marketing_consent", "perhaps"),
    ("birthday", True),
]
BAD_VISIT_VALUES: list[tuple[str, Any]] = [
    ("kind", "wash"), ("mileage", "far"), ("mileage", 99_999_999), ("mileage", True),
    ("major_repair", "sort of"), ("left_at", "2026-11-09 10:00"), ("advisor", "李" * 101),
]


def problems_of(items: list[RowError]) -> list[str]:
    return [item.message for item in items]


def known(messages: list[str]) -> None:
    unknown = [m for m in messages if intake_messages.message_key(m) is None]
    assert not unknown, f"problems bot/intake_messages.py does not know: {unknown}"


def test_every_bad_delivery_value_is_a_known_problem(clock: FakeClock) -> None:
    seen = []
    for field, value in BAD_DELIVERY_VALUES:
        _, errors, warnings = validate(base_record(**{field: value}), clock)
        assert errors or warnings, (field, value)
        seen += problems_of(errors + warnings)
    known(seen)


def test_every_bad_visit_value_is_a_known_problem(clock: FakeClock) -> None:
    seen = []
    for field, value in BAD_VISIT_VALUES:
        record = {"vin": V1, "left_at": "2026-11-02 16:00", "kind": "保养", field: value}
        _, errors, warnings = validate_visit(record, row=2, tz=TZ, now=clock.now())
        assert errors or warnings, (field, value)
        seen += problems_of(errors + warnings)
    known(seen)


async def test_problems_across_rows_and_imports_are_known(db: str, clock: FakeClock,
                                                          tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", [
        row(V1, "张伟", "13800138000"), row(V2, "王芳", "13900139000"),
        row(V2, "王芳", "13900139000", delivered="2026-11-01 15:00"),  # the same car again
        row(make_vin(9), "张伟伟", "13800138000"),  # the same owner, another name
    ])
    seen = problems_of((await import_deliveries_file(first, rules=RULES, now=clock.now())).warnings)
    second = write_csv(tmp_path / "b.csv", [
        row(V1, "张伟", "13800138000", delivered="2026-11-01 18:00"),  # delivery moved
        row(V2, "刘洋", "13700137000"),  # the car has a new owner
    ])
    result = await import_deliveries_file(second, rules=RULES, now=clock.now())
    seen += problems_of(result.warnings + result.errors)
    visits = tmp_path / "v.csv"
    visits.write_text("vin,left_at,kind,extra\n"
                      f"{make_vin(77)},2026-11-02 16:00,保养,x\n"  # no such car; unused column
                      f"{V1},2026-11-02 16:00,保养,\n{V1},2026-11-02 16:00,保养,\n",
                      encoding="utf-8")
    result = await import_visits_file(visits, rules=RULES, now=clock.now())
    seen += problems_of(result.warnings + result.errors)
    assert len(seen) >= 7, seen
    known(seen)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_known_problem_has_its_text(lang: str) -> None:
    table = tomllib.loads((ROOT / f"bot/web/console/i18n/{lang}/imports.toml").read_text())
    assert set(intake_messages.KEYS) <= set(table["imports"]["problem"])
    assert set(intake_messages.TYPES) <= set(table["imports"]["types"])


def test_a_problem_in_chinese_and_one_left_as_written() -> None:
    t = Translator(load_strings(), "zh_CN")
    assert problem_text("expected text, got true/false", t) == "应为文字，实际是是/否"
    assert problem_text("'x' is not a number of kilometres", t) == "'x' 不是公里数"
    assert problem_text("something new", t) == "something new"
