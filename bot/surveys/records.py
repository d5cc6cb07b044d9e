"""Answers recorded: a score with its history (a change within the window replaces it,
the old row kept), the category and comment of a low score, the survey's message log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from bot.surveys.rules import (
    CSI_CATEGORIES,
    LOG_COMMENT,
    LOG_REASK,
    SURVEY_KINDS,
    Outcome,
    SurveyRules,
    advisor_name,
    decide,
    is_low,
    is_open,
    rates_of,
)
from db.models import (
    Customer,
    Direction,
    MessageLog,
    Score,
    ScoreRates,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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
