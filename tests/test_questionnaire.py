"""Questionnaires (issue 16 point 2): the file format, its validation by
``carebot scripts check`` (file, line, reason), and the weighted overall score."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.script_check import check_scripts
from bot.surveys import questionnaire as qn
from bot.texts import LANGUAGES, PACKAGED
from tests.test_scripts import cli_env, run_cli

GOOD = """\
[satisfied3]
satisfied = 9
neutral = 5
dissatisfied = 1

[[question]]
key = "clean"
text = "Clean?"
scale = "satisfied3"
dimension = "environment"
weight = 1

[[question]]
key = "overall"
text = "Overall?"
scale = "1-10"
dimension = "overall"
weight = 3
"""


def test_parser_reads_ordered_questions_scales_and_numbers() -> None:
    q = qn.parse(GOOD, "delivery")
    assert [x.key for x in q.questions] == ["clean", "overall"]
    assert q.questions[0].choices(q.sat3) == [("satisfied", 9), ("neutral", 5),
                                              ("dissatisfied", 1)]
    assert [v for _, v in q.questions[1].choices(q.sat3)] == list(range(1, 11))
    assert q.value_of("clean", "neutral") == 5 and q.value_of("clean", "7") is None
    assert q.value_of("overall", "7") == 7 and q.value_of("nope", "7") is None
    assert q.next_key({"clean"}) == "overall" and q.next_key({"clean", "overall"}) is None
    assert q.is_sales and not qn.parse(GOOD, "visit").is_sales


def test_default_numbers_of_satisfied3_are_10_6_2() -> None:
    q = qn.parse(GOOD.split("\n\n", 1)[1], "delivery")
    assert dict(q.sat3) == {"satisfied": 10, "neutral": 6, "dissatisfied": 2}


def test_weights_give_the_overall_and_skips_leave_the_mean() -> None:
    q = qn.parse(GOOD, "delivery")
    assert qn.overall(q, {"clean": 1, "overall": 9}) == 7  # (1 + 27) / 4
    assert qn.overall(q, {"clean": 9, "overall": 1}) == 3  # (9 + 3) / 4
    assert qn.overall(q, {"clean": None, "overall": 4}) == 4  # the skip is left out
    assert qn.overall(q, {"clean": None, "overall": None}) is None


@pytest.mark.parametrize("lang", LANGUAGES)
def test_shipped_defaults(lang: str) -> None:
    delivery = qn.load([PACKAGED], lang, "delivery")
    visit = qn.load([PACKAGED], lang, "visit")
    assert delivery is not None and visit is not None
    assert len(delivery.questions) == 7  # 附件1
    assert {q.scale for q in delivery.questions} == {qn.SCALE_SAT3}
    assert [q.dimension for q in visit.questions] == [
        "environment", "service_process", "repair_quality", "charges", "timeliness"]
    for kind in qn.KINDS:
        assert qn.load([PACKAGED], lang, kind) is not None


def test_the_dealerships_file_shadows_the_packaged(tmp_path: Path) -> None:
    path = qn.path_for(tmp_path, "en", "delivery")
    path.parent.mkdir(parents=True)
    path.write_text(GOOD, encoding="utf-8")
    mine = qn.load([tmp_path, PACKAGED], "en", "delivery")
    assert mine is not None and len(mine.questions) == 2


@pytest.mark.parametrize(("text", "line", "reason"), [
    (GOOD.replace('key = "overall"', 'key = "clean"'), 14, "key 'clean' is used twice"),
    (GOOD.replace('scale = "1-10"', 'scale = "1-5"'), 16, "scale must be one of"),
    (GOOD.replace("weight = 3", "weight = -1"), 18, "weight must be a number"),
    (GOOD.replace('dimension = "overall"\n', ""), 13, "'dimension' is missing"),
    (GOOD.replace('text = "Clean?"', 'txet = "Clean?"'), 8, "unknown field 'txet'"),
    (GOOD.replace("neutral = 5", "neutral = 11"), 1, "neutral must be a whole number 1-10"),
    (GOOD.replace('text = "Overall?"', 'text = "Overall?'), 15, "not valid TOML"),
])
def test_malformed_files_name_the_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(qn.QuestionnaireError) as caught:
        qn.parse(text, "delivery")
    assert caught.value.line == line and reason in caught.value.reason


def test_scripts_check_refuses_a_malformed_questionnaire(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    path = qn.path_for(folder, "zh_CN", "visit")
    path.parent.mkdir(parents=True)
    path.write_text(GOOD.replace("weight = 3", 'weight = "heavy"'), encoding="utf-8")
    qn.path_for(folder, "en", "delivery").parent.mkdir(parents=True)
    qn.path_for(folder, "en", "tradein").write_text(GOOD, encoding="utf-8")
    qn.path_for(folder, "en", "delivery").write_text(GOOD, encoding="utf-8")
    _, problems = check_scripts([PACKAGED, folder])
    found = [(p.path, p.line) for p in problems]
    assert (path, 18) in found
    assert any(p.path.name == "tradein.toml" and "not a follow-up kind" in p.message
               for p in problems)
    assert not any(p.path.name == "delivery.toml" for p in problems)
    bad = run_cli("scripts", "check", env=cli_env(tmp_path, CAREBOT_SCRIPTS_DIR=str(folder)))
    assert bad.returncode == 1
    assert f"{path}:18: question 2: weight must be a number" in bad.stderr
