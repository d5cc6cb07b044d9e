"""Satisfaction surveys (CSI, 003 §1.3-§2.2): the 1-10 question carried by follow-ups.

A survey is a sent touchpoint of one of the survey kinds (``SURVEY_KINDS``); it takes
answers for ``survey_open_days`` after it was sent. Everything here takes plain values and
``now``; the Telegram side is ``bot/handlers/survey.py``.

Callback data, all under ``sv`` and well under 64 bytes:

- ``sv:<touchpoint_id>:<score>``     a score button (1-10)
- ``sv:c:<touchpoint_id>:<category>`` the CSI category after a low score
- ``sv:k:<touchpoint_id>``            skip the optional comment

The category and skip buttons name the *survey*, not a score row, so they keep working when
the owner changes their answer in between.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise.transactions import in_transaction

from bot.delivery import notices
from bot.delivery.dispatcher import Outgoing, compose
from bot.owners import get_conversation
from bot.templating import render_off_loop
from db.models import (
    Customer,
    Direction,
    MessageLog,
    Score,
    ScoreRates,
    Ticket,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
)

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services import Services

log = logging.getLogger(__name__)

SCORE_PREFIX = "sv"

# The touchpoint kinds that ask for a score, and what their score rates. Issue 3 writes
# followup_3d and service_followup, issue 5 ticket_followup; this module composes them.
SURVEY_KINDS: dict[str, ScoreRates] = {
    "followup_3d": ScoreRates.DELIVERY,
    "service_followup": ScoreRates.VISIT,
    "ticket_followup": ScoreRates.COMPLAINT,
}

# The CSI categories of 003 附件2, in the order the owner sees them (keys shared with tickets).
CSI_CATEGORIES: tuple[str, ...] = (
    "service_process", "repair_quality", "charges", "timeliness", "environment", "other",
)

# Message-log kinds this feature writes, so re-asks and kept comments are counted from the log.
LOG_REASK = "survey_reask"
LOG_COMMENT = "survey_comment"

# Conversation states (bot.owners.set_conversation) while a low score is being explained.
STATE_CATEGORY = "survey_category"
STATE_COMMENT = "survey_comment"

DELIGHTED_FROM = 9  # 9-10 = "very satisfied" (003 §1.4.3)


# --------------------------------------------------------------------------- the keyboard


def score_buttons(touchpoint_id: int, chosen: int | None = None) -> list[list[tuple[str, str]]]:
    """The 1-10 keyboard: two rows of five, as (label, callback_data); ``chosen`` is ticked."""
    return [
        [(f"✅ {n}" if n == chosen else str(n), f"{SCORE_PREFIX}:{touchpoint_id}:{n}")
         for n in range(row, row + 5)]
        for row in (1, 6)
    ]


def category_buttons(touchpoint_id: int, labels: dict[str, str]) -> list[list[tuple[str, str]]]:
    """The six CSI categories, two per row; ``labels`` maps category key -> button label."""
    pairs = [(labels[c], f"{SCORE_PREFIX}:c:{touchpoint_id}:{c}") for c in CSI_CATEGORIES]
    return [pairs[i:i + 2] for i in range(0, len(pairs), 2)]


def skip_button(touchpoint_id: int, label: str) -> list[list[tuple[str, str]]]:
    return [[(label, f"{SCORE_PREFIX}:k:{touchpoint_id}")]]


@dataclass(frozen=True)
class SurveyCallback:
    """A decoded ``sv:`` callback: action is "score", "category" or "skip"."""

    action: str
    touchpoint_id: int
    score: int | None = None
    category: str | None = None


def parse_callback(data: str) -> SurveyCallback | None:
    """Decode ``sv:...`` callback data; None for anything malformed (old or forged buttons)."""
    parts = data.split(":")
    if len(parts) < 3 or parts[0] != SCORE_PREFIX:
        return None
    try:
        if parts[1] == "c" and len(parts) == 4 and parts[3] in CSI_CATEGORIES:
            return SurveyCallback("category", int(parts[2]), category=parts[3])
        if parts[1] == "k" and len(parts) == 3:
            return SurveyCallback("skip", int(parts[2]))
        if len(parts) == 3:
            score = int(parts[2])
            if 1 <= score <= 10:
                return SurveyCallback("score", int(parts[1]), score=score)
    except ValueError:
        return None
    return None


# --------------------------------------------------------------------------- the parser

_CN_NUMERALS = {
    "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
    "十": 10, "拾": 10,
}
_EN_NUMERALS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10,
}
_NUM = (r"(?P<num>\d{1,2}|[" + "".join(_CN_NUMERALS) + "]|"
        + "|".join(sorted(_EN_NUMERALS, key=len, reverse=True)) + ")")
# "我给你们打8分", "评分：8", "score: 8", "给 8"
_PREFIX = (r"(?:(?:我|就)?(?:给|打|评|选)(?:你们|您|你)?(?:打|评)?"
           r"|评分|分数|打分|得分|score|rating|myscoreis|i'dgive|igive|give)?[:=]?")
# "8分", "8分吧", "8/10", "8分/10分", "8 out of 10", "8 points", "10分满分"
_SUFFIX = (r"(?:分|points?|pts?)?(?:/10分?|outof10|满分(?:10分?)?)?(?:分)?"
           r"(?:吧|啦|了|呀|哦|的|呢|嘛)?")
_STRICT = re.compile(f"^{_PREFIX}{_NUM}{_SUFFIX}$")
# Inside a sentence only an explicit "N分" (not 分钟, minutes) or "N/10" counts.
_MARKED = re.compile(r"(?<![\d./])(?P<num>\d{1,2})(?:分(?!钟)|/10(?!\d))")
_DIGIT_RUN = re.compile(r"\d+")
_KEYCAPS = {"\U0001f51f": "10", "\ufe0f": "", "\u20e3": ""}  # 🔟, variation selector, keycap
_STRICT_MAX_LEN = 40
_SENTENCE_MAX_LEN = 300


@dataclass(frozen=True)
class ParsedReply:
    """What a typed reply says: a score (1-10) or None; ``in_sentence`` when words came with it
    (the whole text is then worth keeping as a comment)."""

    score: int | None
    in_sentence: bool = False


_NEGATIVE = re.compile(r"^\s*[-−－﹣]\s*\d")


def _strip_edges(text: str) -> str:
    """Drop whitespace, punctuation, symbols and emoji around the answer."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start])[0] in "PZSC":
        start += 1
    while end > start and unicodedata.category(text[end - 1])[0] in "PZSC":
        end -= 1
    return text[start:end]


