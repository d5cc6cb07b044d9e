"""How a script addresses an owner: 张先生 / 王女士 where the manuals' scripts say 先生/女士
(003 §2.1.2: "您好！XX先生/女士，我是…"), the bare name when the title is not known.

Pure: the title is stored as "mr", "ms" or "" (not known) whatever the import said, and
worded per language here."""

from __future__ import annotations

MR, MS, UNKNOWN = "mr", "ms", ""
TITLES = (MR, MS)

# What an import's 称呼/性别 column may say, lower-cased.
_SAYS = {
    MR: {"先生", "男", "男士", "m", "male", "mr", "mr.", "man"},
    MS: {"女士", "女", "小姐", "f", "female", "ms", "ms.", "mrs", "mrs.", "miss", "woman"},
}
# Two-character surnames (复姓) that are still common; any other name's surname is its first
# character.
_COMPOUND = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
             "宇文", "司徒", "夏侯", "令狐", "端木", "轩辕", "独孤", "南宫", "西门", "申屠")
_WORD = {"zh_CN": {MR: "先生", MS: "女士"}, "en": {MR: "Mr", MS: "Ms"}}


def parse_title(value: str | None) -> str | None:
    """"mr", "ms", "" for an empty cell, or None when the text is not a title we know."""
    text = (value or "").strip().lower()
    if not text:
        return UNKNOWN
    for title, words in _SAYS.items():
        if text in words:
            return title
    return None


def _is_cjk(name: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in name)


def surname(name: str) -> str:
    """张伟 → 张, 欧阳娜娜 → 欧阳, John Smith → Smith."""
    name = name.strip()
    if _is_cjk(name):
        if len(name) > 2 and name.startswith(_COMPOUND):
            return name[:2]
        return name[:1]
    parts = name.split()
    return parts[-1] if parts else name


def address(name: str, title: str, lang: str) -> str:
    """How a script addresses the owner: 张先生 (zh_CN), Mr Zhang Wei's "Mr 张伟" or
    "Mr Smith" (en); the bare name when the title is not known."""
    words = _WORD.get(lang, _WORD["zh_CN"])
    if title not in words or not name.strip():
        return name
    if lang == "en":
        # a Chinese name keeps its whole form in English text ("Mr 张伟"), a Latin one its
        # surname ("Mr Smith")
        return f"{words[title]} {name.strip() if _is_cjk(name) else surname(name)}"
    return f"{surname(name)}{words[title]}"
