"""One name for each thing, and no English left inside the Chinese texts (issue 18, point 1).

docs/glossary.md is the reference: its **Avoid** column lists words that must not appear in
the Chinese scripts and console catalogues, and its last table the Latin names that may.
The console's pages are checked the same way in a browser (tests/browser/test_every_page.py).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.md"
_ZH = ROOT / "bot" / "scripts" / "zh_CN"
CHINESE_TEXTS = sorted(p for folder in (_ZH, _ZH / "questionnaires",
                                        ROOT / "bot" / "web" / "console" / "i18n" / "zh_CN",
                                        ROOT / "bot" / "cli" / "i18n" / "zh_CN")
                       for p in folder.iterdir() if p.is_file())

WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z][A-Za-z'’-]*[A-Za-z](?![A-Za-z0-9_])")
NOT_WORDS = (  # code and names a person types or reads as they are
    re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL),  # Jinja
    re.compile(r"<[^>]+>"),  # HTML tags of Telegram's HTML
    re.compile(r"\{[a-z_]+(?:![rs])?(?::[^}]*)?\}"),  # a label's {placeholder}
    re.compile(r"CAREBOT_[A-Z0-9_]+"),  # where a setting is changed
    re.compile(r"carebot(?: --?[\w-]+| [a-z][\w-]*)+"),  # a command to type
    re.compile(r"`[^`]+`|(?<![\w-])--[a-z][\w-]*"),  # code to type, an option (--env-file)
    re.compile(r"(?<![\w/])/[a-z_]+\b"),  # a Telegram command (/help)
    re.compile(r"\S+@\S+|https?://\S+|[\w/.-]+\.(?:md|csv|xlsx|toml|txt|html)\b"),
    re.compile(r"&[a-z]+;"),  # an HTML entity
    re.compile(r"@\w+"),  # a Telegram account (@userinfobot)
    re.compile(r"(?:/[\w.-]+){2,}/?|(?<!\w)\.[a-z]+\b"),  # a path, a file type (.env, .xlsx)
)
# Shown before the owner has chosen a language, so in both on purpose.
BILINGUAL = frozenset({"labels.toml:language_ask"})


def glossary_tables() -> list[list[dict[str, str]]]:
    tables: list[list[dict[str, str]]] = []
    header: list[str] = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = cells
            tables.append([])
        elif not set(line) <= set("|- "):
            tables[-1].append(dict(zip(header, cells, strict=False)))
    return tables


def avoided() -> dict[str, str]:
    """{word to avoid: the glossary's term}."""
    out = {}
    for table in glossary_tables():
        for row in table:
            for word in re.split(r"[、,，]\s*", row.get("Avoid", "")):
                if word:
                    out[word] = row["中文"]
    return out


def allowed_names() -> frozenset[str]:
    names = glossary_tables()[-1]
    return frozenset(n.strip().lower() for row in names for n in row["Name"].split(","))


def texts_of(path: Path) -> list[tuple[str, str]]:
    """(where, text) for each string a person reads in the file."""
    if path.parent.name == "questionnaires":  # the questions; the rest are identifiers
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return [(f"{path.name}:{q['key']}", q["text"]) for q in data["question"]]
    if path.suffix == ".toml":
        return [(f"{path.name}:{key}", value)
                for key, value in _flatten(tomllib.loads(path.read_text(encoding="utf-8")))]
    return [(path.name, path.read_text(encoding="utf-8"))]


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, str):
            out.append((f"{prefix}{key}", value))
    return out


def english_in(text: str, allowed: frozenset[str]) -> list[str]:
    for pattern in NOT_WORDS:
        text = pattern.sub(" ", text)
    return sorted({w for w in WORD.findall(text) if w.lower() not in allowed})


def test_the_glossary_has_its_tables() -> None:
    assert avoided()["客服主管"] == "接待主管"
    assert {"vin", "csv", "telegram"} <= allowed_names()


@pytest.mark.parametrize("path", CHINESE_TEXTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_chinese_texts_use_the_glossary_terms(path: Path) -> None:
    words = avoided()
    found = [(where, word, words[word]) for where, text in texts_of(path)
             for word in words if word in text]
    assert not found, "\n".join(f"{where}: {word} → {term}" for where, word, term in found)


@pytest.mark.parametrize("path", CHINESE_TEXTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_chinese_texts_hold_no_english(path: Path) -> None:
    allowed = allowed_names()
    found = [(where, words) for where, text in texts_of(path)
             if where not in BILINGUAL and (words := english_in(text, allowed))]
    assert not found, "\n".join(f"{where}: {words}" for where, words in found)


def test_english_is_found_where_it_is_left() -> None:
    allowed = allowed_names()
    assert english_in("处理人未在 {when} 前解决 handler did not resolve", allowed) == [
        "did", "handler", "not", "resolve"]
    assert english_in("请用 carebot staff add --telegram-id 绑定 Telegram ID。/help", allowed) == []