def _value(token: str) -> int | None:
    if token.isdigit():
        n = int(token)
    else:
        n = _CN_NUMERALS.get(token, _EN_NUMERALS.get(token, 0))
    return n if 1 <= n <= 10 else None


def parse_reply(text: object) -> ParsedReply:
    """Read a typed answer the way owners write it: ``8``, ``８``, ``8分``, ``8/10``, ``十``,
    ``打8分！``, ``满分``; or a short sentence with exactly one ``N分``/``N/10`` in it."""
    if not isinstance(text, str):
        return ParsedReply(None)
    raw = text[: _SENTENCE_MAX_LEN + 1]
    normal = unicodedata.normalize("NFKC", raw).lower()
    for char, repl in _KEYCAPS.items():
        normal = normal.replace(char, repl)
    if _NEGATIVE.match(normal):
        return ParsedReply(None)  # "-1" is below the scale, not a score of 1
    core = re.sub(r"\s+", "", _strip_edges(normal))
    if not core:
        return ParsedReply(None)
    if len(core) <= _STRICT_MAX_LEN:
        if core in ("满分", "满分10分", "满分10"):
            return ParsedReply(10)
        m = _STRICT.match(core)
        if m:
            return ParsedReply(_value(m.group("num")))
    if len(raw) > _SENTENCE_MAX_LEN:
        return ParsedReply(None)
    marked = list(_MARKED.finditer(core))
    if len(marked) != 1:
        return ParsedReply(None)
    # Any other number in the sentence ("3个小时") makes it ambiguous unless it is a
    # minutes count ("等了30分钟"), which is never a score.
    others = [d for d in _DIGIT_RUN.finditer(core)
              if d.start() != marked[0].start() and not core.startswith("分钟", d.end())]
    if others:
        return ParsedReply(None)
    score = _value(marked[0].group("num"))
    return ParsedReply(score, in_sentence=score is not None)


