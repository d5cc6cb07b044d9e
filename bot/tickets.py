"""Complaint tickets (投诉, 003 §2.3): the workflow, the "211" deadlines and escalation.

Domain code: plain values and ``now`` in, database rows out; nothing here knows Telegram.
What people see after a change (the staff topic and its card, the owner's notices) is done
by the *effects* the staff handlers hang on ``services.extensions["tickets"]``: every
change here records a :class:`TicketEvent`, whose effects are owed from then on (its
``effects_done_at`` is empty), and then calls ``effects.on_event(ticket, event)``. Without
effects (a CLI, a unit test) the record is still complete, and a running carebot's staff
side carries out what is owed on its next sweep.

The 211 rule: the owner gets a first answer within 2 hours of opening; the handler resolves
within 1 day of claiming; 1 day after Resolve the owner is asked to rate the handling
(a ``ticket_followup`` touchpoint). A missed deadline escalates one level by itself, and
the new level has 2 hours to act. All clocks count on a business-hours calendar (or plain
hours): :func:`add_business_time`.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from statistics import median
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from bot.campaigns.journeys import SERVICE_PRIORITY, TouchpointPlan, write_touchpoints
from bot.config import ConfigError, QuietHours, Settings
from bot.schedule import shift_out_of_quiet_hours
from bot.texts import Scripts
from db.models import (
    Customer,
    Staff,
    StaffRole,
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

log = logging.getLogger(__name__)

CATEGORIES = ("service_process", "repair_quality", "charges", "timeliness", "environment",
              "other")
CHANNELS = ("bot", "survey", "staff")
LEVELS: tuple[TicketLevel, ...] = (TicketLevel.AGENT, TicketLevel.ADVISOR,
                                   TicketLevel.SUPERVISOR, TicketLevel.MANAGER)
ACTIVE_STATES = (TicketState.OPEN, TicketState.CLAIMED, TicketState.ANSWERED,
                 TicketState.REOPENED)
FOLLOWUP_KIND = "ticket_followup"
EFFECTS_KEY = "tickets"

# How far up the chain each staff role may act (claim, resolve). Marketing may not act.
ROLE_RANK: dict[str, int] = {
    StaffRole.AGENT: 0, StaffRole.ADVISOR: 1, StaffRole.SUPERVISOR: 2, StaffRole.MANAGER: 3,
    StaffRole.ADMIN: 3,
}
NUMBER_RE = re.compile(r"\bT-(\d{1,9})\b")


class EventKind(StrEnum):
    OPENED = "opened"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    ESCALATED = "escalated"
    BREACH = "breach"  # a deadline missed at the top of the chain: nobody left to escalate to
    RESOLVED = "resolved"
    RATED = "rated"
    REOPENED = "reopened"
    CLOSED = "closed"
    NOTE = "note"
    UNDELIVERED = "undelivered"  # a staff-chat or owner notice Telegram refused (429, error)


class DueKind(StrEnum):
    FIRST_ANSWER = "first_answer"
    HANDLER_ANSWER = "handler_answer"
    LEVEL = "level"


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class BusinessCalendar:
    """Local opening hours on some ISO weekdays; deadline clocks run only inside them."""

    tz: ZoneInfo
    opens: time
    closes: time
    weekdays: frozenset[int] = frozenset(range(1, 8))

    @property
    def day_length(self) -> timedelta:
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_business_hours(value: str) -> tuple[time, time] | None:
    """``"08:30-18:00"`` -> (08:30, 18:00); ``"off"`` (plain hours) -> None."""
    value = value.strip()
    if value.lower() in ("", "off", "none", "24h"):
        return None
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError("use HH:MM-HH:MM, for example 08:30-18:00, or 'off' for plain hours")
    bounds: list[time] = []
    for part in parts:
        m = _HHMM.match(part.strip())
        if not m:
            raise ValueError(f"{part.strip()!r} is not a time of day; use HH:MM-HH:MM")
        bounds.append(time(int(m.group(1)), int(m.group(2))))
    if not bounds[0] < bounds[1]:
        raise ValueError("business hours must open before they close on the same day")
    return bounds[0], bounds[1]


def parse_business_days(value: str) -> frozenset[int]:
    """ISO weekdays: ``"1-7"`` (every day), ``"1-5"``, ``"1,2,3,4,5,6"``."""
    days: set[int] = set()
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"{part!r}: use weekday numbers 1 (Monday) to 7, e.g. 1-5 or 1,3,5")
        a, b = int(lo), int(hi or lo)
        if not (1 <= a <= 7 and 1 <= b <= 7 and a <= b):
            raise ValueError(f"{part!r}: weekdays run from 1 (Monday) to 7 (Sunday)")
        days.update(range(a, b + 1))
    if not days:
        raise ValueError("at least one business day is needed")
    return frozenset(days)


def _at_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(timezone.utc)


def add_business_time(start: datetime, duration: timedelta,
                      calendar: BusinessCalendar | None) -> datetime:
    """The instant ``duration`` of business time after ``start`` (UTC, aware).

    Plain hours when ``calendar`` is None. Time outside business hours does not count: a
    complaint at 17:30 with 2 hours to answer (08:30-18:00) is due at 10:00 next morning.
    """
    start = start.astimezone(timezone.utc)
    if calendar is None or duration <= timedelta(0):
        return start + max(duration, timedelta(0))
    remaining = duration
    cursor = start
    for _ in range(4000):  # a few years of days: far beyond any deadline
        day = cursor.astimezone(calendar.tz).date()
        if day.isoweekday() in calendar.weekdays:
            open_at = _at_local(day, calendar.opens, calendar.tz)
            close_at = _at_local(day, calendar.closes, calendar.tz)
            cursor = max(cursor, open_at)
            if cursor < close_at:
                available = close_at - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        cursor = _at_local(day + timedelta(days=1), time(0), calendar.tz)
    raise ValueError("business calendar has no open hours in reach")


def business_days(days: float, calendar: BusinessCalendar | None) -> timedelta:
    """``days`` business days as business time: whole business days, or 24 h in plain hours."""
    return (calendar.day_length if calendar else timedelta(hours=24)) * days


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class SlaRules:
    """The deadlines and thresholds, taken from Settings once."""

    calendar: BusinessCalendar | None
    tz: ZoneInfo
    quiet: QuietHours | None
    first_answer: timedelta = timedelta(hours=2)
    handler_answer: timedelta = timedelta(hours=9, minutes=30)  # 1 business day
    level_answer: timedelta = timedelta(hours=2)
    followup_after: timedelta = timedelta(days=1)
    threshold: int = 6


def sla_rules(settings: Settings) -> SlaRules:
    """The rules from Settings; a wrong calendar names its variable (start-up stops)."""
    try:
        hours = parse_business_hours(settings.ticket_business_hours)
    except ValueError as exc:
        raise ConfigError(f"CAREBOT_TICKET_BUSINESS_HOURS: {exc}") from None
    try:
        weekdays = parse_business_days(settings.ticket_business_days)
    except ValueError as exc:
        raise ConfigError(f"CAREBOT_TICKET_BUSINESS_DAYS: {exc}") from None
    calendar = BusinessCalendar(settings.tz, hours[0], hours[1], weekdays) if hours else None
    return SlaRules(
        calendar=calendar,
        tz=settings.tz,
        quiet=settings.quiet,
        first_answer=timedelta(hours=settings.ticket_first_answer_hours),
        handler_answer=business_days(settings.ticket_handler_answer_days, calendar),
        level_answer=timedelta(hours=settings.ticket_level_answer_hours),
        followup_after=timedelta(days=settings.ticket_followup_days),
        threshold=settings.handling_score_threshold,
    )


def next_level(level: TicketLevel | str) -> TicketLevel | None:
    """One step up the chain; None above the service manager."""
    index = LEVELS.index(TicketLevel(level))
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def level_rank(level: TicketLevel | str) -> int:
    return LEVELS.index(TicketLevel(level))


def can_act(role: StaffRole | str, level: TicketLevel | str) -> bool:
    """Claim and resolve need a role at or above the ticket's level (admins count as managers)."""
    rank = ROLE_RANK.get(StaffRole(role))
    return rank is not None and rank >= level_rank(level)


