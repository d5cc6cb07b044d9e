"""``carebot --help`` in the staff member's language (issue 18, point 1).

Each option's help is written in English where it is declared; rather than a key per option,
the English text is the key, as in gettext, so a declaration reads as it always did. The
Chinese is in ``bot/cli/i18n/help.zh_CN.toml``; English needs no table. A help text added
without its Chinese fails ``tests/test_cli_help.py``. argparse's own refusals ("the
following arguments are required: --day") are matched by their English and said in the
same language (:class:`CarebotParser`).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache, partial
from typing import Any, NoReturn

from bot.terminal_words import CATALOGUES, cli_language

USAGE = "usage: "


@cache
def _sections(lang: str) -> dict[str, dict[str, str]]:
    path = CATALOGUES / f"help.{lang}.toml"
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text("utf-8"))
    return {name: {str(k): str(v) for k, v in part.items()} for name, part in data.items()}


def table(lang: str) -> dict[str, str]:
    """English help text -> the language's (empty for English)."""
    return _sections(lang).get("help", {})


# argparse's refusals as it words them (Python 3.11-3.13), by the catalogue key that says
# them again; ``why`` is itself a refusal (argparse nests "argument --day: <why>").
_WORDINGS = (
    ("argument", r"argument (?P<arg>[^:]+): (?P<why>.+)"),
    ("required", r"the following arguments are required: (?P<args>.+)"),
    ("unrecognized", r"unrecognized arguments: (?P<args>.+)"),
    ("invalid_choice", r"invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)"),
    ("invalid_value", r"invalid \S+ value: (?P<value>.+)"),
    ("expected_one", r"expected one argument"),
    ("expected_at_least_one", r"expected at least one argument"),
    ("expected_at_most_one", r"expected at most one argument"),
    ("expected_n", r"expected (?P<n>\d+) arguments?"),
    ("not_allowed_with", r"not allowed with argument (?P<arg>.+)"),
    ("one_of_required", r"one of the arguments (?P<args>.+) is required"),
    ("ambiguous", r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)"),
    ("cannot_open", r"can't open (?P<filename>'.+'): (?P<error>.+)"),
    ("ignored", r"ignored explicit argument (?P<value>.+)"),
)
_REFUSALS = [(key, re.compile(pattern, re.S)) for key, pattern in _WORDINGS]


def refusal(message: str, lang: str) -> str:
    """argparse's refusal in ``lang``; carebot's own (already in the language) and any
    wording not known here are returned as they are."""
    words = _sections(lang).get("refusal", {})
    for key, pattern in _REFUSALS:
        found = pattern.fullmatch(message)
        if found and key in words:
            values = found.groupdict()
            if "why" in values:
                values["why"] = refusal(values["why"], lang)
            return words[key].format(**values)
    return message


class CarebotParser(argparse.ArgumentParser):
    """argparse's parser with its refusals in the terminal's language (its subcommands'
    parsers are of the same class: argparse makes them with ``type(self)``)."""

    def error(self, message: str) -> NoReturn:
        lang = cli_language()
        self.print_usage(sys.stderr)
        words = _sections(lang).get("refusal", {})
        text = refusal(message, lang)
        line = words["error"].format(prog=self.prog, message=text) if "error" in words \
            else f"{self.prog}: error: {text}"
        self.exit(2, line + "\n")


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