def parse_score(text: object) -> int | None:
    """A typed reply as a score 1-10, or None when it is not one. Never raises."""
    return parse_reply(text).score


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class SurveyRules:
    """The survey rules a caller takes from Settings once."""

    open_for: timedelta = timedelta(days=7)
    low_threshold: int = 6
    change_window: timedelta = timedelta(hours=24)
    max_reasks: int = 2
    handover_after: timedelta = timedelta(minutes=30)
    review_url: str = ""


def survey_rules(settings: Settings) -> SurveyRules:
    return SurveyRules(
        open_for=timedelta(days=settings.survey_open_days),
        low_threshold=settings.survey_low_threshold,
        change_window=timedelta(hours=settings.survey_change_hours),
        max_reasks=settings.survey_max_reasks,
        handover_after=timedelta(minutes=settings.survey_handover_minutes),
        review_url=settings.review_url,
    )


def is_open(sent_at: datetime | None, now: datetime, rules: SurveyRules) -> bool:
    """A survey takes answers from when it was sent until ``open_for`` later."""
    return sent_at is not None and sent_at <= now < sent_at + rules.open_for


def is_low(score: int, rules: SurveyRules) -> bool:
    return score <= rules.low_threshold


def is_delighted(score: int) -> bool:
    return score >= DELIGHTED_FROM


class Outcome(StrEnum):
    NEW = "new"  # the first answer
    SAME = "same"  # the same answer again (a double tap): nothing changes
    CHANGED = "changed"  # a different answer within the change window: replaces the score
    LOCKED = "locked"  # a different answer after the change window: the first one stands
    CLOSED = "closed"  # the survey is no longer open
    NOT_A_SURVEY = "not_a_survey"  # unknown touchpoint, another owner's, or not a survey kind


def decide(*, current: int | None, first_answered_at: datetime | None, new: int,
           now: datetime, rules: SurveyRules) -> Outcome:
    """What a (repeated) answer does to an open survey: the pure rule behind record_score."""
    if current is None:
        return Outcome.NEW
    if current == new:
        return Outcome.SAME
    if first_answered_at is not None and now - first_answered_at <= rules.change_window:
        return Outcome.CHANGED
    return Outcome.LOCKED


def rates_of(kind: str) -> ScoreRates | None:
    return SURVEY_KINDS.get(kind)


def advisor_name(visit: Visit | None, vehicle: Vehicle | None, customer: Customer) -> str:
    """Who the score is attributed to: the visit's advisor, else the car's sales advisor, else
    the owner's own advisor (003 §1.4.3: scores are counted per advisor)."""
    for name in (visit.advisor if visit else "", vehicle.sales_advisor if vehicle else "",
                 customer.advisor):
        if name and name.strip():
            return name.strip()
    return ""


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- recording


@dataclass
class RecordResult:
    outcome: Outcome
    touchpoint: Touchpoint | None = None
    score: Score | None = None  # the current score after this answer
    previous: Score | None = None  # the replaced score (CHANGED)
    start_low_flow: bool = False  # ask the category and comment now


async def current_score(touchpoint_id: int) -> Score | None:
    return await Score.filter(touchpoint_id=touchpoint_id, superseded_at__isnull=True).first()


async def survey_of(touchpoint_id: int, customer_id: int) -> Touchpoint | None:
    """The owner's survey touchpoint with this id (None if it is someone else's)."""
    tp = await Touchpoint.get_or_none(id=touchpoint_id, customer_id=customer_id)
    if tp is None or tp.kind not in SURVEY_KINDS:
        return None
    return tp


