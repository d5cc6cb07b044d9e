"""The call list (电话回访, 003 §1.2.1, §2.2): follow-ups owed to owners Telegram cannot reach.

A follow-up whose owner had not linked Telegram when it fell due, who blocked the bot, or who
left the survey unanswered for ``call_unanswered_days`` becomes a ``phone_call`` row instead
of lapsing. The touchpoint itself is marked ``call_list`` (owed by phone now), except an
unanswered survey, which stays ``sent`` (Telegram did reach the owner). The scan that writes
calls is idempotent (one call per touchpoint) and runs every few minutes.

An agent records each attempt: reached (with the answers), no answer or busy (tried again
at another time of day, up to ``call_max_attempts``, then 联络不上), wrong number (电话有误:
the owner's file is flagged), refused (打扰了). Everything here takes plain values and
``now``; the console page is ``bot/web/console/pages/calls.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from bot import recall, surveys
from bot.journeys.timing import at_local, local_date, parse_hhmm
from bot.surveys import answers as survey_answers
from db.models import (
    CallOutcome,
    CallReason,
    CallStatus,
    Customer,
    PhoneCall,
    PhoneCallAttempt,
    RecallAnswer,
    Score,
    Staff,
    StaffRole,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
)

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services import Services
    from bot.surveys.questionnaire import Questionnaire

log = logging.getLogger(__name__)

RECALL = recall.RECALL
# The follow-ups a person calls for when Telegram cannot carry them: the delivery and
# workshop surveys, and the lost-owner recall (its questions are the reasons).
CALL_KINDS: tuple[str, ...] = ("followup_3d", "service_followup", RECALL)
# A follow-up older than this is not called for any more (it would be a stale call).
HORIZON = timedelta(days=14)
SCAN_LIMIT = 1000
# A retried call waits at least this long, so "another time of day" is never "right now".
MIN_GAP = timedelta(hours=2)
CLOSED = (CallStatus.REACHED, CallStatus.REFUSED, CallStatus.WRONG_NUMBER,
          CallStatus.UNREACHABLE, CallStatus.ANSWERED)
# Who takes a call for the owners of an advisor: that person, when they are staff.
CALLERS = (StaffRole.AGENT, StaffRole.ADVISOR, StaffRole.SUPERVISOR, StaffRole.MANAGER)


class CallError(ValueError):
    """An outcome that cannot be recorded (the call is closed, an answer out of range)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class CallRules:
    tz: ZoneInfo
    unanswered_after: timedelta = timedelta(days=3)
    max_attempts: int = 3
    times: tuple[time, ...] = (time(10, 0), time(15, 0), time(19, 0))
    low_threshold: int = 6


def call_rules(settings: Settings) -> CallRules:
    times = tuple(sorted(parse_hhmm(p.strip()) for p in settings.call_times.split(",")
                         if p.strip()))
    return CallRules(tz=settings.tz,
                     unanswered_after=timedelta(days=settings.call_unanswered_days),
                     max_attempts=settings.call_max_attempts, times=times,
                     low_threshold=settings.survey_low_threshold)


# --------------------------------------------------------------------------- timing


def part_of_day(at: datetime, rules: CallRules) -> int:
    """Which of the call times ``at`` falls in: the last one at or before it (0 before the
    first): 10:40 is the morning's, 15:20 the afternoon's, 19:05 the evening's."""
    local = at.astimezone(rules.tz).time()
    part = 0
    for i, slot in enumerate(rules.times):
        if slot <= local:
            part = i
    return part


def next_attempt_at(now: datetime, tried: list[datetime], rules: CallRules) -> datetime:
    """When to try a call again: the first call time at least ``MIN_GAP`` from now in a part
    of the day not tried yet (all tried: any other than the last one's)."""
    used = {part_of_day(t, rules) for t in tried}
    last = part_of_day(tried[-1], rules) if tried else None
    if len(used) >= len(rules.times):
        used = {last} if last is not None and len(rules.times) > 1 else set()
    day = local_date(now, rules.tz)
    for offset in range(8):
        for i, slot in enumerate(rules.times):
            at = at_local(day + timedelta(days=offset), slot, rules.tz)
            if at >= now + MIN_GAP and i not in used:
                return at
    return now + timedelta(days=1)


