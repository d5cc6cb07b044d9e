"""The survey's buttons and callbacks, and typed replies read as a score (pure).

Callback data, all under ``sv`` and well under 64 bytes:

- ``sv:<touchpoint_id>:<score>``     a score button (1-10)
- ``sv:c:<touchpoint_id>:<category>`` the CSI category after a low score
- ``sv:k:<touchpoint_id>``            skip the optional comment

The category and skip buttons name the *survey*, not a score row, so they keep working when
the owner changes their answer in between.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.surveys.rules import CSI_CATEGORIES

SCORE_PREFIX = "sv"


# --------------------------------------------------------------------------- the keyboard


def score_buttons(touchpoint_id: int, chosen: int | None = None) -> list[list[tuple[str, str]]]:
    """The 1-10 keyboard: two rows of five, as (label, callback_data); ``chosen`` is ticked."""
    return [
        [(f"✅ {n}" if n == chosen else str(n), f"{SCORE_PREFIX}:{touchpoint_id}:{n}")
         for n in range(row, row + 5)]
        for row in (1, 6)
    ]


def chosen_score_button(touchpoint_id: int, score: int) -> list[list[tuple[str, str]]]:
    """What the 1-10 keyboard becomes once answered: the chosen score alone, ticked (a
    change is typed: "8")"""
    return [[(f"✅ {score}", f"{SCORE_PREFIX}:{touchpoint_id}:{score}")]]


def category_buttons(touchpoint_id: int, labels: dict[str, str]) -> list[list[tuple[str, str]]]:
    """The six CSI categories, two per row; ``labels`` maps category key -> button label."""
    pairs = [(labels[c], f"{SCORE_PREFIX}:c:{touchpoint_id}:{c}") for c in CSI_CATEGORIES]
    return [pairs[i:i + 2] for i in range(0, len(pairs), 2)]


def skip_button(touchpoint_id: int, label: str) -> list[list[tuple[str, str]]]:
    return [[(label, f"{SCORE_PREFIX}:k:{touchpoint_id}")]]


@dataclass(frozen=True)
class SurveyCallback:
    """A decoded ``sv:`` callback: action is "score", "category" or "skip"."""

    action: str
    touchpoint_id: int
    score: int | None = None
    category: str | None = None


def parse_callback(data: str) -> SurveyCallback | None:
    """Decode ``sv:...`` callback data; None for anything malformed (old or forged buttons)."""
    parts = data.split(":")
    if len(parts) < 3 or parts[0] != SCORE_PREFIX:
        return None
    try:
        if parts[1] == "c" and len(parts) == 4 and parts[3] in CSI_CATEGORIES:
            return SurveyCallback("category", int(parts[2]), category=parts[3])
        if parts[1] == "k" and len(parts) == 3:
            return SurveyCallback("skip", int(parts[2]))
        if len(parts) == 3:
            score = int(parts[2])
            if 1 <= score <= 10:
                return SurveyCallback("score", int(parts[1]), score=score)
    except ValueError:
        return None
    return None


# --------------------------------------------------------------------------- the parser

_CN_NUMERALS = {
    "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
    "十": 10, "拾": 10,
}
_EN_NUMERALS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10,
}
_NUM = (r"(?P<num>\d{1,2}|[" + "".join(_CN_NUMERALS) + "]|"
        + "|".join(sorted(_EN_NUMERALS, key=len, reverse=True)) + ")")
# "我给你们打8分", "评分：8", "score: 8", "给 8"
_PREFIX = (r"(?:(?:我|就)?(?:给|打|评|选)(?:你们|您|你)?(?:打|评)?"
           r"|评分|分数|打分|得分|score|rating|myscoreis|i'dgive|igive|give)?[:=]?")
# "8分", "8分吧", "8/10", "8分/10分", "8 out of 10", "8 points", "10分满分"
_SUFFIX = (r"(?:分|points?|pts?)?(?:/10分?|outof10|满分(?:10分?)?)?(?:分)?"
           r"(?:吧|啦|了|呀|哦|的|呢|嘛)?")
_STRICT = re.compile(f"^{_PREFIX}{_NUM}{_SUFFIX}$")
# Inside a sentence only an explicit "N分" (not 分钟, minutes) or "N/10" counts.
_MARKED = re.compile(r"(?<![\d./])(?P<num>\d{1,2})(?:分(?!钟)|/10(?!\d))")
_DIGIT_RUN = re.compile(r"\d+")
_KEYCAPS = {"\U0001f51f": "10", "\ufe0f": "", "\u20e3": ""}  # 🔟, variation selector, keycap
_STRICT_MAX_LEN = 40
_SENTENCE_MAX_LEN = 300


@dataclass(frozen=True)
class ParsedReply:
    """What a typed reply says: a score (1-10) or None; ``in_sentence`` when words came with it
    (the whole text is then worth keeping as a comment)."""

    score: int | None
    in_sentence: bool = False


_NEGATIVE = re.compile(r"^\s*[-\u2212\uff0d﹣]\s*\d")  # minus signs: ASCII, math, full-width, small


def _strip_edges(text: str) -> str:
    """Drop whitespace, punctuation, symbols and emoji around the answer."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start])[0] in "PZSC":
        start += 1
    while end > start and unicodedata.category(text[end - 1])[0] in "PZSC":
        end -= 1
    return text[start:end]


def _value(token: str) -> int | None:
    n = int(token) if token.isdigit() else _CN_NUMERALS.get(token, _EN_NUMERALS.get(token, 0))
    return n if 1 <= n <= 10 else None


def parse_reply(text: object) -> ParsedReply:
    """Read a typed answer the way owners write it: ``8``, ``８``, ``8分``, ``8/10``, ``十``,
    ``打8分！``, ``满分``; or a short sentence with exactly one ``N分``/``N/10`` in it."""
    if not isinstance(text, str):
        return ParsedReply(None)
    raw = text[: _SENTENCE_MAX_LEN + 1]
    normal = unicodedata.normalize("NFKC", raw).lower()
    for char, repl in _KEYCAPS.items():
        normal = normal.replace(char, repl)
    if _NEGATIVE.match(normal):
        return ParsedReply(None)  # "-1" is below the scale, not a score of 1
    core = re.sub(r"\s+", "", _strip_edges(normal))
    if not core:
        return ParsedReply(None)
    if len(core) <= _STRICT_MAX_LEN:
        if core in ("满分", "满分10分", "满分10"):
            return ParsedReply(10)
        m = _STRICT.match(core)
        if m:
            return ParsedReply(_value(m.group("num")))
    if len(raw) > _SENTENCE_MAX_LEN:
        return ParsedReply(None)
    marked = list(_MARKED.finditer(core))
    if len(marked) != 1:
        return ParsedReply(None)
    # Any other number in the sentence ("3个小时") makes it ambiguous unless it is a
    # minutes count ("等了30分钟"), which is never a score.
    others = [d for d in _DIGIT_RUN.finditer(core)
              if d.start() != marked[0].start() and not core.startswith("分钟", d.end())]
    if others:
        return ParsedReply(None)
    score = _value(marked[0].group("num"))
    return ParsedReply(score, in_sentence=score is not None)


def parse_score(text: object) -> int | None:
    """A typed reply as a score 1-10, or None when it is not one. Never raises."""
    return parse_reply(text).score
