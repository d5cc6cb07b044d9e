"""Conversations: what an owner writes outside a running dialogue, until a person dealt with it.

Anything an owner sends that no dialogue takes (a question, a photo of a warning light, a
voice note, an answer to the insurance reminder) opens a conversation, or joins their open
one. What it answers decides its kind (a reply to the insurance reminder is an insurance
lead...) and the kind decides who gets it (``CAREBOT_ROUTE_<KIND>``). Every message it owes
is a row here first: an owner's message waits to be shown to staff, a staff answer waits to
reach the owner, a change waits to be shown on the conversation's card; the staff side
(:mod:`bot.handlers.threads`) sends them. The console and the staff group's topic call the
same functions, so each shows what the other did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from bot import tickets
from bot.business_time import add_business_time
from bot.config import Settings
from bot.ticket_rules import SlaRules
from db.models import (
    Customer,
    Direction,
    MessageLog,
    Staff,
    StaffRole,
    Thread,
    ThreadKind,
    ThreadMessage,
    ThreadState,
    Ticket,
    Touchpoint,
    Vehicle,
    VehicleStatus,
)

log = logging.getLogger(__name__)

#: what a reply to a touchpoint of this kind is; anything else is an inquiry
REPLY_KINDS: dict[str, ThreadKind] = {
    "insurance_expiry": ThreadKind.INSURANCE_LEAD,
    "service_due": ThreadKind.BOOKING_REQUEST,
    "first_service_reminder": ThreadKind.BOOKING_REQUEST,
    "repair_reminder": ThreadKind.BOOKING_REQUEST,
    "campaign": ThreadKind.CAMPAIGN_LEAD,
}
#: how a lead may end (the console offers these by kind; 续保率 counts insurance outcomes)
OUTCOMES: dict[ThreadKind, tuple[str, ...]] = {
    ThreadKind.INQUIRY: ("answered",),
    ThreadKind.INSURANCE_LEAD: ("renewed_here", "renewed_elsewhere", "not_renewing"),
    ThreadKind.BOOKING_REQUEST: ("booked", "not_booked"),
    ThreadKind.CAMPAIGN_LEAD: ("won", "lost"),
}
MEDIA_KINDS = ("photo", "voice", "audio", "video", "video_note", "document", "sticker",
               "location")


class ThreadError(Exception):
    """A conversation action that cannot be done, with the catalogue key that says why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Incoming:
    """One owner message, free of Telegram types."""

    text: str
    media_kind: str = ""
    media: str = ""  # Telegram's file id, or "lat,lon" for a location
    telegram_message_id: int | None = None
    reply_to: int | None = None  # the bot message it replies to (Telegram's reply)
    source: str | None = None  # "chat:message": the same message handled twice is kept once


def kind_of_reply(touchpoint_kind: str | None) -> ThreadKind:
    return REPLY_KINDS.get(touchpoint_kind or "", ThreadKind.INQUIRY)


def first_answer_hours(kind: ThreadKind, settings: Settings) -> float:
    """Business hours to the first answer: the kind's own setting, else the common one."""
    own: float | None = getattr(settings, f"first_answer_hours_{kind.value}")
    return own if own is not None else settings.conversation_first_answer_hours


def route_setting(kind: ThreadKind, settings: Settings) -> str:
    value: str = getattr(settings, f"route_{kind.value}")
    return value.strip() or "advisor"


async def route(kind: ThreadKind, customer: Customer,
                settings: Settings) -> tuple[Staff | None, str]:
    """Who gets a new conversation: (the person, the role whose queue shows it)."""
    target = route_setting(kind, settings)
    if target == "advisor":
        advisor = await Staff.filter(name=customer.advisor, active=True).first() \
            if customer.advisor else None
        return advisor, StaffRole.AGENT.value
    if target in StaffRole.__members__.values():
        return None, target
    person = await Staff.get_or_none(login=target, active=True)
    if person is None:
        log.warning("CAREBOT_ROUTE_%s names %r, no active staff login: to the agents",
                    kind.value.upper(), target)
        return None, StaffRole.AGENT.value
    return person, StaffRole.AGENT.value