# --------------------------------------------------------------------------- the scan


async def _assignee_of(advisor: str, cache: dict[str, int | None]) -> int | None:
    """The staff member whose name is the owner's advisor (the person responsible)."""
    name = advisor.strip()
    if not name:
        return None
    if name not in cache:
        staff = await Staff.filter(name=name, active=True, role__in=CALLERS).order_by(
            "id").first()
        cache[name] = staff.id if staff else None
    return cache[name]


async def _open_calls(rows: list[Touchpoint], reason: CallReason, now: datetime, *,
                      move: bool) -> int:
    """A call for each touchpoint that has none; ``move``: the touchpoint is owed by phone
    now (it will not be sent, nor expire, in Telegram)."""
    made = 0
    staff_cache: dict[str, int | None] = {}
    for tp in rows:
        customer: Customer = tp.customer
        async with in_transaction():
            if await PhoneCall.filter(touchpoint_id=tp.id).exists():
                continue
            await PhoneCall.create(
                touchpoint_id=tp.id, customer_id=tp.customer_id, vehicle_id=tp.vehicle_id,
                assignee_id=await _assignee_of(customer.advisor, staff_cache), kind=tp.kind,
                reason=reason, due_at=max(tp.due_at, now) if reason is CallReason.UNANSWERED
                else tp.due_at, created_at=now)
            if move:
                await Touchpoint.filter(id=tp.id).update(
                    status=TouchpointStatus.CALL_LIST, lease_until=None,
                    status_reason=f"owed by phone: {reason.value}")
        made += 1
    return made


def _owed(now: datetime) -> Any:
    """Follow-ups of the call kinds, due within the horizon, for owners who take them."""
    return Touchpoint.filter(kind__in=CALL_KINDS, due_at__lte=now, due_at__gte=now - HORIZON,
                             customer__followups_refused=False)


async def scan(now: datetime, rules: CallRules) -> int:
    """Write the calls owed by now; returns how many were written. Idempotent."""
    made = 0
    lost = Q(status=TouchpointStatus.PENDING) | Q(
        status=TouchpointStatus.EXPIRED, status_reason__startswith="the owner had not linked")
    unlinked = await _owed(now).filter(lost, customer__telegram_chat_id__isnull=True) \
        .select_related("customer").order_by("due_at").limit(SCAN_LIMIT)
    made += await _open_calls(unlinked, CallReason.NOT_LINKED, now, move=True)
    blocked_rows = Q(status__in=(TouchpointStatus.PENDING, TouchpointStatus.UNREACHABLE)) | Q(
        status=TouchpointStatus.SKIPPED, status_reason__startswith="owner unreachable")
    blocked = await _owed(now).filter(blocked_rows, customer__unreachable_at__isnull=False) \
        .select_related("customer").order_by("due_at").limit(SCAN_LIMIT)
    made += await _open_calls(blocked, CallReason.BLOCKED, now, move=True)
    answered = Subquery(Score.filter(touchpoint_id__gte=0).values("touchpoint_id"))
    recalled = Subquery(RecallAnswer.filter(touchpoint_id__gte=0).values("touchpoint_id"))
    called = Subquery(PhoneCall.filter(touchpoint_id__gte=0).values("touchpoint_id"))
    silent = await Touchpoint.filter(
        kind__in=CALL_KINDS, status=TouchpointStatus.SENT, customer__followups_refused=False,
        sent_at__lte=now - rules.unanswered_after,
        sent_at__gte=now - rules.unanswered_after - HORIZON,
    ).exclude(id__in=answered).exclude(id__in=recalled).exclude(id__in=called) \
        .select_related("customer").order_by("sent_at").limit(SCAN_LIMIT)
    made += await _open_calls(silent, CallReason.UNANSWERED, now, move=False)
    # Answered in Telegram meanwhile, or the owner declined follow-ups: nobody calls.
    await PhoneCall.filter(status=CallStatus.OPEN, touchpoint_id__in=Subquery(
        Score.filter(touchpoint_id__gte=0).values("touchpoint_id")),
        reason=CallReason.UNANSWERED).update(status=CallStatus.ANSWERED, closed_at=now)
    await PhoneCall.filter(status=CallStatus.OPEN, touchpoint_id__in=recalled,
                           reason=CallReason.UNANSWERED).update(
        status=CallStatus.ANSWERED, closed_at=now)
    if made:
        log.info("call list: %d new call(s)", made)
    return made


