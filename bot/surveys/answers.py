"""A survey's questionnaire answered question by question (issue 16 point 2): which
questionnaire a survey asks, its buttons and callbacks, the answers stored, where a paused
survey resumes, and the overall score once every question is answered or skipped.

Callback data (under 64 bytes): ``sq:<touchpoint_id>:<question index>:<choice>`` where the
choice is ``1``..``10``, ``s``/``n``/``d`` (满意/一般/不满意) or ``x`` (skip). Telegram-free:
the handlers are ``bot/handlers/questionnaire.py``; the phone form uses :func:`record`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.surveys import questionnaire as qn
from bot.texts import PACKAGED
from db.models import ScoreAnswer, ScoreRates, Touchpoint

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

PREFIX = "sq"
SKIP = "x"
_SAT3_CODES = {"s": "satisfied", "n": "neutral", "d": "dissatisfied"}
_CODE_OF = {v: k for k, v in _SAT3_CODES.items()}
# the questionnaire each survey kind asks (a major repair has its own, 003 §2.2.2)
_KIND_OF = {"followup_3d": "delivery", "service_followup": "visit",
            "ticket_followup": "complaint"}
RATES_OF = {"delivery": ScoreRates.DELIVERY, "visit": ScoreRates.VISIT,
            "major_repair": ScoreRates.VISIT, "complaint": ScoreRates.COMPLAINT}


def kind_for(touchpoint_kind: str, payload: dict[str, Any] | None) -> str | None:
    """The questionnaire kind of a survey touchpoint (None: it asks none)."""
    kind = _KIND_OF.get(touchpoint_kind)
    if kind == "visit" and (payload or {}).get("major_repair"):
        return "major_repair"
    return kind


def questionnaire_for(touchpoint_kind: str, payload: dict[str, Any] | None, lang: str,
                      scripts_dir: Path | str | None) -> qn.Questionnaire | None:
    """The questionnaire a survey asks question by question, or None when it asks one
    score as before (one question, no file, or a broken file: logged, never raised)."""
    kind = kind_for(touchpoint_kind, payload)
    if kind is None:
        return None
    dirs = [Path(scripts_dir)] if scripts_dir else []
    dirs.append(PACKAGED)
    try:
        found = qn.load(dirs, lang, kind) or qn.load(dirs, "zh_CN", kind)
    except (qn.QuestionnaireError, OSError, UnicodeDecodeError) as exc:
        log.error("questionnaire %s (%s) is broken, asking one score instead: %s",
                  kind, lang, exc)
        return None
    if found is None or len(found.questions) < 2:
        return None
    return found


def questionnaire_of(tp: Touchpoint, lang: str, settings: Settings) -> qn.Questionnaire | None:
    """The questionnaire this survey asks question by question (None: one score)."""
    if not settings.survey_questionnaires:
        return None
    return questionnaire_for(tp.kind, tp.payload, lang, settings.scripts_dir)


# --------------------------------------------------------------------------- buttons


def choice_label(choice: str, labels: dict[str, str]) -> str:
    return labels.get(choice, choice)


def question_buttons(tp_id: int, index: int, questionnaire: qn.Questionnaire,
                     labels: dict[str, str], chosen: str | None = None
                     ) -> list[list[tuple[str, str]]]:
    """A question's answers as buttons (1-10 in two rows, or the three words in one), and
    Skip; ``labels`` maps satisfied/neutral/dissatisfied/skip to words; ``chosen`` ticked."""
    q = questionnaire.questions[index]

    def button(choice: str, code: str) -> tuple[str, str]:
        text = choice_label(choice, labels)
        return (f"✅ {text}" if choice == chosen else text, f"{PREFIX}:{tp_id}:{index}:{code}")

    if q.scale == qn.SCALE_SAT3:
        rows = [[button(c, _CODE_OF[c]) for c in qn.SAT3_CHOICES]]
    else:
        rows = [[button(str(n), str(n)) for n in range(start, start + 5)] for start in (1, 6)]
    return [*rows, [button("skip", SKIP)]]


@dataclass(frozen=True)
class AnswerCallback:
    touchpoint_id: int
    index: int
    choice: str | None  # None: skipped


def parse_callback(data: str) -> AnswerCallback | None:
    """Decode ``sq:...``; None for anything malformed (old or forged buttons)."""
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != PREFIX or not parts[1].isdigit() \
            or not parts[2].isdigit():
        return None
    code = parts[3]
    if code == SKIP:
        choice = None
    elif code in _SAT3_CODES:
        choice = _SAT3_CODES[code]
    elif code.isdigit() and 1 <= int(code) <= 10:
        choice = code
    else:
        return None
    return AnswerCallback(int(parts[1]), int(parts[2]), choice)


# --------------------------------------------------------------------------- records


async def answers_of(tp_id: int) -> dict[str, int | None]:
    """The survey's answers so far: question key -> value (None when skipped)."""
    rows = await ScoreAnswer.filter(touchpoint_id=tp_id).values("question", "value")
    return {str(r["question"]): r["value"] for r in rows}


async def record(tp: Touchpoint, questionnaire: qn.Questionnaire, key: str,
                 choice: str | None, *, now: datetime, source: str = "button") -> bool:
    """Store one answer (``choice`` None: skipped), replacing an earlier one to the same
    question. False when ``choice`` is no answer to that question (nothing stored)."""
    q = questionnaire.question(key)
    if q is None:
        return False
    value = None if choice is None else questionnaire.value_of(key, choice)
    if choice is not None and value is None:
        return False
    values: dict[str, Any] = {
        "customer_id": tp.customer_id, "rates": RATES_OF[questionnaire.kind],
        "kind": questionnaire.kind, "position": questionnaire.questions.index(q),
        "dimension": q.dimension, "choice": choice or "", "value": value,
        "skipped": choice is None, "source": source, "answered_at": now,
    }
    updated = await ScoreAnswer.filter(touchpoint_id=tp.id, question=key).update(**values)
    if not updated:
        await ScoreAnswer.create(touchpoint_id=tp.id, question=key, **values)
    return True


async def next_index(tp_id: int, questionnaire: qn.Questionnaire) -> int | None:
    """Where the survey resumes: the first question neither answered nor skipped."""
    key = questionnaire.next_key(set(await answers_of(tp_id)))
    if key is None:
        return None
    return [q.key for q in questionnaire.questions].index(key)


async def overall_of(tp_id: int, questionnaire: qn.Questionnaire) -> int | None:
    return qn.overall(questionnaire, await answers_of(tp_id))