async def _kept_comments(touchpoint_id: int) -> str:
    texts = await MessageLog.filter(touchpoint_id=touchpoint_id, kind=LOG_COMMENT,
                                    direction=Direction.IN).order_by("id").values_list(
                                        "text", flat=True)
    return "\n".join(str(t) for t in texts)


async def record_score(touchpoint_id: int, customer: Customer, score: int, *, now: datetime,
                       rules: SurveyRules, source: str = "button",
                       comment: str = "") -> RecordResult:
    """Store an answer for a survey: idempotent for a repeat, a change within the window
    replaces the current row (the old one stays, marked superseded), later changes are
    refused. The touchpoint row is locked meanwhile, so two taps cannot both be "first"."""
    if not 1 <= score <= 10:
        raise ValueError(f"a score is 1-10, not {score}")
    async with in_transaction():
        tp = await Touchpoint.filter(id=touchpoint_id, customer_id=customer.id).select_for_update(
        ).first()
        rates = rates_of(tp.kind) if tp is not None else None
        if tp is None or rates is None or tp.status != TouchpointStatus.SENT:
            return RecordResult(Outcome.NOT_A_SURVEY, tp)
        if not is_open(tp.sent_at, now, rules):
            return RecordResult(Outcome.CLOSED, tp)
        previous = await current_score(tp.id)
        outcome = decide(current=previous.score if previous else None,
                         first_answered_at=previous.first_answered_at if previous else None,
                         new=score, now=now, rules=rules)
        if outcome in (Outcome.SAME, Outcome.LOCKED):
            return RecordResult(outcome, tp, previous)
        low = is_low(score, rules) and rates is not ScoreRates.COMPLAINT
        values: dict[str, Any] = {"handover": "", "category": None}
        start_low_flow = False
        if previous is None:
            payload = tp.payload or {}
            visit_id = _int_or_none(payload.get("visit_id"))
            visit = await Visit.get_or_none(id=visit_id) if visit_id else None
            vehicle_id = tp.vehicle_id or (getattr(visit, "vehicle_id", None) if visit else None)
            vehicle = await Vehicle.get_or_none(id=vehicle_id) if vehicle_id else None
            kept = await _kept_comments(tp.id)
            values.update(
                touchpoint_id=tp.id, customer_id=customer.id, vehicle_id=vehicle_id,
                visit_id=visit.id if visit else None,
                ticket_id=_int_or_none(payload.get("ticket_id")), rates=rates,
                advisor=advisor_name(visit, vehicle, customer), first_answered_at=now,
                comment="\n".join(c for c in (kept, comment) if c),
            )
            if low:
                values["handover"] = "pending"
                start_low_flow = True
        else:
            await Score.filter(id=previous.id).update(superseded_at=now)
            values.update(
                touchpoint_id=tp.id, customer_id=previous.customer_id,
                vehicle_id=previous.vehicle_id, visit_id=previous.visit_id,
                ticket_id=previous.ticket_id, rates=previous.rates, advisor=previous.advisor,
                first_answered_at=previous.first_answered_at,
                comment="\n".join(c for c in (previous.comment, comment) if c),
            )
            if low and previous.handover:  # already low: the case stays where it is
                values.update(handover=previous.handover, category=previous.category)
            elif low:
                values["handover"] = "pending"
                start_low_flow = True
            elif previous.handover not in ("", "pending"):
                values["handover"] = previous.handover  # the ticket stays linked
        row = await Score.create(score=score, source=source, created_at=now, **values)
    return RecordResult(outcome, tp, row, previous, start_low_flow)


async def open_survey_for(customer_id: int, now: datetime, rules: SurveyRules) -> Touchpoint | None:
    """The owner's most recent open survey (sent within its window), answered or not: a typed
    score answers it, or changes the answer within the change window (record_score decides)."""
    return await Touchpoint.filter(
        customer_id=customer_id, kind__in=list(SURVEY_KINDS), status=TouchpointStatus.SENT,
        sent_at__gt=now - rules.open_for, sent_at__lte=now,
    ).order_by("-sent_at", "-id").first()


