"""Questionnaires: the questions a follow-up asks, configured by the dealership (003 §1.3).

One TOML file per follow-up kind and language, ``<scripts>/<lang>/questionnaires/<kind>.toml``
(the dealership's ``CAREBOT_SCRIPTS_DIR`` shadows the packaged file). A file is an ordered
list of ``[[question]]`` tables, each with ``key``, ``text``, ``scale`` (``1-10``, or
``satisfied3`` = 满意/一般/不满意), ``dimension`` (its CSI dimension) and ``weight``; an
optional ``[satisfied3]`` table sets the numbers the three answers count as (10/6/2 by
default). The overall score is the weighted mean of the answered questions.

Pure: parsing, validating and scoring take text and values; :func:`load` reads files.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Follow-up kinds with a questionnaire, and the touchpoints/ratings that use each.
KINDS: tuple[str, ...] = ("delivery", "visit", "major_repair", "complaint")
SALES_KINDS = frozenset({"delivery"})  # the rest are service (003 §1.3.1 vs §1.3.2)
FOLDER = "questionnaires"

SCALE_10 = "1-10"
SCALE_SAT3 = "satisfied3"
SCALES = (SCALE_10, SCALE_SAT3)
SAT3_CHOICES: tuple[str, ...] = ("satisfied", "neutral", "dissatisfied")  # 满意/一般/不满意
SAT3_DEFAULT: dict[str, int] = {"satisfied": 10, "neutral": 6, "dissatisfied": 2}

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
_FIELDS = ("key", "text", "scale", "dimension", "weight")
_MAX_QUESTIONS = 20
_MAX_TEXT = 500


class QuestionnaireError(ValueError):
    """A malformed questionnaire: the reason, and the line it was found at (when known)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    scale: str
    dimension: str
    weight: float

    def choices(self, sat3: Mapping[str, int]) -> list[tuple[str, int]]:
        """The answers offered, as (choice, value): 1..10, or the three 满意/一般/不满意."""
        if self.scale == SCALE_SAT3:
            return [(c, sat3[c]) for c in SAT3_CHOICES]
        return [(str(n), n) for n in range(1, 11)]


@dataclass(frozen=True)
class Questionnaire:
    kind: str
    questions: tuple[Question, ...]
    sat3: Mapping[str, int]

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)

    def value_of(self, key: str, choice: str) -> int | None:
        """The number an answer counts as, or None when it is not an answer to ``key``."""
        q = self.question(key)
        if q is None:
            return None
        return dict(q.choices(self.sat3)).get(choice)

    def next_key(self, answered: set[str]) -> str | None:
        """The first question not yet answered or skipped (where a paused survey resumes)."""
        return next((q.key for q in self.questions if q.key not in answered), None)

    @property
    def is_sales(self) -> bool:
        return self.kind in SALES_KINDS


def overall(questionnaire: Questionnaire, answers: Mapping[str, int | None]) -> int | None:
    """The weighted mean of the answered questions, rounded to a 1-10 score; None when every
    question was skipped (``None`` values are skips; unknown keys are ignored)."""
    total = weight = 0.0
    for q in questionnaire.questions:
        value = answers.get(q.key)
        if value is not None and q.weight > 0:
            total += value * q.weight
            weight += q.weight
    if weight == 0:
        return None
    return max(1, min(10, int(total / weight + 0.5)))


# --------------------------------------------------------------------------- parsing


def _header_lines(source: str) -> list[int]:
    """The line of each ``[[question]]`` header, in order (1-based)."""
    return [n for n, line in enumerate(source.splitlines(), 1)
            if re.match(r"^\s*\[\[\s*question\s*\]\]", line)]


def _field_line(source: str, start: int | None, name: str) -> int | None:
    """The line ``name = ...`` is set on in the table starting at ``start`` (else start)."""
    if start is None:
        return None
    lines = source.splitlines()
    for n in range(start, len(lines)):
        if re.match(r"^\s*\[", lines[n]):
            break
        if re.match(rf"^\s*{re.escape(name)}\s*=", lines[n]):
            return n + 1
    return start