# --------------------------------------------------------------------------- the list


def scope_of(staff: Staff, *, see_all: bool) -> Q | None:
    """The calls a person works: theirs, and unassigned ones of their own owners; None: all."""
    if see_all:
        return None
    own = Customer.filter(advisor=staff.name).values("id")
    return Q(assignee_id=staff.id) | Q(assignee_id=None, customer_id__in=Subquery(own))


async def call_list(scope: Q | None, *, include_closed: bool = False,
                    limit: int = 200) -> list[PhoneCall]:
    """Open calls by due time (the earliest first), with owner, car, assignee, touchpoint."""
    rows = PhoneCall.all() if include_closed else PhoneCall.filter(status=CallStatus.OPEN)
    if scope is not None:
        rows = rows.filter(scope)
    order = ("-closed_at", "-id") if include_closed else ("due_at", "id")
    return await rows.order_by(*order).limit(limit).select_related(
        "customer", "vehicle", "assignee", "touchpoint")


async def reassign(call: PhoneCall, assignee_id: int | None) -> None:
    await PhoneCall.filter(id=call.id).update(assignee_id=assignee_id)
    call.assignee_id = assignee_id


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Answers:
    """What the owner said on the phone: a survey's 1-10 score (with the CSI category and a
    comment when low), or a recall's reason."""

    score: int | None = None
    category: str | None = None
    comment: str = ""
    reason: str | None = None
    improvement: str = ""  # what could be better, asked after a good score
    # the questionnaire's answers (question key -> choice, None: skipped), when it has one;
    # ``score`` is then their weighted overall (bot.surveys.answers)
    questions: tuple[tuple[str, str | None], ...] = ()
    form: Questionnaire | None = None  # the questionnaire they answer


@dataclass
class Recorded:
    call: PhoneCall
    score: Score | None = None
    handover: str = ""  # "ticket:<id>" when a low score opened a complaint


async def _tried_times(call_id: int) -> list[datetime]:
    rows = await PhoneCallAttempt.filter(call_id=call_id).order_by("id")
    return [row.created_at for row in rows]