async def is_answered(touchpoint_id: int) -> bool:
    return await Score.filter(touchpoint_id=touchpoint_id).exists()


async def reasks_so_far(touchpoint_id: int) -> int:
    return await MessageLog.filter(touchpoint_id=touchpoint_id, kind=LOG_REASK).count()


async def log_survey_message(*, customer: Customer, touchpoint_id: int | None, kind: str,
                             text: str,
                             direction: Direction, now: datetime,
                             telegram_message_id: int | None = None) -> None:
    """Keep a survey exchange in the message log, tied to its survey."""
    await MessageLog.create(
        customer_id=customer.id, touchpoint_id=touchpoint_id, direction=direction,
        chat_id=customer.telegram_chat_id or 0, telegram_message_id=telegram_message_id,
        kind=kind, text=text, created_at=now,
    )


async def set_category(touchpoint_id: int, category: str) -> Score | None:
    """The CSI category of the current (low) score; None if there is nothing to categorise."""
    if category not in CSI_CATEGORIES:
        raise ValueError(f"unknown CSI category {category!r}")
    score = await current_score(touchpoint_id)
    if score is None or score.handover != "pending":
        return None
    score.category = category
    await score.save(update_fields=["category"])
    return score


async def add_comment(score: Score, comment: str) -> Score:
    text = comment.strip()
    if text:
        score.comment = f"{score.comment}\n{text}" if score.comment else text
        await score.save(update_fields=["comment"])
    return score


# --------------------------------------------------------------------------- handing over


def _tickets() -> Any | None:
    """bot.tickets (issue 5) if it is there; the survey works without it (staff are told)."""
    try:
        return importlib.import_module("bot.tickets")
    except ImportError:
        return None


async def notify_staff(services: Services, key: str, text: str) -> bool:
    """A plain message to the staff chat, owed as a row (``key`` names its cause: once);
    False when there is no staff chat or it could not be sent now (it is tried again)."""
    chat_id = services.settings.staff_chat_id
    if chat_id is None:
        log.warning("no CAREBOT_STAFF_CHAT_ID: staff could not be told (%s)", key)
        return False
    try:
        return await notices.tell(services, key, [chat_id], text)
    except Exception:  # the caller's flow must go on; the score is stored
        log.exception("could not tell staff (%s)", key)
        return False


def _staff_label(services: Services, key: str, **fmt: Any) -> str:
    return services.scripts.label(key, "zh_CN", **fmt)


def score_summary(services: Services, score: Score, customer: Customer) -> str:
    """One line for staff and the ticket: who scored what, about what, why."""
    category = (services.scripts.label(f"survey_cat_{score.category}", "zh_CN") if score.category
                else services.scripts.label("survey_cat_none", "zh_CN"))
    return _staff_label(
        services, "survey_staff_low", name=customer.name, phone=customer.phone,
        score=score.score, rates=services.scripts.label(f"survey_rates_{score.rates}", "zh_CN"),
        category=category, advisor=score.advisor or "-", comment=score.comment or "-",
    )


HANDING_LEASE = timedelta(minutes=10)


async def hand_over(score: Score, customer: Customer, *, now: datetime,
                    services: Services) -> str:
    """A low score goes to the complaint workflow (a ticket); if that is not possible, staff
    are told in their chat. Returns the handover recorded ("ticket:<id>" or "staff")."""
    claimed = await Score.filter(id=score.id, handover="pending").update(handover="handing")
    if not claimed:  # someone else (the timer, a double tap) is already on it
        fresh = await Score.get(id=score.id)
        return fresh.handover
    summary = score_summary(services, score, customer)
    handover = "staff"
    tickets = _tickets()
    existing = await Ticket.filter(score_id=score.id).first()
    if existing is not None:  # a crash after opening it, before recording it: no second one
        handover = f"ticket:{existing.id}"
    elif tickets is not None:
        try:
            ticket = await tickets.open_ticket(
                customer_id=customer.id, vehicle_id=score.vehicle_id, channel="survey",
                category=score.category or "other", description=score.comment or summary,
                now=now, services=services, score_id=score.id,
            )
            handover = f"ticket:{ticket.id}"
        except Exception:  # the owner's complaint must reach someone
            log.exception("opening a ticket for score %s failed; telling staff instead", score.id)
    if handover == "staff":
        await notify_staff(services, f"score:{score.id}:handover", summary)
    await Score.filter(id=score.id).update(handover=handover)
    score.handover = handover
    return handover


