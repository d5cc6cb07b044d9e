"""Complaint tickets (投诉, 003 §2.3): the workflow, the "211" deadlines and escalation.

Domain code: plain values and ``now`` in, database rows out; nothing here knows Telegram.
What people see after a change (the staff topic and its card, the owner's notices) is done
by the *effects* the staff handlers hang on ``services.ticket_effects``: every
change here records a :class:`TicketEvent`, whose effects are owed from then on (its
``effects_done_at`` is empty), and then calls ``effects.on_event(ticket, event)``. Without
effects (a CLI, a unit test) the record is still complete, and a running carebot's staff
side carries out what is owed on its next sweep.

The rules (the 211 deadlines, levels, who may act) are :mod:`bot.ticket_rules`, the
business-hours clock :mod:`bot.business_time`, the report's figures :mod:`bot.ticket_stats`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from bot.business_time import (
    BusinessCalendar,
    add_business_time,
    business_days,
)
from bot.journeys.plans import SERVICE_PRIORITY, TouchpointPlan, write_touchpoints
from bot.owners import find_customer
from bot.schedule import shift_out_of_quiet_hours
from bot.texts import Scripts
from bot.ticket_events import WITHOUT_EFFECTS, TicketEffects
from bot.ticket_events import emit as _emit
from bot.ticket_events import record_event as _event
from bot.ticket_rules import (
    ACTIVE_STATES,
    CATEGORIES,
    CHANNELS,
    EFFECTS_KEY,
    FOLLOWUP_KIND,
    LEVELS,
    MESSAGE_LIMIT,
    SHORTER_LIMITS,
    DueKind,
    EventKind,
    SlaRules,
    can_act,
    format_number,
    is_ticket_staff,
    next_level,
    overdue_reason,
    parse_number,
    rating_outcome,
    running_deadline,
    shorten,
    sla_rules,
)
from bot.ticket_stats import (
    ComplaintStats,
    TicketFacts,
    complaint_stats,
    facts_between,
)
from db.models import (
    Staff,
    Ticket,
    TicketEvent,
    TicketLevel,
    TicketMessage,
    TicketState,
    Vehicle,
    VehicleStatus,
)

if TYPE_CHECKING:
    from bot.services import Services

# What this module offers, with the rules and the report that live in their own modules
# (bot.ticket_rules, bot.ticket_stats, bot.business_time) but that callers reach here, as
# they always have (``tickets.can_act``, ``tickets.ACTIVE_STATES``...).
__all__ = [
    "ACTIVE_STATES", "CATEGORIES", "CHANNELS", "CONTACT_CALLBACK", "EFFECTS_KEY",
    "FOLLOWUP_KIND", "LEVELS", "MESSAGE_LIMIT", "SHORTER_LIMITS", "WITHOUT_EFFECTS",
    "BusinessCalendar", "ComplaintStats", "DueKind", "EventKind", "Outcome", "SlaRules",
    "TicketEffects", "TicketFacts", "active_ticket_of", "add_business_time", "add_note",
    "business_days", "can_act", "check_deadlines", "claim", "complaint_stats", "contact_button",
    "escalate", "facts_between", "find_customer", "format_number", "handling_rated",
    "is_ticket_staff", "may_resolve", "next_level", "open_ticket", "overdue_reason", "parse_number",
    "rating_outcome", "record_owner_message", "record_staff_answer", "resolve",
    "running_deadline", "shorten", "sla_rules", "staff_for",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- workflow


async def _default_vehicle(customer_id: int) -> int | None:
    """The owner's car when they did not say: the most recently delivered active one."""
    vehicle = await Vehicle.filter(customer_id=customer_id, status=VehicleStatus.ACTIVE) \
        .order_by("-delivered_at", "-id").first()
    return vehicle.id if vehicle else None


