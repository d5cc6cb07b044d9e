"""Environment files read exactly the way systemd's ``EnvironmentFile=`` reads them.

carebot reads its ``.env`` (or ``--env-file``) with this parser and the unit's
``EnvironmentFile=`` gives the service the same values, so ``carebot migrate`` by hand and
the service can never run with different settings. ``sh -c '. file'`` is *not* the same: a
shell drops ``  # comment`` after a value, systemd keeps it as part of the value.

The rules (systemd's ``env-file.c``, v254 and later), documented in docs/deploy.md:

- a line whose first non-blank character is ``#`` or ``;`` is a comment; a ``#`` after a
  value is *not* a comment, it is part of the value;
- ``NAME=value``: blanks around the name and before the value are dropped, and so are
  trailing blanks of an unquoted value; blanks inside it are kept;
- unquoted: ``\\`` keeps the next character (``\\ `` a trailing blank, ``\\#``), and a
  ``\\`` at the end of a line joins the next line;
- ``'single quotes'`` keep everything verbatim, across lines; ``"double quotes"`` too, but
  ``\\"``, ``\\\\``, ``\\$``, ``\\``` are unescaped and ``\\`` at a line end joins lines;
  text right after a closing quote is appended (``"a" # x`` is ``a# x``);
- no ``$VAR`` expansion, no ``export`` (``export NAME=...`` is a line systemd ignores);
- a later assignment of a name wins; a line without ``=`` is ignored; so is a name that is
  not letters, digits and ``_`` (not starting with a digit), or a value with control
  characters other than tab and newline;
- the file must be UTF-8, or systemd refuses the whole file (and the unit does not start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path

_BLANK = " \t\n\r"
_NEWLINE = "\n\r"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SHELL_NEED_ESCAPE = '"\\`$'


class EnvFileError(ValueError):
    """The file cannot be read as systemd would (not UTF-8): systemd refuses it too."""


class _S(Enum):
    PRE_KEY = auto()
    KEY = auto()
    PRE_VALUE = auto()
    VALUE = auto()
    VALUE_ESCAPE = auto()
    SINGLE = auto()
    DOUBLE = auto()
    DOUBLE_ESCAPE = auto()
    COMMENT = auto()
    COMMENT_ESCAPE = auto()


@dataclass
class EnvFile:
    """What a file sets (``values``), where (``lines``), and what systemd would ignore."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    ignored: list[tuple[int, str]] = field(default_factory=list)  # (line, why)


