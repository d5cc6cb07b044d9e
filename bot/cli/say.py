"""What the ``carebot`` command tells staff, in their language (issue 18, point 1).

The words live in ``bot/cli/i18n/<lang>/*.toml`` (flat ``key = "text"`` tables, read as the
console reads its own: ``{name}`` fills in a value, a missing key falls back to Chinese).
The language is ``CAREBOT_LANGUAGE`` (``zh_CN`` or ``en``), else the locale's
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``zh…`` or ``en…``), else the dealership's default,
Chinese. Machine output (CSV, JSON, a deep link, a table of codes) is printed as it is;
``tests/test_cli_language.py`` fails on an English literal printed from ``bot/cli``.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.texts import DEFAULT_LANGUAGE
from bot.web.console.render import Translator, load_strings

CATALOGUES = Path(__file__).parent / "i18n"
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
    return DEFAULT_LANGUAGE


@lru_cache(maxsize=1)
def _strings() -> dict[str, dict[str, str]]:
    return load_strings(CATALOGUES)


def t(key: str, **values: Any) -> str:
    """The text for ``key`` in the CLI's language, ``{name}`` filled from ``values``."""
    return Translator(_strings(), cli_language())(key, **values)


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ljust(text: str, columns: int) -> str:
    """``str.ljust`` by terminal columns, so Chinese labels line up."""
    return text + " " * max(0, columns - width(text))


def rjust(text: str, columns: int) -> str:
    return " " * max(0, columns - width(text)) + text


@lru_cache(maxsize=1)
def _console_strings() -> dict[str, dict[str, str]]:
    return load_strings()


def words() -> Translator:
    """The console's catalogue in the CLI's language: the names staff know from the console
    (roles, levels, a ticket's state, an import's problems) read the same at the terminal."""
    return Translator(_console_strings(), cli_language())


def say(key: str, **values: Any) -> None:
    """Print a line for the staff member at the terminal (stdout)."""
    print(t(key, **values))


def fail(command: str, key: str, **values: Any) -> None:
    """Print why ``carebot COMMAND`` did not do it (stderr), after the command's name."""
    print(f"carebot {command}: {t(key, **values)}", file=sys.stderr)