async def record(call_id: int, outcome: CallOutcome, *, staff: Staff | None, now: datetime,
                 rules: CallRules, answers: Answers | None = None, note: str = "",
                 services: Services | None = None) -> Recorded:
    """Record one attempt of an open call; raises :class:`CallError` when it cannot be."""
    answers = answers or Answers()
    call = await PhoneCall.get_or_none(id=call_id)
    if call is None or call.status != CallStatus.OPEN:
        raise CallError("closed")
    if outcome is CallOutcome.REACHED:
        _check_answers(call.kind, answers)
    tried = await _tried_times(call.id)
    values: dict[str, Any] = {"attempts": call.attempts + 1, "last_outcome": outcome.value}
    if outcome in (CallOutcome.NO_ANSWER, CallOutcome.BUSY):
        if call.attempts + 1 >= rules.max_attempts:
            values.update(status=CallStatus.UNREACHABLE, closed_at=now)
        else:
            values["due_at"] = next_attempt_at(now, [*tried, now], rules)
    else:
        closing = {CallOutcome.REACHED: CallStatus.REACHED, CallOutcome.REFUSED:
                   CallStatus.REFUSED, CallOutcome.WRONG_NUMBER: CallStatus.WRONG_NUMBER}
        values.update(status=closing[outcome], closed_at=now)
    if outcome is CallOutcome.REACHED:
        values["answers"] = {k: v for k, v in (
            ("score", answers.score), ("category", answers.category),
            ("comment", answers.comment.strip()), ("reason", answers.reason),
            ("improvement", answers.improvement.strip())) if v}
    async with in_transaction():
        # conditional on what was read: two agents recording at once record one attempt
        took = await PhoneCall.filter(id=call.id, status=CallStatus.OPEN,
                                      attempts=call.attempts).update(**values)
        if not took:
            raise CallError("closed")
        await PhoneCallAttempt.create(call_id=call.id, staff_id=staff.id if staff else None,
                                      outcome=outcome, note=note.strip()[:2000], created_at=now)
        if outcome is CallOutcome.WRONG_NUMBER:
            await Customer.filter(id=call.customer_id).update(phone_wrong_at=now)
    fresh = await PhoneCall.get(id=call.id)
    result = Recorded(fresh)
    if outcome is CallOutcome.REACHED:
        await _apply_answers(result, answers, now=now, rules=rules, services=services)
    return result


def _check_answers(kind: str, answers: Answers) -> None:
    if kind == RECALL:
        if answers.reason not in recall.REASONS:
            raise CallError("reason")
        return
    if answers.score is None:
        return  # reached, but the owner gave no score: kept as reached without one
    if not 1 <= answers.score <= 10:
        raise CallError("score")
    if answers.category is not None and answers.category not in surveys.CSI_CATEGORIES:
        raise CallError("category")


async def _apply_answers(result: Recorded, answers: Answers, *, now: datetime,
                         rules: CallRules, services: Services | None) -> None:
    call = result.call
    customer = await Customer.get(id=call.customer_id)
    if call.kind == RECALL:
        await recall.answer(call.touchpoint_id, customer.id, str(answers.reason),
                            channel="phone", now=now)
        return
    if answers.score is None:
        return
    result.score = await phone_score(call, customer, answers, now=now, rules=rules)
    if result.score is not None and answers.form is not None:
        tp = await Touchpoint.get(id=call.touchpoint_id)
        for key, choice in answers.questions:  # stored as in Telegram, source "phone"
            await survey_answers.record(tp, answers.form, key, choice, now=now,
                                        source="phone")
    if result.score is None or result.score.handover != "pending":
        return
    if services is None:  # no services (a CLI without them): the stale hand-over takes it
        return
    result.handover = await surveys.hand_over(result.score, customer, now=now,
                                              services=services)


async def phone_score(call: PhoneCall, customer: Customer, answers: Answers, *,
                      now: datetime, rules: CallRules) -> Score | None:
    """The score given on the phone, stored as a survey answer with source "phone" (the
    channel reports count). A survey answered in Telegram meanwhile keeps that answer."""
    assert answers.score is not None
    tp = await Touchpoint.get(id=call.touchpoint_id)
    rates = surveys.rates_of(tp.kind)
    if rates is None or await Score.filter(touchpoint_id=tp.id).exists():
        return None
    visit_id = tp.payload.get("visit_id") if isinstance(tp.payload, dict) else None
    visit = await Visit.get_or_none(id=visit_id) if isinstance(visit_id, int) else None
    vehicle = await Vehicle.get_or_none(id=tp.vehicle_id) if tp.vehicle_id else None
    low = answers.score <= rules.low_threshold
    return await Score.create(
        touchpoint_id=tp.id, customer_id=customer.id, vehicle_id=tp.vehicle_id,
        visit_id=visit.id if visit else None, rates=rates,
        advisor=surveys.advisor_name(visit, vehicle, customer), score=answers.score,
        category=(answers.category or "other") if low else None,
        comment=answers.comment.strip(), source="phone", first_answered_at=now,
        created_at=now, handover="pending" if low else "",
        improvement="" if low else answers.improvement.strip())