def is_ticket_staff(role: StaffRole | str) -> bool:
    return StaffRole(role) in ROLE_RANK


def rating_outcome(score: int, threshold: int,
                   level: TicketLevel | str) -> tuple[bool, TicketLevel]:
    """The owner's 1-10 rating of the handling: (reopen?, level afterwards).

    At or below the threshold the ticket reopens one level higher (the manager stays the
    manager); above it the ticket closes at its level.
    """
    if score <= threshold:
        return True, next_level(level) or TicketLevel.MANAGER
    return False, TicketLevel(level)


def running_deadline(*, has_handler: bool, first_answered_at: datetime | None,
                     first_answer_due: datetime, handler_answer_due: datetime | None,
                     now: datetime) -> tuple[datetime | None, str]:
    """The deadline that runs for a claimed ticket: the handler's (resolve within a business
    day of claiming), or the first answer if it is still owed and not yet missed."""
    if not has_handler:
        return None, ""
    candidates: list[tuple[datetime, str]] = []
    if handler_answer_due is not None:
        candidates.append((handler_answer_due, DueKind.HANDLER_ANSWER))
    if first_answered_at is None and first_answer_due > now:
        candidates.append((first_answer_due, DueKind.FIRST_ANSWER))
    if not candidates:
        return None, ""
    return min(candidates)


