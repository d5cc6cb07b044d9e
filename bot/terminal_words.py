"""The words carebot prints at the terminal for the staff member running it, in their
language: ``bot/cli/i18n/<lang>/*.toml`` (flat ``key = "text"`` tables; ``{name}`` fills in
a value, a missing key falls back to Chinese).

Here rather than in ``bot.cli`` because what stops start-up is raised outside the CLI too
(``bot.app``: the web port taken; ``bot.config``: a wrong setting; ``bot.sandbox``: its
banner and its emulator's port), and nothing but the CLI may import the CLI
(``tests/test_layers.py``). ``bot/cli/say.py`` prints with it.
"""

from __future__ import annotations

import os
import tomllib
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUES = Path(__file__).parent / "cli" / "i18n"
LANGUAGES = ("zh_CN", "en")
FALLBACK = "zh_CN"  # the dealership's language (bot.texts.DEFAULT_LANGUAGE)
LANGUAGE_VARIABLES = ("CAREBOT_LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def cli_language(environ: Mapping[str, str] = os.environ) -> str:
    """``zh_CN`` or ``en``: the first of CAREBOT_LANGUAGE, LC_ALL, LC_MESSAGES, LANG that
    names one of them (``zh_CN.UTF-8``, ``en_US.UTF-8``, ``zh``), else Chinese."""
    for name in LANGUAGE_VARIABLES:
        value = environ.get(name, "").strip().lower()
        if value.startswith("zh"):
            return "zh_CN"
        if value.startswith("en"):
            return "en"
    return FALLBACK


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """Every key of the CLI's catalogue, per language."""
    strings: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        table: dict[str, str] = {}
        for path in sorted((CATALOGUES / lang).glob("*.toml")):
            table.update(_flatten(tomllib.loads(path.read_text(encoding="utf-8"))))
        strings[lang] = table
    return strings


def t(key: str, **values: Any) -> str:
    """The text for ``key`` in the terminal's language, ``{name}`` filled from ``values``."""
    strings = catalogue()
    text = strings[cli_language()].get(key) or strings[FALLBACK].get(key) or key
    return text.format(**values) if values else text


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ljust(text: str, columns: int) -> str:
    """``str.ljust`` by terminal columns, so Chinese labels line up."""
    return text + " " * max(0, columns - width(text))