@dataclass
class _Parser:
    out: EnvFile = field(default_factory=EnvFile)
    key: list[str] = field(default_factory=list)
    value: list[str] = field(default_factory=list)
    line: int = 1
    start: int = 1  # the line the current assignment began on
    key_blank: int | None = None  # where trailing blanks of the key start
    value_blank: int | None = None  # where trailing blanks of an unquoted value start

    def push(self, chomp: bool) -> None:
        name = "".join(self.key[: self.key_blank] if self.key_blank is not None else self.key)
        value = self.value[: self.value_blank] if chomp and self.value_blank is not None \
            else self.value
        text = "".join(value)
        if not _NAME.fullmatch(name):
            self.out.ignored.append((self.start, f"{name!r} is not a variable name"))
        elif _CONTROL.search(text):
            self.out.ignored.append((self.start, f"{name}: the value has control characters"))
        else:
            self.out.values[name] = text
            self.out.lines[name] = self.start
        self.key, self.value = [], []
        self.key_blank = self.value_blank = None

    def step(self, state: _S, c: str) -> _S:
        """One character; one branch per state, as in systemd's parse_env_file_internal."""
        if state is _S.PRE_KEY:
            if c in "#;":
                return _S.COMMENT
            if c not in _BLANK:
                self.start, self.key_blank = self.line, None
                self.key.append(c)
                return _S.KEY
            return state
        if state is _S.KEY:
            if c in _NEWLINE:
                self.out.ignored.append((self.start, "a line without '='"))
                self.key = []
                return _S.PRE_KEY
            if c == "=":
                self.value_blank = None
                return _S.PRE_VALUE
            self._blank_mark(c, self.key, "key_blank")
            self.key.append(c)
            return state
        if state is _S.PRE_VALUE:
            if c in _NEWLINE:
                self.push(chomp=False)
                return _S.PRE_KEY
            if c in "'\"\\":
                return {"'": _S.SINGLE, '"': _S.DOUBLE, "\\": _S.VALUE_ESCAPE}[c]
            if c not in _BLANK:
                self.value.append(c)
                return _S.VALUE
            return state
        if state is _S.VALUE:
            if c in _NEWLINE:
                self.push(chomp=True)
                return _S.PRE_KEY
            if c == "\\":
                self.value_blank = None
                return _S.VALUE_ESCAPE
            self._blank_mark(c, self.value, "value_blank")
            self.value.append(c)
            return state
        return self._quoted_or_comment(state, c)

    def _quoted_or_comment(self, state: _S, c: str) -> _S:
        if state is _S.VALUE_ESCAPE:
            if c not in _NEWLINE:  # an escaped newline joins the lines
                self.value.append(c)
            return _S.VALUE
        if state is _S.SINGLE:
            if c == "'":
                return _S.PRE_VALUE
            self.value.append(c)
            return state
        if state is _S.DOUBLE:
            if c == '"':
                return _S.PRE_VALUE
            if c == "\\":
                return _S.DOUBLE_ESCAPE
            self.value.append(c)
            return state
        if state is _S.DOUBLE_ESCAPE:
            if c in _SHELL_NEED_ESCAPE:
                self.value.append(c)
            elif c != "\n":
                self.value += ["\\", c]
            return _S.DOUBLE
        if state is _S.COMMENT:
            if c == "\\":
                return _S.COMMENT_ESCAPE
            return _S.PRE_KEY if c in _NEWLINE else state
        # COMMENT_ESCAPE: since v254 a comment's trailing backslash no longer continues it
        return _S.PRE_KEY if c in _NEWLINE else _S.COMMENT

    def _blank_mark(self, c: str, buf: list[str], attr: str) -> None:
        if c not in _BLANK:
            setattr(self, attr, None)
        elif getattr(self, attr) is None:
            setattr(self, attr, len(buf))


_PUSH_AT_END = {_S.PRE_VALUE, _S.VALUE, _S.VALUE_ESCAPE, _S.SINGLE, _S.DOUBLE,
                _S.DOUBLE_ESCAPE}


def parse(text: str) -> EnvFile:
    """The variables ``text`` sets, as systemd's ``EnvironmentFile=`` would set them."""
    text = text.split("\0", 1)[0]  # systemd reads a C string: a NUL ends the file
    parser = _Parser()
    state = _S.PRE_KEY
    for c in text:
        state = parser.step(state, c)
        if c == "\n":
            parser.line += 1
    if state in _PUSH_AT_END:
        parser.push(chomp=state is _S.VALUE)
    elif state is _S.KEY:
        parser.out.ignored.append((parser.start, "a line without '='"))
    return parser.out


def read(path: Path | str) -> EnvFile:
    """Parse a file; :class:`EnvFileError` when systemd would refuse it (not UTF-8)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EnvFileError(f"{path}: line {line} is not UTF-8 (systemd refuses the whole "
                           "file); save it as UTF-8") from None
    return parse(text)


_COMMENT_TAIL = re.compile(r"(?:^|[ \t])#.*$")


def swallowed(value: str) -> str | None:
    """Why ``value`` looks like it took in more than the setting (a comment, blanks, the
    following lines), or None. Said without the value itself: it may be a secret."""
    if "\n" in value or "\r" in value:
        return ("the value runs over several lines (a quote left open?): close the quote, "
                "one setting per line")
    tail = _COMMENT_TAIL.search(value)
    if tail is not None:
        comment = tail.group(0).strip()
        shown = comment if len(comment) <= 40 else comment[:37] + "..."
        return (f"the value ends in {shown!r}, a comment that became part of it (systemd "
                "keeps everything after '='): put comments on their own line")
    if value != value.strip():
        return ("the value starts or ends with a blank (inside quotes?): remove the blanks "
                "around it")
    return None