def overdue_reason(due_kind: str, due_at: datetime, level: str, tz: ZoneInfo) -> str:
    """Why a ticket escalated by itself, for the record."""
    when = due_at.astimezone(tz).strftime("%m-%d %H:%M")
    if due_kind == DueKind.FIRST_ANSWER:
        return f"no first answer to the owner by {when}"
    if due_kind == DueKind.HANDLER_ANSWER:
        return f"handler did not resolve by {when}"
    return f"{level} level did not act by {when}"


SHOWN_TEXT_LIMIT = 1500  # description, resolution, improvement on cards and owner notices
MESSAGE_LIMIT = 4096  # Telegram's limit for one message
SHORTER_LIMITS = (SHOWN_TEXT_LIMIT, 800, 400, 150)  # tried in turn until a message fits


def shorten(text: str, limit: int = SHOWN_TEXT_LIMIT) -> str:
    """Plain text cut to ``limit`` characters with "…" (before escaping: never an entity)."""
    if len(text) <= limit:
        return text
    return text[:max(limit - 1, 0)].rstrip() + "…"


def format_number(ticket_id: int) -> str:
    return f"T-{ticket_id:04d}"


def parse_number(text: str) -> int | None:
    """The ticket id in "T-0042" (or "t-42"), None if there is none."""
    m = NUMBER_RE.search(text.upper())
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- effects


class TicketEffects(Protocol):
    """What happens outside the database after a change (the staff side registers it).

    The event row says the effects are owed (``effects_done_at`` empty) from the moment the
    change is recorded; ``on_event`` carries them out now when it may, and the staff side's
    job carries out whatever is still owed (another instance's, or after a crash)."""

    async def on_event(self, ticket: Ticket, event: TicketEvent) -> None: ...


async def _emit(services: Services, ticket: Ticket, event: TicketEvent) -> None:
    effects: TicketEffects | None = services.extensions.get(EFFECTS_KEY)
    if effects is None:
        return  # owed: a running carebot's staff side carries them out
    try:
        await effects.on_event(ticket, event)
    except Exception:  # noqa: BLE001 - the event is recorded and its effects still owed
        log.exception("ticket %s: effects of %s failed", ticket.number, event.kind)


# Events that change nothing outside the database: no effects are owed for them.
WITHOUT_EFFECTS = frozenset({EventKind.NOTE, EventKind.RATED, EventKind.UNDELIVERED})


async def _event(ticket: Ticket, kind: EventKind, now: datetime, *, actor_id: int | None = None,
                 text: str = "", reason: str = "") -> TicketEvent:
    """Record what happened; its effects are owed (a row) until the staff side did them."""
    return await TicketEvent.create(
        ticket_id=ticket.id, kind=kind, actor_id=actor_id, text=text, reason=reason[:200],
        created_at=now, effects_done_at=now if kind in WITHOUT_EFFECTS else None)


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
    rules = sla_rules(services.settings)
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
    rules = sla_rules(services.settings)
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
    await _move_up(ticket, target, now=now, services=services,
                   actor_id=actor.id if actor else None, reason=reason, major=major)
    return Outcome.DONE, ticket


async def _move_up(ticket: Ticket, target: TicketLevel, *, now: datetime, services: Services,
                   actor_id: int | None, reason: str, major: bool = False,
                   kind: EventKind = EventKind.ESCALATED) -> TicketEvent:
    rules = sla_rules(services.settings)
    before = ticket.level
    ticket.level = target
    ticket.major = ticket.major or major
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
        await ticket.save(update_fields=["level", "major", "handler_id", "handler_answer_due",
                                         "state", "reopen_count", "due_at", "due_kind",
                                         "updated_at"])
        event = await _event(ticket, kind, now, actor_id=actor_id,
                             text=f"{before} -> {target}" + (" (major)" if major else ""),
                             reason=reason)
    log.info("ticket %s %s %s -> %s: %s", ticket.number, kind, before, target, reason)
    await _emit(services, ticket, event)
    return event


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
    if not can_act(staff.role, ticket.level):
        return Outcome.NOT_ALLOWED, ticket
    rules = sla_rules(services.settings)
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
    rules = sla_rules(services.settings)
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
    rules = sla_rules(services.settings)
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
                event = await _move_up(ticket, target, now=now, services=services,
                                       actor_id=None, reason=reason)
            events.append(event)
        except Exception:  # noqa: BLE001 - one broken ticket must not stop the others
            log.exception("ticket %s: deadline escalation failed", ticket.number)
    return events