async def open_ticket(*, customer_id: int, vehicle_id: int | None, channel: str, category: str,
                      description: str, now: datetime, services: Services,
                      score_id: int | None = None, actor_id: int | None = None) -> Ticket:
    """Open a complaint for an owner: from the bot, a low survey score, or staff.

    An unknown category is kept as "other" (logged) rather than losing the complaint. The
    first answer is due ``first_answer`` business time after ``now``.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
    if category not in CATEGORIES:
        log.warning("ticket for customer %s: unknown category %r kept as 'other'",
                    customer_id, category)
        category = "other"
    rules = services.rules.tickets
    if vehicle_id is None:
        vehicle_id = await _default_vehicle(customer_id)
    due = add_business_time(now, rules.first_answer, rules.calendar)
    async with in_transaction():
        ticket = await Ticket.create(
            number=f"new-{secrets.token_hex(5)}", customer_id=customer_id, vehicle_id=vehicle_id,
            channel=channel, category=category, description=description,
            level=TicketLevel.AGENT, state=TicketState.OPEN, score_id=score_id, created_at=now,
            first_answer_due=due, due_at=due, due_kind=DueKind.FIRST_ANSWER,
        )
        ticket.number = format_number(ticket.id)
        await ticket.save(update_fields=["number"])
        event = await _event(ticket, EventKind.OPENED, now, actor_id=actor_id, text=description,
                             reason=f"channel {channel}")
    log.info("ticket %s opened (%s, %s) for customer %s", ticket.number, channel, category,
             customer_id)
    await _emit(services, ticket, event)
    return ticket


class Outcome(StrEnum):
    DONE = "done"
    NOT_STAFF = "not_staff"  # unknown, inactive, or a role that does not handle tickets
    NOT_ALLOWED = "not_allowed"  # below the ticket's level
    NOT_ACTIVE = "not_active"  # resolved or closed
    ALREADY = "already"  # nothing to change
    TOP = "top"  # already at the service manager


async def staff_for(telegram_id: int) -> Staff | None:
    """Staff identity comes only from the Telegram user id an admin registered."""
    return await Staff.get_or_none(telegram_id=telegram_id, active=True)


async def active_ticket_of(customer_id: int) -> Ticket | None:
    """The owner's most recent ticket still being handled (owner messages go there)."""
    return await Ticket.filter(customer_id=customer_id, state__in=ACTIVE_STATES) \
        .order_by("-created_at", "-id").first()


def _recompute_due(ticket: Ticket, now: datetime) -> None:
    due, kind = running_deadline(
        has_handler=ticket.handler_id is not None, first_answered_at=ticket.first_answered_at,
        first_answer_due=ticket.first_answer_due, handler_answer_due=ticket.handler_answer_due,
        now=now,
    )
    ticket.due_at, ticket.due_kind = due, kind


async def claim(ticket_id: int, staff: Staff, *, now: datetime,
                services: Services) -> tuple[Outcome, Ticket | None]:
    """A staff member takes the ticket: they must resolve within a business day."""
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None:
        return Outcome.NOT_ACTIVE, None
    if not is_ticket_staff(staff.role):
        return Outcome.NOT_STAFF, ticket
    if ticket.state not in ACTIVE_STATES:
        return Outcome.NOT_ACTIVE, ticket
    if not can_act(staff.role, ticket.level):
        return Outcome.NOT_ALLOWED, ticket
    if ticket.handler_id == staff.id:
        return Outcome.ALREADY, ticket
    await _claim(ticket, staff, now, services)
    return Outcome.DONE, ticket


async def _claim(ticket: Ticket, staff: Staff, now: datetime, services: Services) -> None:
    rules = services.rules.tickets
    ticket.handler_id = staff.id
    ticket.claimed_at = now
    if ticket.handler_answer_due is None:
        # the business day runs from the first claim at this level: another staff member
        # taking over does not restart it (escalation and reopening clear it)
        ticket.handler_answer_due = add_business_time(now, rules.handler_answer,
                                                      rules.calendar)
    ticket.state = TicketState.ANSWERED if ticket.first_answered_at else TicketState.CLAIMED
    _recompute_due(ticket, now)
    async with in_transaction():  # the change and the effects it owes, together
        await ticket.save(update_fields=["handler_id", "claimed_at", "handler_answer_due",
                                         "state", "due_at", "due_kind", "updated_at"])
        event = await _event(ticket, EventKind.CLAIMED, now, actor_id=staff.id,
                             text=staff.name, reason=f"level {ticket.level}")
    await _emit(services, ticket, event)