async def answered_touchpoint(customer: Customer, incoming: Incoming, *, now: datetime,
                              window: timedelta) -> Touchpoint | None:
    """The touchpoint or campaign message this message answers: the one it replies to in
    Telegram, else the latest sent within ``window`` that no conversation took yet."""
    if incoming.reply_to is not None and customer.telegram_chat_id is not None:
        replied = await MessageLog.filter(
            chat_id=customer.telegram_chat_id, telegram_message_id=incoming.reply_to,
            direction=Direction.OUT, touchpoint_id__isnull=False).first()
        if replied is not None:
            return await Touchpoint.get_or_none(id=replied.touchpoint_id)
    if window <= timedelta(0):
        return None
    recent = await MessageLog.filter(
        customer_id=customer.id, direction=Direction.OUT, touchpoint_id__isnull=False,
        created_at__gte=now - window).order_by("-created_at", "-id").first()
    if recent is None or await Thread.filter(touchpoint_id=recent.touchpoint_id).exists():
        return None
    return await Touchpoint.get_or_none(id=recent.touchpoint_id)


async def open_thread_of(customer_id: int) -> Thread | None:
    return await Thread.filter(customer_id=customer_id, state=ThreadState.OPEN) \
        .order_by("-id").first()


async def receive(customer: Customer, incoming: Incoming, *, now: datetime,
                  settings: Settings, sla: SlaRules) -> tuple[Thread, bool]:
    """Keep an owner's message in their open conversation, or open one; (it, opened now).

    A message already kept (its update handled twice) is not kept again."""
    if incoming.source is not None:
        seen = await ThreadMessage.get_or_none(source=incoming.source)
        if seen is not None:
            return await Thread.get(id=seen.thread_id), False
    thread = await open_thread_of(customer.id)
    opened = thread is None
    answered = await answered_touchpoint(
        customer, incoming, now=now, window=timedelta(hours=settings.reply_window_hours))
    try:
        async with in_transaction():
            if thread is None:
                thread = await _open(customer, answered, now, settings, sla)
            elif answered is not None and thread.kind == ThreadKind.INQUIRY \
                    and kind_of_reply(answered.kind) != ThreadKind.INQUIRY:
                thread.kind, thread.touchpoint_id = kind_of_reply(answered.kind), answered.id
            thread.last_in_at = thread.updated_at = now
            thread.version += 1
            await thread.save()
            await ThreadMessage.create(
                thread_id=thread.id, direction="in", text=incoming.text,
                media_kind=incoming.media_kind, media=incoming.media,
                telegram_message_id=incoming.telegram_message_id, source=incoming.source,
                created_at=now)
    except IntegrityError:  # the same message, kept meanwhile by another worker
        seen = await ThreadMessage.get(source=incoming.source)
        return await Thread.get(id=seen.thread_id), False
    return thread, opened


async def _open(customer: Customer, answered: Touchpoint | None, now: datetime,
                settings: Settings, rules: SlaRules) -> Thread:
    kind = kind_of_reply(answered.kind if answered else None)
    assignee, queue = await route(kind, customer, settings)
    due = add_business_time(now, timedelta(hours=first_answer_hours(kind, settings)),
                            rules.calendar)
    vehicle_id = answered.vehicle_id if answered is not None else None
    if vehicle_id is None:
        car = await Vehicle.filter(customer_id=customer.id, status=VehicleStatus.ACTIVE) \
            .order_by("-delivered_at", "-id").first()
        vehicle_id = car.id if car else None
    thread = await Thread.create(
        customer_id=customer.id, vehicle_id=vehicle_id, kind=kind, state=ThreadState.OPEN,
        assignee_id=assignee.id if assignee else None, queue=queue,
        touchpoint_id=answered.id if answered else None, created_at=now, updated_at=now,
        first_answer_due=due)
    log.info("conversation %s opened (%s) for customer %s, %s", thread.id, kind.value,
             customer.id, f"to staff {assignee.id}" if assignee else f"to the {queue}s")
    return thread


async def answer(thread: Thread, staff: Staff, text: str, *, now: datetime,
                 media_kind: str = "", media: str = "", telegram_message_id: int | None = None,
                 source: str | None = None, upload: bytes | None = None
                 ) -> ThreadMessage | None:
    """A staff answer, owed to the owner until Telegram took it. Written in the topic
    (``source`` given) it is there already; from the console it is mirrored there too.
    Answering takes an unassigned conversation; ``upload``: a photo's bytes (from the
    console), kept with the answer until Telegram took them. None when it was kept already."""
    if source is not None and await ThreadMessage.filter(source=source).exists():
        return None
    if thread.state != ThreadState.OPEN:
        raise ThreadError("threads.refused.done")
    try:
        async with in_transaction():
            message = await ThreadMessage.create(
                thread_id=thread.id, direction="out", staff_id=staff.id, text=text,
                media_kind="photo" if upload else media_kind, media=media, upload=upload,
                telegram_message_id=telegram_message_id, source=source, created_at=now,
                next_try_at=now,
                mirrored_at=now if source is not None else None)
            if thread.assignee_id is None:
                thread.assignee_id = staff.id
            if thread.first_answered_at is None:
                thread.first_answered_at = now
            thread.last_out_at = thread.updated_at = now
            thread.version += 1
            await thread.save()
    except IntegrityError:
        return None
    return message