# --------------------------------------------------------------------------- finding owners


async def find_customer(query: str) -> tuple[Customer | None, Vehicle | None]:
    """An owner by phone, plate or VIN, as staff type them (``/ticket <phone|plate|VIN>``)."""
    from bot.owners import phone_to_e164

    text = query.strip()
    compact = re.sub(r"[\s·.-]", "", text).upper()
    if len(compact) == 17 and compact.isalnum():
        vehicle = await Vehicle.get_or_none(vin=compact)
        if vehicle is not None:
            return await Customer.get(id=vehicle.customer_id), vehicle
    vehicle = await Vehicle.filter(plate__iexact=compact).order_by("-id").first()
    if vehicle is None and text:
        vehicle = await Vehicle.filter(plate__iexact=text).order_by("-id").first()
    if vehicle is not None:
        return await Customer.get(id=vehicle.customer_id), vehicle
    if re.fullmatch(r"\+?[\d\s()-]{6,20}", text):
        e164 = phone_to_e164(text)
        if e164:
            customer = await Customer.get_or_none(phone=e164)
            if customer is not None:
                return customer, None
    return None, None


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class TicketFacts:
    """What the complaints report needs of one ticket (plain values, testable on tables)."""

    category: str
    level: str
    created_at: datetime
    first_answered_at: datetime | None
    resolved_at: datetime | None
    breaches: int
    reopen_count: int
    state: str


@dataclass
class ComplaintStats:
    total: int = 0
    by_category: dict[str, int] | None = None
    by_level: dict[str, int] | None = None
    median_first_answer: timedelta | None = None
    median_resolution: timedelta | None = None
    breaches: int = 0
    tickets_breached: int = 0
    reopened: int = 0
    closed: int = 0

    @property
    def reopen_rate(self) -> float | None:
        """Share of the month's tickets the owner reopened at least once."""
        return self.reopened / self.total if self.total else None


def _median(values: Iterable[timedelta]) -> timedelta | None:
    seconds = [v.total_seconds() for v in values]
    return timedelta(seconds=median(seconds)) if seconds else None


def complaint_stats(facts: list[TicketFacts]) -> ComplaintStats:
    """Counts by category and level, median times, deadline breaches, reopen rate."""
    by_category = {c: 0 for c in CATEGORIES}
    by_level = {str(level): 0 for level in LEVELS}
    for f in facts:
        by_category[f.category] = by_category.get(f.category, 0) + 1
        by_level[str(f.level)] = by_level.get(str(f.level), 0) + 1
    return ComplaintStats(
        total=len(facts),
        by_category=by_category,
        by_level=by_level,
        median_first_answer=_median(f.first_answered_at - f.created_at for f in facts
                                    if f.first_answered_at is not None),
        median_resolution=_median(f.resolved_at - f.created_at for f in facts
                                  if f.resolved_at is not None),
        breaches=sum(f.breaches for f in facts),
        tickets_breached=sum(1 for f in facts if f.breaches),
        reopened=sum(1 for f in facts if f.reopen_count),
        closed=sum(1 for f in facts if f.state == TicketState.CLOSED),
    )


async def facts_between(start: datetime, end: datetime) -> list[TicketFacts]:
    """Tickets opened in [start, end), as report facts (one query)."""
    rows: list[dict[str, Any]] = await Ticket.filter(
        created_at__gte=start, created_at__lt=end
    ).values("category", "level", "created_at", "first_answered_at", "resolved_at",
             "breaches", "reopen_count", "state")
    return [TicketFacts(**row) for row in rows]


# --------------------------------------------------------------------------- owner entry


CONTACT_CALLBACK = "cp:start"


def contact_button(lang: str, scripts: Scripts) -> tuple[str, str]:
    """The "Contact us / 联系客服" inline button as (label, callback_data): /help and every
    follow-up carry it; pressing it starts the complaint dialog."""
    return scripts.label("contact_us_button", lang), CONTACT_CALLBACK