async def record_staff_answer(ticket: Ticket, staff: Staff, text: str, *, now: datetime,
                              services: Services, photo_file_id: str = "",
                              source: str | None = None) -> Ticket:
    """A staff answer: recorded with the event it makes in one transaction, and owed to the
    owner until Telegram took it (the staff side sends it, retried, never dropped).

    Someone answering a ticket nobody claimed takes it (when their role allows). ``source``
    names the staff chat's message: its update handled twice answers the owner once.
    """
    if source is not None and await TicketMessage.filter(source=source).exists():
        return ticket
    if ticket.handler_id is None and can_act(staff.role, ticket.level) \
            and ticket.state in ACTIVE_STATES:
        await _claim(ticket, staff, now, services)
    first = ticket.first_answered_at is None
    if first:
        ticket.first_answered_at = now
    if ticket.state in (TicketState.CLAIMED, TicketState.OPEN, TicketState.REOPENED) \
            and ticket.handler_id is not None:
        ticket.state = TicketState.ANSWERED
    if ticket.handler_id is not None and ticket.state in ACTIVE_STATES:
        _recompute_due(ticket, now)
    try:
        async with in_transaction():
            await TicketMessage.create(ticket_id=ticket.id, direction="out", staff_id=staff.id,
                                       text=text, photo_file_id=photo_file_id, created_at=now,
                                       next_try_at=now, source=source,
                                       mirrored_at=now if source is not None else None)
            await ticket.save(update_fields=["first_answered_at", "state", "due_at",
                                             "due_kind", "updated_at"])
            event = await _event(ticket, EventKind.ANSWERED, now, actor_id=staff.id,
                                 text=text, reason="first answer" if first else "")
    except IntegrityError:  # the same staff message, recorded meanwhile by another worker
        return await Ticket.get(id=ticket.id)
    await _emit(services, ticket, event)
    return ticket


async def add_note(ticket: Ticket, staff: Staff, text: str, *, now: datetime,
                   in_topic: bool = False) -> TicketEvent:
    """An internal note: kept on the ticket, never sent to the owner (one written on the
    console is shown in the ticket's topic too)."""
    await TicketMessage.create(ticket_id=ticket.id, direction="note", staff_id=staff.id,
                               text=text, created_at=now, relayed_at=now,
                               mirrored_at=now if in_topic else None)
    return await _event(ticket, EventKind.NOTE, now, actor_id=staff.id, text=text)


async def record_owner_message(ticket: Ticket, *, text: str, now: datetime,
                               photo_file_id: str = "",
                               source: str | None = None) -> TicketMessage:
    """An owner message for the staff topic, queued until relayed (nothing is lost);
    ``source`` (the owner's Telegram message) records it once however often it is handled."""
    if source is not None:
        existing = await TicketMessage.get_or_none(source=source)
        if existing is not None:
            return existing
    try:
        return await TicketMessage.create(ticket_id=ticket.id, direction="in", text=text,
                                          photo_file_id=photo_file_id, created_at=now,
                                          source=source)
    except IntegrityError:  # recorded meanwhile by another worker
        return await TicketMessage.get(source=source)


async def escalate(ticket_id: int, *, now: datetime, services: Services,
                   actor: Staff | None = None, reason: str = "",
                   major: bool = False) -> tuple[Outcome, Ticket | None]:
    """Move the ticket up: one level (Escalate, a missed deadline) or to the manager (Major).

    The new level has ``level_answer`` business time to act (claim or answer).
    """
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None:
        return Outcome.NOT_ACTIVE, None
    if actor is not None and not is_ticket_staff(actor.role):
        return Outcome.NOT_STAFF, ticket
    if ticket.state not in ACTIVE_STATES:
        return Outcome.NOT_ACTIVE, ticket
    target = TicketLevel.MANAGER if major else next_level(ticket.level)
    if target is None or (major and ticket.level == TicketLevel.MANAGER and ticket.major):
        return Outcome.TOP, ticket
    target, skipped = await staffed_level(target)
    await _move_up(ticket, target, now=now, services=services,
                   actor_id=actor.id if actor else None, reason=_with_skipped(reason, skipped),
                   major=major)
    return Outcome.DONE, ticket


# The staff roles that act at each level (admins count as managers, ticket_rules.ROLE_RANK).
_LEVEL_ROLES: dict[TicketLevel, tuple[str, ...]] = {
    TicketLevel.AGENT: ("agent",), TicketLevel.ADVISOR: ("advisor",),
    TicketLevel.SUPERVISOR: ("supervisor",), TicketLevel.MANAGER: ("manager", "admin"),
}


