"""Satisfaction surveys (CSI): the 1-10 question carried by follow-ups.

Callback data of a score button: ``sv:<touchpoint_id>:<score>`` (well under 64 bytes).
"""

from __future__ import annotations

SCORE_PREFIX = "sv"


def score_buttons(touchpoint_id: int) -> list[list[tuple[str, str]]]:
    """The 1-10 keyboard: two rows of five, as (label, callback_data)."""
    return [
        [(str(n), f"{SCORE_PREFIX}:{touchpoint_id}:{n}") for n in range(row, row + 5)]
        for row in (1, 6)
    ]
