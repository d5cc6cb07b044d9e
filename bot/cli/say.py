"""What the ``carebot`` command tells staff, in their language (issue 18, point 1).

The words live in ``bot/cli/i18n/<lang>/*.toml`` (flat ``key = "text"`` tables, read as the
console reads its own: ``{name}`` fills in a value, a missing key falls back to Chinese).
The language is ``CAREBOT_LANGUAGE`` (``zh_CN`` or ``en``), else the locale's
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``zh…`` or ``en…``), else the dealership's default,
Chinese (the catalogue is read by ``bot/terminal_words.py``, which start-up code outside
the CLI uses too). Machine output (CSV, JSON, a deep link, a table of codes) is printed as it is;
``tests/test_cli_language.py`` fails on an English literal printed from ``bot/cli``.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

from bot.terminal_words import CATALOGUES, LANGUAGE_VARIABLES, cli_language, ljust, t, width
from bot.web.console.render import Translator, load_strings

__all__ = ["CATALOGUES", "LANGUAGE_VARIABLES", "cli_language", "fail", "ljust", "rjust", "say",
           "t", "width", "words"]


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
