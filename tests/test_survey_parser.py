"""The typed-reply parser on what owners really write, plus a property test: it never raises
and only ever returns a score 1-10 or "not a score" (None)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.surveys import CSI_CATEGORIES, parse_callback, parse_reply, parse_score, score_buttons

# (what the owner typed, the score it means or None)
REAL_WORLD: list[tuple[str, int | None]] = [
    ("8", 8),
    ("10", 10),
    ("1", 1),
    ("  9  ", 9),
    ("８", 8),  # full-width digit (Chinese IME)
    ("１０", 10),
    ("8分", 8),
    ("８分", 8),
    ("10分", 10),
    ("９分", 9),
    ("8 分", 8),
    ("8/10", 8),
    ("8 / 10", 8),
    ("10/10", 10),
    ("９／１０", 9),  # full-width slash
    ("7分/10分", 7),
    ("一", 1),
    ("五", 5),
    ("十", 10),
    ("九分", 9),
    ("十分", 10),
    ("两分", 2),
    ("捌", 8),  # formal numeral (大写)
    ("8分！", 8),
    ("9。", 9),
    ("【7】", 7),
    ("“8”", 8),
    ("8分吧", 8),
    ("打8分", 8),
    ("给10分", 10),
    ("我给你们打9分", 9),
    ("评分：6", 6),
    ("满分", 10),
    ("8️⃣", 8),  # keycap emoji
    ("🔟", 10),
    ("8 👍", 8),
    ("eight", 8),
    ("Ten", 10),
    ("8 out of 10", 8),
    ("9 points", 9),
    ("score: 7", 7),
    ("08", 8),
    ("服务很好，给你们打10分", 10),  # a sentence with one explicit score
    ("9分，很满意", 9),
    ("等了30分钟，只能给3分", 3),  # minutes are not a score
    # not a score
    ("0", None),
    ("11", None),
    ("100", None),
    ("-1", None),  # below the scale: never a score of 1 (it would open a complaint)
    ("－3", None),
    ("abc", None),
    ("", None),
    ("   ", None),
    ("👍", None),
    ("好", None),
    ("很满意", None),
    ("十分满意", None),  # "very satisfied", not "10 points": ambiguous, re-ask
    ("十分不满意", None),
    ("8.5", None),
    ("7-8", None),
    ("8 9", None),
    ("8分9分", None),
    ("3/5", None),
    ("0/10", None),
    ("13800138000", None),  # a phone number
    ("8:30", None),
    ("等了3个小时，给2分", None),  # two numbers: ambiguous, re-ask and keep the text
    ("第8", None),
    ("明天上午10点来保养", None),
    ("我的车发动机有异响，想问一下什么时候可以来店里检查一下，谢谢", None),
    ("yes", None),
    ("零", None),
]


@pytest.mark.parametrize(("text", "expected"), REAL_WORLD, ids=[repr(t) for t, _ in REAL_WORLD])
def test_real_world_replies(text: str, expected: int | None) -> None:
    assert parse_score(text) == expected


def test_table_is_big_enough() -> None:
    assert len(REAL_WORLD) >= 40
    assert sum(1 for _, e in REAL_WORLD if e is None) >= 15


def test_sentence_replies_are_flagged_as_comments() -> None:
    assert parse_reply("服务很好，给你们打10分") == parse_reply("服务很好，给你们打10分")
    assert parse_reply("服务很好，给你们打10分").in_sentence
    assert not parse_reply("10分").in_sentence
    assert not parse_reply("abc").in_sentence


def test_non_strings_are_not_scores() -> None:
    assert parse_score(None) is None
    assert parse_score(8) is None
    assert parse_score(b"8") is None


@given(st.text(max_size=400))
@settings(max_examples=600, deadline=None)
def test_never_raises_and_only_returns_1_to_10(text: str) -> None:
    result = parse_score(text)
    assert result is None or (isinstance(result, int) and 1 <= result <= 10)


_PUNCT = st.sampled_from(["", " ", "  ", "！", "!", "。", ".", "~", "～", "\n", "，"])


@given(st.integers(min_value=1, max_value=10), _PUNCT, _PUNCT,
       st.sampled_from(["", "分", " 分", "/10", "分吧"]), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_score_written_plainly_is_read(n: int, before: str, after: str, suffix: str,
                                           fullwidth: bool) -> None:
    digits = str(n)
    if fullwidth:
        digits = "".join(chr(ord(c) - ord("0") + ord("０")) for c in digits)
    assert parse_score(f"{before}{digits}{suffix}{after}") == n


@given(st.integers().filter(lambda n: not 1 <= n <= 10))
def test_numbers_out_of_range_are_not_scores(n: int) -> None:
    assert parse_score(str(n)) is None or str(n).startswith("-")


CALLBACKS: list[tuple[str, tuple[str, int, int | None, str | None] | None]] = [
    ("sv:42:8", ("score", 42, 8, None)),
    ("sv:42:10", ("score", 42, 10, None)),
    ("sv:c:42:charges", ("category", 42, None, "charges")),
    ("sv:k:42", ("skip", 42, None, None)),
    ("sv:42:0", None),
    ("sv:42:11", None),
    ("sv:x:8", None),
    ("sv:c:42:bogus", None),
    ("stop:all", None),
    ("sv", None),
    ("sv:42:8:9", None),
]


@pytest.mark.parametrize(("data", "expected"), CALLBACKS)
def test_callbacks(data: str, expected: tuple[str, int, int | None, str | None] | None) -> None:
    cb = parse_callback(data)
    if expected is None:
        assert cb is None
    else:
        assert cb is not None
        assert (cb.action, cb.touchpoint_id, cb.score, cb.category) == expected


def test_keyboards_fit_telegram() -> None:
    rows = score_buttons(9_223_372_036_854_775_807, chosen=8)
    assert [len(r) for r in rows] == [5, 5]
    assert rows[1][2][0] == "✅ 8"
    assert all(len(data.encode()) <= 64 for row in rows for _, data in row)
    longest = max(CSI_CATEGORIES, key=len)
    assert len(f"sv:c:9223372036854775807:{longest}".encode()) <= 64