async def note(thread: Thread, staff: Staff, text: str, *, now: datetime,
               source: str | None = None) -> ThreadMessage | None:
    """An internal note: kept, never sent to the owner (mirrored to the topic from the
    console)."""
    if source is not None and await ThreadMessage.filter(source=source).exists():
        return None
    try:
        return await ThreadMessage.create(
            thread_id=thread.id, direction="note", staff_id=staff.id, text=text,
            source=source, created_at=now, relayed_at=now,
            mirrored_at=now if source is not None else None)
    except IntegrityError:
        return None


async def assign(thread: Thread, to: Staff | None, *, now: datetime) -> Thread:
    """Give the conversation to someone (None: back to the queue)."""
    if thread.state != ThreadState.OPEN:
        raise ThreadError("threads.refused.done")
    thread.assignee_id = to.id if to else None
    thread.reminded_at = None
    thread.updated_at = now
    thread.version += 1
    await thread.save(update_fields=["assignee_id", "reminded_at", "updated_at", "version"])
    return thread


async def mark_done(thread: Thread, staff: Staff, *, now: datetime, outcome: str = "",
                    premium: Decimal | None = None, outcome_note: str = "") -> Thread:
    """Done: nothing more is owed to the owner here (their next message opens a new one)."""
    if thread.state != ThreadState.OPEN:
        raise ThreadError("threads.refused.done")
    allowed = OUTCOMES[ThreadKind(thread.kind)]
    if outcome and outcome not in allowed:
        raise ThreadError("threads.refused.outcome")
    thread.state = ThreadState.DONE
    thread.done_at = thread.updated_at = now
    thread.done_by_id = staff.id
    thread.outcome = outcome or ("answered" if thread.kind == ThreadKind.INQUIRY else "")
    thread.premium = premium
    thread.outcome_note = outcome_note
    thread.version += 1
    await thread.save()
    return thread


async def reopen(thread: Thread, *, now: datetime) -> Thread:
    thread.state = ThreadState.OPEN
    thread.done_at = None
    thread.updated_at = now
    thread.version += 1
    await thread.save(update_fields=["state", "done_at", "updated_at", "version"])
    return thread


def transcript(messages: list[ThreadMessage]) -> str:
    """The owner's words, for a ticket opened from the conversation."""
    lines = [m.text or f"[{m.media_kind}]" for m in messages if m.direction == "in"]
    return "\n".join(line for line in lines if line) or "-"


async def to_ticket(thread: Thread, staff: Staff, *, now: datetime, services: object,
                    category: str = "other") -> Ticket:
    """Turn the conversation into a complaint ticket: the owner's words are its
    description, the whole chat stays on the owner's file, the 211 rules run from now."""
    if thread.state != ThreadState.OPEN:
        raise ThreadError("threads.refused.done")
    messages = await ThreadMessage.filter(thread_id=thread.id).order_by("id")
    ticket = await tickets.open_ticket(
        customer_id=thread.customer_id, vehicle_id=thread.vehicle_id, channel="staff",
        category=category, description=transcript(messages), now=now,
        services=services, actor_id=staff.id)  # type: ignore[arg-type]
    await mark_done(thread, staff, now=now)
    thread.ticket_id = ticket.id
    thread.outcome = "ticket"
    await thread.save(update_fields=["ticket_id", "outcome"])
    return ticket


def promise_when(due: datetime, now: datetime, settings: Settings) -> tuple[str, str]:
    """When the acknowledgement promises a person: ("today" | "tomorrow" | "date", the
    local time or date and time)."""
    tz = settings.tz
    local_due, local_now = due.astimezone(tz), now.astimezone(tz)
    days = (local_due.date() - local_now.date()).days
    if days <= 0:
        return "today", f"{local_due:%H:%M}"
    if days == 1:
        return "tomorrow", f"{local_due:%H:%M}"
    return "date", f"{local_due:%m-%d %H:%M}"
