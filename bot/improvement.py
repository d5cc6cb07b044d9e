"""Asking what to improve (003 §2.2 g iv): after a good score, once and optionally.

The owner who gave a score above the low threshold is asked what could be better; their next
message (within ``ANSWER_WINDOW``) is kept with the survey's score (``score.improvement``),
or they press "Skip". The question is asked once per survey: a changed answer does not ask
again. On the phone the call's form has the same question. Plain values and ``now`` here;
the Telegram side is ``bot/handlers/survey.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from db.models import Score

STATE = "survey_improve"  # conversation state while the question waits for an answer
PREFIX = "si"  # si:k:<touchpoint>: skip the question
ANSWER_WINDOW = timedelta(hours=24)
LIMIT = 2000  # characters kept


def skip_button(touchpoint_id: int, label: str) -> list[list[tuple[str, str]]]:
    return [[(label, f"{PREFIX}:k:{touchpoint_id}")]]


def parse_skip(data: str) -> int | None:
    """The touchpoint of ``si:k:<id>``; None for anything else."""
    parts = data.split(":")
    if len(parts) == 3 and parts[:2] == [PREFIX, "k"] and parts[2].isdigit():
        return int(parts[2])
    return None


def still_waiting(asked_at: str | None, now: datetime) -> bool:
    """Whether a question asked at ``asked_at`` (ISO) still takes the owner's next message."""
    if not asked_at:
        return False
    try:
        asked = datetime.fromisoformat(asked_at)
    except ValueError:
        return False
    return asked <= now < asked + ANSWER_WINDOW


async def keep(touchpoint_id: int, customer_id: int, text: str) -> Score | None:
    """Keep the answer with the survey's current score (added to an earlier one)."""
    value = text.strip()[:LIMIT]
    score = await Score.filter(touchpoint_id=touchpoint_id, customer_id=customer_id,
                               superseded_at__isnull=True).first()
    if score is None or not value:
        return None
    score.improvement = f"{score.improvement}\n{value}" if score.improvement else value
    await score.save(update_fields=["improvement"])
    return score