def _sat3(data: Mapping[str, Any], source: str) -> dict[str, int]:
    raw = data.get(SCALE_SAT3, {})
    line = next((n for n, text in enumerate(source.splitlines(), 1)
                 if re.match(rf"^\s*\[\s*{SCALE_SAT3}\s*\]", text)), None)
    if not isinstance(raw, dict):
        raise QuestionnaireError(f"[{SCALE_SAT3}] must be a table", line)
    sat3 = dict(SAT3_DEFAULT)
    for name, value in raw.items():
        if name not in SAT3_CHOICES:
            raise QuestionnaireError(
                f"[{SCALE_SAT3}] {name!r} is not one of {', '.join(SAT3_CHOICES)}", line)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
            raise QuestionnaireError(f"[{SCALE_SAT3}] {name} must be a whole number 1-10", line)
        sat3[name] = value
    return sat3


def _question(raw: Any, index: int, source: str, line: int | None) -> Question:
    where = f"question {index}"
    if not isinstance(raw, dict):
        raise QuestionnaireError(f"{where} is not a table", line)
    for name in raw:
        if name not in _FIELDS:
            raise QuestionnaireError(f"{where}: unknown field {name!r}",
                                     _field_line(source, line, name))
    for name in _FIELDS:
        if name not in raw:
            raise QuestionnaireError(f"{where}: {name!r} is missing", line)
    key, text, scale, dim, weight = (raw[n] for n in _FIELDS)

    def bad(name: str, why: str) -> QuestionnaireError:
        return QuestionnaireError(f"{where}: {name} {why}", _field_line(source, line, name))

    if not isinstance(key, str) or not _KEY.match(key):
        raise bad("key", "must be lowercase letters, digits and _ (up to 24)")
    if not isinstance(text, str) or not text.strip() or len(text) > _MAX_TEXT:
        raise bad("text", f"must be non-empty text of at most {_MAX_TEXT} characters")
    if scale not in SCALES:
        raise bad("scale", f"must be one of {', '.join(SCALES)}")
    if not isinstance(dim, str) or not _KEY.match(dim):
        raise bad("dimension", "must be lowercase letters, digits and _")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
        raise bad("weight", "must be a number, 0 or more")
    return Question(key, text.strip(), scale, dim, float(weight))


def parse(source: str, kind: str) -> Questionnaire:
    """Parse and validate one questionnaire file's text; raises QuestionnaireError."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:
            found = re.search(r"line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise QuestionnaireError(f"not valid TOML: {exc}", line) from exc
    for name in data:
        if name not in ("question", SCALE_SAT3):
            raise QuestionnaireError(f"unknown table or field {name!r}",
                                     _field_line(source, 0, name))
    raws = data.get("question")
    if not isinstance(raws, list) or not raws:
        raise QuestionnaireError("no [[question]] tables")
    if len(raws) > _MAX_QUESTIONS:
        raise QuestionnaireError(f"more than {_MAX_QUESTIONS} questions")
    headers = _header_lines(source)
    questions: list[Question] = []
    for i, raw in enumerate(raws):
        line = headers[i] if i < len(headers) else None
        q = _question(raw, i + 1, source, line)
        if any(q.key == other.key for other in questions):
            raise QuestionnaireError(f"question {i + 1}: key {q.key!r} is used twice",
                                     _field_line(source, line, "key"))
        questions.append(q)
    if sum(q.weight for q in questions) <= 0:
        raise QuestionnaireError("the weights add up to 0: no overall score", headers[0])
    return Questionnaire(kind, tuple(questions), _sat3(data, source))


def path_for(folder: Path, lang: str, kind: str) -> Path:
    return folder / lang / FOLDER / f"{kind}.toml"


def load(dirs: list[Path], lang: str, kind: str) -> Questionnaire | None:
    """The questionnaire of ``kind`` in ``lang``: the first folder of ``dirs`` that has one
    (the dealership's before the packaged). None when none has it; raises when it is bad."""
    for folder in dirs:
        path = path_for(folder, lang, kind)
        if path.is_file():
            return parse(path.read_text(encoding="utf-8"), kind)
    return None


def check_folder(lang_dir: Path) -> tuple[int, list[tuple[Path, int | None, str]]]:
    """Validate every questionnaire file of one language folder: (files, problems)."""
    problems: list[tuple[Path, int | None, str]] = []
    files = sorted((lang_dir / FOLDER).glob("*.toml"))
    for path in files:
        if path.stem not in KINDS:
            problems.append((path, None, f"{path.stem!r} is not a follow-up kind "
                                         f"({', '.join(KINDS)})"))
            continue
        try:
            parse(path.read_text(encoding="utf-8"), path.stem)
        except QuestionnaireError as exc:
            problems.append((path, exc.line, exc.reason))
        except UnicodeDecodeError as exc:
            problems.append((path, None, f"not UTF-8 text: {exc}"))
    return len(files), problems