async def rated_handling(score: Score, customer: Customer, *, now: datetime,
                         services: Services) -> bool:
    """A score of how a complaint was handled goes back to the ticket, which reopens or
    closes (and tells the owner so). Without the complaints module, or when the ticket was
    not waiting for a rating, staff are told. True when the ticket moved."""
    tickets = _tickets()
    if tickets is not None and score.ticket_id is not None:
        before = await Ticket.get_or_none(id=score.ticket_id)
        try:
            await tickets.handling_rated(score.ticket_id, score.score, now=now, services=services)
        except Exception:  # the rating is stored; staff must still hear of it
            log.exception("handling_rated(%s, %s) failed", score.ticket_id, score.score)
        else:
            after = await Ticket.get_or_none(id=score.ticket_id)
            if before is not None and after is not None and after.state != before.state:
                return True
    await notify_staff(services, f"score:{score.id}:handling", _staff_label(
        services, "survey_staff_handling", name=customer.name, phone=customer.phone,
        score=score.score, ticket=score.ticket_id or "-"))
    return False


async def has_active_ticket(customer_id: int) -> bool:
    """Whether the owner has a complaint being handled (their free text belongs there)."""
    tickets = _tickets()
    if tickets is None:
        return False
    return await tickets.active_ticket_of(customer_id) is not None


async def hand_over_stale(*, now: datetime, services: Services) -> int:
    """Low scores whose owner never finished (category, comment) go over anyway: a complaint
    must not wait on a button nobody presses."""
    rules = survey_rules(services.settings)
    # A hand-over interrupted by a crash ("handing" long after) is taken up again.
    await Score.filter(handover="handing", superseded_at__isnull=True,
                       created_at__lte=now - rules.handover_after - HANDING_LEASE
                       ).update(handover="pending")
    stale = await Score.filter(handover="pending", superseded_at__isnull=True,
                               created_at__lte=now - rules.handover_after).select_related(
                                   "customer").limit(500)
    for score in stale:
        await hand_over(score, score.customer, now=now, services=services)
        conv = await get_conversation(score.customer.telegram_user_id or 0)
        if conv is not None and conv.state in (STATE_CATEGORY, STATE_COMMENT) and \
                conv.data.get("touchpoint_id") == score.touchpoint_id:
            await conv.delete()
    return len(stale)


async def keep_comment(tp: Touchpoint, customer: Customer, text: str, *, now: datetime,
                       services: Services, offer_to_staff: bool = True) -> None:
    """Text that is not a score, written while a survey is open, is kept with the survey (it
    is never lost); a real comment (not a stray "abc") is also offered to staff."""
    await log_survey_message(customer=customer, touchpoint_id=tp.id, kind=LOG_COMMENT,
                             text=text, direction=Direction.IN, now=now)
    if not offer_to_staff:
        return
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]  # the same comment: told once
    await notify_staff(services, f"survey-comment:{tp.id}:{digest}", _staff_label(
        services, "survey_staff_comment", name=customer.name, phone=customer.phone,
        rates=services.scripts.label(f"survey_rates_{SURVEY_KINDS[tp.kind]}", "zh_CN"),
        text=text))


# --------------------------------------------------------------------------- composing


def make_composer(services: Services) -> Any:
    """The composer of every survey kind: the kind's script plus the 1-10 keyboard."""
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = await render_off_loop(compose, tp, customer, vehicle, services.scripts,
                                    services.settings)
        return Outgoing(text=out.text, buttons=score_buttons(tp.id))

    return composer