async def staffed_level(target: TicketLevel) -> tuple[TicketLevel, list[TicketLevel]]:
    """The first level from ``target`` up that has someone to act (003 §2.3.3: the next
    level takes charge, so a level nobody holds is passed over), and the levels skipped.
    When no level up to the manager has anyone, the manager level still gets it (its
    escalation is posted to the staff group, where the dealership sees nobody holds it)."""
    skipped: list[TicketLevel] = []
    level: TicketLevel | None = target
    while level is not None:
        if await Staff.filter(active=True, role__in=_LEVEL_ROLES[level]).exists():
            return level, skipped
        skipped.append(level)
        level = next_level(level)
    return TicketLevel.MANAGER, skipped[:-1]


def _with_skipped(reason: str, skipped: list[TicketLevel]) -> str:
    """The escalation's reason, saying which levels had nobody and were passed over."""
    if not skipped:
        return reason
    note = "no staff at " + ", ".join(str(level) for level in skipped) + ", passed over"
    return f"{reason}; {note}" if reason else note


async def _move_up(ticket: Ticket, target: TicketLevel, *, now: datetime, services: Services,
                   actor_id: int | None, reason: str, major: bool = False,
                   kind: EventKind = EventKind.ESCALATED) -> TicketEvent:
    rules = services.rules.tickets
    before = ticket.level
    ticket.level = target
    ticket.major = ticket.major or major
    if kind is EventKind.ESCALATED and ticket.handler_id is not None:
        ticket.previous_handler_id = ticket.handler_id  # stays on it, may still resolve
    ticket.handler_id = None
    ticket.handler_answer_due = None  # a new level: its handler gets a fresh business day
    if kind is EventKind.REOPENED:
        ticket.state = TicketState.REOPENED
        ticket.reopen_count += 1
    elif ticket.state != TicketState.REOPENED:
        ticket.state = TicketState.OPEN
    ticket.due_at = add_business_time(now, rules.level_answer, rules.calendar)
    ticket.due_kind = DueKind.LEVEL
    async with in_transaction():
        await ticket.save(update_fields=["level", "major", "handler_id", "previous_handler_id",
                                         "handler_answer_due", "state", "reopen_count",
                                         "due_at", "due_kind", "updated_at"])
        event = await _event(ticket, kind, now, actor_id=actor_id,
                             text=f"{before} -> {target}" + (" (major)" if major else ""),
                             reason=reason)
    log.info("ticket %s %s %s -> %s: %s", ticket.number, kind, before, target, reason)
    await _emit(services, ticket, event)
    return event


def may_resolve(staff: Staff, ticket: Ticket) -> bool:
    """A role at or above the ticket's level, or the one who handled it before it was
    escalated: they stay on the ticket (003 §2.3.3)."""
    return can_act(staff.role, ticket.level) or (
        ticket.previous_handler_id is not None and ticket.previous_handler_id == staff.id)


async def resolve(ticket_id: int, staff: Staff, *, resolution: str, improvement: str,
                  now: datetime, services: Services) -> tuple[Outcome, Ticket | None]:
    """The handler resolves: the owner is told, and asked 1 day later to rate the handling."""
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None:
        return Outcome.NOT_ACTIVE, None
    if not is_ticket_staff(staff.role):
        return Outcome.NOT_STAFF, ticket
    if ticket.state not in ACTIVE_STATES:
        return Outcome.NOT_ACTIVE, ticket
    if not may_resolve(staff, ticket):
        return Outcome.NOT_ALLOWED, ticket
    rules = services.rules.tickets
    if ticket.handler_id is None:
        ticket.handler_id = staff.id
        ticket.claimed_at = ticket.claimed_at or now
    ticket.state = TicketState.RESOLVED
    ticket.resolved_at = now
    ticket.handler_answered_at = ticket.handler_answered_at or now
    ticket.resolution = resolution
    ticket.improvement = improvement
    ticket.due_at, ticket.due_kind = None, ""
    async with in_transaction():  # resolved, its rating asked, its effects owed: together
        await ticket.save(update_fields=["handler_id", "claimed_at", "state", "resolved_at",
                                         "handler_answered_at", "resolution", "improvement",
                                         "due_at", "due_kind", "updated_at"])
        due = shift_out_of_quiet_hours(now + rules.followup_after, rules.tz, rules.quiet)
        await write_touchpoints([TouchpointPlan(
            customer_id=ticket.customer_id, vehicle_id=ticket.vehicle_id, kind=FOLLOWUP_KIND,
            occasion_key=f"{ticket.number}:r{ticket.reopen_count}", due_at=due,
            expires_at=due + timedelta(days=7), priority=SERVICE_PRIORITY,
            payload={"ticket_id": ticket.id, "number": ticket.number,
                     "category": ticket.category, "resolution": resolution[:500]},
        )])
        event = await _event(ticket, EventKind.RESOLVED, now, actor_id=staff.id,
                             text=resolution, reason=f"improvement: {improvement}")
    await _emit(services, ticket, event)
    return Outcome.DONE, ticket


