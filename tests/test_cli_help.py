"""`carebot --help` in the staff member's language (issue 18, point 1): every help text,
description and heading carebot writes has its Chinese, keyed by the English."""

from __future__ import annotations

import pytest

from bot.cli import build_parser
from bot.cli.helptext import parsers, refusal, table, texts


def english_texts() -> set[str]:
    return set(texts(build_parser()))


def test_every_help_text_has_its_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")  # the declarations as written
    missing = sorted(english_texts() - table("zh_CN").keys())
    assert not missing, f"add these to bot/cli/i18n/help.zh_CN.toml: {missing}"


def test_no_chinese_for_help_that_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")
    stale = sorted(table("zh_CN").keys() - english_texts())
    assert not stale, f"no longer in the parser, remove from help.zh_CN.toml: {stale}"


def test_help_under_zh_cn_is_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")
    english = {text for text in english_texts() if any(c.isalpha() and c.isascii()
                                                        for c in text)}
    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    pages = [p.format_help() for p in parsers(build_parser())]
    assert len(pages) > 30  # every subcommand's --help, not only the top one
    assert all(page.startswith("用法：carebot") for page in pages)
    assert "显示本帮助并退出" in pages[0] and "执行数据库迁移" in pages[0]
    left = sorted({text for text in english for page in pages if text in page})
    # A few are the same in both languages (a format such as YYYY-MM inside a longer line).
    assert not [text for text in left if len(text) > 12], left


def test_help_under_en_stays_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")
    page = build_parser().format_help()
    assert page.startswith("usage: carebot")
    assert "show this help message and exit" in page and "apply database migrations" in page


@pytest.mark.parametrize(("argv", "said"), [
    (["booking", "add"], "carebot booking add：错误：缺少必需的参数：who, --day, --slot"),
    (["import", "nope", "f.csv"],
     "carebot import：错误：参数 what：无效的选项 'nope'（可选：'deliveries', 'visits'）"),
    (["--bogus", "run"], "carebot：错误：无法识别的参数：--bogus"),
    (["staff", "add", "--login"], "carebot staff add：错误：参数 --login：需要一个值"),
])
def test_argparse_refusals_under_zh_cn(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str],
                                       argv: list[str], said: str) -> None:
    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("用法：carebot") and err.splitlines()[-1] == said


def test_argparse_refusals_under_en_are_argparses(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["booking", "add"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "carebot booking add: error: the following arguments are required: who, --day, --slot")


def test_every_refusal_wording_has_its_chinese() -> None:
    from bot.cli.helptext import _WORDINGS, _sections

    words = _sections("zh_CN")["refusal"]
    assert {key for key, _ in _WORDINGS} | {"error"} == set(words)
    assert refusal("carebot 自己的话", "zh_CN") == "carebot 自己的话"  # passed through
