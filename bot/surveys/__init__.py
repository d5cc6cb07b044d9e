"""Satisfaction surveys (CSI, 003 §1.3-§2.2): the 1-10 question carried by follow-ups.

A survey is a sent touchpoint of one of the survey kinds (``SURVEY_KINDS``); it takes
answers for ``survey_open_days`` after it was sent. Everything here takes plain values and
``now``; the Telegram side is ``bot/handlers/survey.py``.

The package's parts: ``rules`` (what is asked, the pure rules of answers), ``replies``
(buttons, callbacks, typed replies read as a score), ``records`` (answers stored with their
history), ``handover`` (low scores to a ticket or to staff; the composer).
"""

from bot.surveys.handover import (
    HANDING_LEASE,
    hand_over,
    hand_over_stale,
    has_active_ticket,
    keep_comment,
    make_composer,
    notify_staff,
    rated_handling,
    score_summary,
)
from bot.surveys.records import (
    RecordResult,
    add_comment,
    current_score,
    is_answered,
    log_survey_message,
    open_survey_for,
    reasks_so_far,
    record_score,
    set_category,
    survey_of,
)
from bot.surveys.replies import (
    SCORE_PREFIX,
    ParsedReply,
    SurveyCallback,
    category_buttons,
    chosen_score_button,
    parse_callback,
    parse_reply,
    parse_score,
    score_buttons,
    skip_button,
)
from bot.surveys.rules import (
    CSI_CATEGORIES,
    DELIGHTED_FROM,
    LOG_COMMENT,
    LOG_REASK,
    STATE_CATEGORY,
    STATE_COMMENT,
    SURVEY_KINDS,
    Outcome,
    SurveyRules,
    advisor_name,
    decide,
    is_delighted,
    is_low,
    is_open,
    rates_of,
    survey_rules,
)

__all__ = [
    "CSI_CATEGORIES",
    "DELIGHTED_FROM",
    "HANDING_LEASE",
    "LOG_COMMENT",
    "LOG_REASK",
    "SCORE_PREFIX",
    "STATE_CATEGORY",
    "STATE_COMMENT",
    "SURVEY_KINDS",
    "Outcome",
    "ParsedReply",
    "RecordResult",
    "SurveyCallback",
    "SurveyRules",
    "add_comment",
    "advisor_name",
    "category_buttons",
    "chosen_score_button",
    "current_score",
    "decide",
    "hand_over",
    "hand_over_stale",
    "has_active_ticket",
    "is_answered",
    "is_delighted",
    "is_low",
    "is_open",
    "keep_comment",
    "log_survey_message",
    "make_composer",
    "notify_staff",
    "open_survey_for",
    "parse_callback",
    "parse_reply",
    "parse_score",
    "rated_handling",
    "rates_of",
    "reasks_so_far",
    "record_score",
    "score_buttons",
    "score_summary",
    "set_category",
    "skip_button",
    "survey_of",
    "survey_rules",
]