async def handling_rated(ticket_id: int, score: int, *, now: datetime,
                         services: Services) -> None:
    """The owner rated the handling 1-10: at or below the threshold the ticket reopens one
    level higher, above it the ticket closes. A rating of a ticket not waiting for one (rated
    already, reopened) is recorded and changes nothing."""
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None:
        log.warning("handling rated for unknown ticket %s", ticket_id)
        return
    if not 1 <= score <= 10:
        raise ValueError(f"a handling score is 1-10, not {score}")
    if ticket.state != TicketState.RESOLVED:
        await _event(ticket, EventKind.RATED, now, text=str(score),
                     reason=f"ignored: ticket is {ticket.state}")
        return
    rules = services.rules.tickets
    ticket.handling_score = score
    await ticket.save(update_fields=["handling_score", "updated_at"])
    await _event(ticket, EventKind.RATED, now, text=str(score))
    reopen, target = rating_outcome(score, rules.threshold, ticket.level)
    if reopen:
        await _move_up(ticket, target, now=now, services=services, actor_id=None,
                       reason=f"owner rated the handling {score}/10 "
                              f"(at or below {rules.threshold})",
                       kind=EventKind.REOPENED)
        return
    ticket.state = TicketState.CLOSED
    ticket.closed_at = now
    async with in_transaction():
        await ticket.save(update_fields=["state", "closed_at", "updated_at"])
        event = await _event(ticket, EventKind.CLOSED, now, text=str(score),
                             reason=f"owner rated the handling {score}/10")
    await _emit(services, ticket, event)


async def check_deadlines(now: datetime, services: Services) -> list[TicketEvent]:
    """Escalate every ticket whose running deadline has passed, one level each.

    At the manager there is nobody above: the breach is recorded and the managers are
    reminded, with a fresh ``level_answer`` to act. Safe with several instances: a ticket is
    moved only if its deadline is still the one read.
    """
    rules = services.rules.tickets
    events: list[TicketEvent] = []
    overdue = await Ticket.filter(state__in=ACTIVE_STATES, due_at__lte=now) \
        .order_by("due_at", "id").limit(500)
    for ticket in overdue:
        assert ticket.due_at is not None
        reason = overdue_reason(ticket.due_kind, ticket.due_at, ticket.level, rules.tz)
        taken = await Ticket.filter(id=ticket.id, due_at=ticket.due_at).update(
            breaches=ticket.breaches + 1)
        if not taken:
            continue
        ticket.breaches += 1
        try:
            target = next_level(ticket.level)
            if target is None:
                ticket.due_at = add_business_time(now, rules.level_answer, rules.calendar)
                ticket.due_kind = DueKind.LEVEL
                async with in_transaction():
                    await ticket.save(update_fields=["due_at", "due_kind", "updated_at"])
                    event = await _event(ticket, EventKind.BREACH, now, reason=reason,
                                         text=str(ticket.level))
                await _emit(services, ticket, event)
            else:
                target, skipped = await staffed_level(target)
                event = await _move_up(ticket, target, now=now, services=services,
                                       actor_id=None, reason=_with_skipped(reason, skipped))
            events.append(event)
        except Exception:
            log.exception("ticket %s: deadline escalation failed", ticket.number)
    return events


# --------------------------------------------------------------------------- owner entry


CONTACT_CALLBACK = "cp:start"


def contact_button(lang: str, scripts: Scripts) -> tuple[str, str]:
    """The "Contact us / 联系客服" inline button as (label, callback_data): /help and every
    follow-up carry it; pressing it starts the complaint dialog."""
    return scripts.label("contact_us_button", lang), CONTACT_CALLBACK
