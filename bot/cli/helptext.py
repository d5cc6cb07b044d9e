"""``carebot --help`` in the staff member's language (issue 18, point 1).

Each option's help is written in English where it is declared; rather than a key per option,
the English text is the key, as in gettext, so a declaration reads as it always did. The
Chinese is in ``bot/cli/i18n/help.zh_CN.toml``; English needs no table. A help text added
without its Chinese fails ``tests/test_cli_help.py``. argparse's own refusals ("the
following arguments are required") stay in English: they are argparse's, not carebot's.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterator
from functools import cache, partial
from typing import Any

from bot.terminal_words import CATALOGUES, cli_language

USAGE = "usage: "


@cache
def table(lang: str) -> dict[str, str]:
    """English help text -> the language's (empty for English)."""
    path = CATALOGUES / f"help.{lang}.toml"
    if not path.exists():
        return {}
    return {str(k): str(v) for k, v in tomllib.loads(path.read_text("utf-8"))["help"].items()}


def translate(text: str | None, lang: str) -> str | None:
    if not text or text == argparse.SUPPRESS:
        return text
    return table(lang).get(text, text)


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand's, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            yield from action._choices_actions  # the subcommand list's lines


def texts(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every text ``--help`` shows that carebot wrote: descriptions, headings, helps."""
    yield USAGE
    for p in parsers(parser):
        for text in (p.description, p.epilog, *(g.title for g in p._action_groups)):
            if text:
                yield text
        for action in _actions(p):
            if action.help and action.help != argparse.SUPPRESS:
                yield action.help


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter with the "usage: " heading in the reader's language."""

    def __init__(self, prog: str, *, usage_prefix: str = USAGE, **options: Any) -> None:
        super().__init__(prog, **options)
        self._usage_prefix = usage_prefix

    def add_usage(self, usage: str | None, actions: Any, groups: Any,
                  prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, prefix or self._usage_prefix)


def localize(parser: argparse.ArgumentParser, lang: str | None = None
             ) -> argparse.ArgumentParser:
    """Put every help text, description and heading of ``parser`` in ``lang`` (the
    terminal's language when not given)."""
    lang = lang or cli_language()
    prefix = translate(USAGE, lang) or USAGE
    for p in parsers(parser):
        p.description = translate(p.description, lang)
        p.epilog = translate(p.epilog, lang)
        p.formatter_class = partial(_Formatter, usage_prefix=prefix)
        for group in p._action_groups:
            group.title = translate(group.title, lang)
        for action in _actions(p):
            action.help = translate(action.help, lang)
    return parser
