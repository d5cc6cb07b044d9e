"""The customer file, the outbox and the message log.

All datetimes are stored in UTC (Tortoise ``use_tz=True``); local time is only for display,
quiet hours and daily scans.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class VehicleStatus(StrEnum):
    ACTIVE = "active"
    TRANSFERRED = "transferred"
    SCRAPPED = "scrapped"


class VisitKind(StrEnum):
    FIRST_SERVICE = "first_service"
    MAINTENANCE = "maintenance"
    REPAIR = "repair"
    WARRANTY = "warranty"
    ACCIDENT = "accident"


class StaffRole(StrEnum):
    AGENT = "agent"
    ADVISOR = "advisor"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    MARKETING = "marketing"
    ADMIN = "admin"


class TouchpointStatus(StrEnum):
    PENDING = "pending"  # waiting for its due time (or for the owner to link)
    SENDING = "sending"  # claimed by a dispatcher; lease_until says until when
    SENT = "sent"
    EXPIRED = "expired"  # its window passed before it could be sent
    SKIPPED = "skipped"  # not sent on purpose: opt-out, unreachable owner (see reason)
    UNREACHABLE = "unreachable"  # Telegram said 403: the owner blocked the bot
    FAILED = "failed"  # a permanent error, or too many attempts
    HELD = "held"  # a paused campaign's row: not claimed until the campaign resumes (issue 6)


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


class Customer(Model):
    """An owner. Identified by phone. Two owners with the same name are two people."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    phone = fields.CharField(max_length=20, unique=True)  # E.164
    birthday = fields.DateField(null=True)
    licence_expiry = fields.DateField(null=True)
    # Occasions (issue 3): the owner celebrates the 农历 anniversary of ``birthday``; the scan
    # key is "G" + MMDD (Gregorian) or "L"/"R" + lunar MMDD ("R": born in a leap month).
    birthday_lunar = fields.BooleanField(default=False)
    birthday_md = fields.CharField(max_length=6, null=True)
    language = fields.CharField(max_length=8, default="zh_CN")
    advisor = fields.CharField(max_length=100, default="")
    link_token = fields.CharField(max_length=64, unique=True)
    telegram_user_id = fields.BigIntField(null=True, unique=True)
    telegram_chat_id = fields.BigIntField(null=True)
    linked_at = fields.DatetimeField(null=True)
    unreachable_at = fields.DatetimeField(null=True)
    followups_refused = fields.BooleanField(default=False)
    followups_refused_at = fields.DatetimeField(null=True)
    marketing_consent = fields.BooleanField(default=False)
    marketing_consent_at = fields.DatetimeField(null=True)
    marketing_consent_source = fields.CharField(max_length=50, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    vehicles: fields.ReverseRelation[Vehicle]
    touchpoints: fields.ReverseRelation[Touchpoint]

    class Meta:
        table = "customer"
        indexes = (
            Index(fields=("birthday_md",), name="customer_birthday_md"),
            Index(fields=("licence_expiry",), name="customer_licence_expiry"),
            Index(fields=("name",), name="customer_name"),  # console search by name prefix
            Index(fields=("advisor",), name="customer_advisor"),  # an advisor's own owners
        )

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"


class Vehicle(Model):
    """One car, one file. The VIN is unique."""

    id = fields.IntField(primary_key=True)
    vin = fields.CharField(max_length=17, unique=True)
    plate = fields.CharField(max_length=20, default="")
    model = fields.CharField(max_length=100, default="")
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="vehicles", on_delete=fields.RESTRICT
    )
    customer_id: int
    delivered_at = fields.DatetimeField(null=True)
    sales_advisor = fields.CharField(max_length=100, default="")
    insurance_expiry = fields.DateField(null=True)
    mileage = fields.IntField(null=True)
    status = fields.CharEnumField(VehicleStatus, max_length=12, default=VehicleStatus.ACTIVE)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    visits: fields.ReverseRelation[Visit]

    class Meta:
        table = "vehicle"
        indexes = (
            Index(fields=("insurance_expiry",), name="vehicle_insurance_expiry"),
            # KPI owners served: the period's deliveries, and each owner's earlier cars
            Index(fields=("delivered_at", "customer_id"), name="vehicle_delivered_owner"),
            Index(fields=("customer_id", "delivered_at"), name="vehicle_customer"),
            Index(fields=("plate",), name="vehicle_plate"),  # console search
        )


class Visit(Model):
    """A workshop visit. Its follow-up is written when it is recorded."""

    id = fields.IntField(primary_key=True)
    vehicle: fields.ForeignKeyRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="visits", on_delete=fields.RESTRICT
    )
    vehicle_id: int
    kind = fields.CharEnumField(VisitKind, max_length=16)
    advisor = fields.CharField(max_length=100, default="")
    left_at = fields.DatetimeField()
    mileage = fields.IntField(null=True)
    major_repair = fields.BooleanField(default=False)
    next_service_on = fields.DateField(null=True)  # as the workshop wrote it, if it did
    next_service_km = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visit"
        unique_together = (("vehicle", "left_at", "kind"),)
        # KPI owners served: the period's visits with their cars, from the index alone
        indexes = (Index(fields=("left_at", "vehicle_id"), name="visit_left_vehicle"),)


class Staff(Model):
    id = fields.IntField(primary_key=True)
    telegram_id = fields.BigIntField(null=True, unique=True)
    name = fields.CharField(max_length=100)
    role = fields.CharEnumField(StaffRole, max_length=12)
    active = fields.BooleanField(default=True)
    password_hash = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The web console (issue 7): sign-in name, interface language, lock after failures.
    login = fields.CharField(max_length=50, null=True, unique=True)
    language = fields.CharField(max_length=8, default="zh_CN")
    failed_logins = fields.SmallIntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    last_login_at = fields.DatetimeField(null=True)
    session_epoch = fields.IntField(default=0)  # moves on at sign-out: old cookies stop

    class Meta:
        table = "staff"


class Touchpoint(Model):
    """A row of the outbox: one message owed to one owner, sent at most once.

    The unique key (customer, kind, occasion_key) makes every cause idempotent. Re-importing a
    delivery or re-running a scan writes nothing new.
    """

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="touchpoints", on_delete=fields.CASCADE
    )
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="touchpoints", null=True, on_delete=fields.SET_NULL
    )
    customer_id: int
    vehicle_id: int | None
    kind = fields.CharField(max_length=32)
    occasion_key = fields.CharField(max_length=64)
    priority = fields.SmallIntField(default=0)  # 0 = service, higher = later (marketing)
    due_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    status = fields.CharEnumField(TouchpointStatus, max_length=12, default=TouchpointStatus.PENDING)
    status_reason = fields.CharField(max_length=200, default="")
    attempts = fields.SmallIntField(default=0)
    lease_until = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    telegram_message_id = fields.BigIntField(null=True)
    last_error = fields.TextField(default="")
    payload: dict[str, Any] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "touchpoint"
        unique_together = (("customer", "kind", "occasion_key"),)
        indexes = (
            Index(fields=("status", "due_at"), name="touchpoint_status_due"),
            # KPI follow-ups: counted per kind and status over the period from the index
            # alone, and the sent ones in id order to merge with the scores (bot/kpi.py)
            Index(fields=("kind", "status", "due_at", "status_reason", "customer_id"),
                  name="touchpoint_kpi"),
            Index(fields=("kind", "status", "id", "due_at"), name="touchpoint_answered"),
        )


class MessageLog(Model):
    """Everything said to and by an owner, kept (the seeds' call logs and letter registers)."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    touchpoint: fields.ForeignKeyNullableRelation[Touchpoint] = fields.ForeignKeyField(
        "models.Touchpoint", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    touchpoint_id: int | None
    direction = fields.CharEnumField(Direction, max_length=3)
    chat_id = fields.BigIntField()
    telegram_message_id = fields.BigIntField(null=True)
    kind = fields.CharField(max_length=32, default="")  # touchpoint kind, "text", "contact", ...
    text = fields.TextField(default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "message_log"
        indexes = (
            Index(fields=("customer_id", "created_at"), name="message_log_customer"),
            # a survey's kept comments and re-asks, read on every score (no full-log scans)
            Index(fields=("touchpoint_id", "kind"), name="message_log_touchpoint"),
        )


class Conversation(Model):
    """Dialogue state per Telegram user, kept in the database so a restart or another
    instance continues the conversation."""

    id = fields.IntField(primary_key=True)
    telegram_user_id = fields.BigIntField(unique=True)
    state = fields.CharField(max_length=32, default="")
    data: dict[str, Any] = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "conversation"


# --- complaint tickets (issue 5) -------------------------------------------------------


class TicketLevel(StrEnum):
    """The escalation chain, lowest first (003 §2.3.3)."""

    AGENT = "agent"
    ADVISOR = "advisor"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"


class TicketState(StrEnum):
    OPEN = "open"  # waiting for the first answer to the owner
    CLAIMED = "claimed"  # a handler took it, the owner was told
    ANSWERED = "answered"  # the handler has answered the owner
    RESOLVED = "resolved"  # resolution written, waiting for the owner's rating
    CLOSED = "closed"
    REOPENED = "reopened"  # the owner was not satisfied: one level higher, clocks restart


class Ticket(Model):
    """A complaint (投诉) and how it was handled (003 §2.3.4 用户投诉处理追踪表).

    ``due_at``/``due_kind`` hold the one deadline running now (first answer, handler answer
    or an escalated level's 2 hours), so the deadline check is a single indexed query.
    """

    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=16, unique=True)  # "T-0042", for people
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="tickets", on_delete=fields.RESTRICT
    )
    customer_id: int
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="tickets", null=True, on_delete=fields.SET_NULL
    )
    vehicle_id: int | None
    channel = fields.CharField(max_length=8)  # bot, survey, staff
    category = fields.CharField(max_length=24)  # the CSI categories
    description = fields.TextField(default="")
    level = fields.CharEnumField(TicketLevel, max_length=12, default=TicketLevel.AGENT)
    state = fields.CharEnumField(TicketState, max_length=12, default=TicketState.OPEN)
    major = fields.BooleanField(default=False)
    handler: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="tickets", null=True, on_delete=fields.SET_NULL
    )
    handler_id: int | None
    score_id = fields.BigIntField(null=True)  # the satisfaction score that opened it, if any
    created_at = fields.DatetimeField()
    first_answer_due = fields.DatetimeField()
    first_answered_at = fields.DatetimeField(null=True)
    claimed_at = fields.DatetimeField(null=True)
    handler_answer_due = fields.DatetimeField(null=True)
    handler_answered_at = fields.DatetimeField(null=True)
    due_at = fields.DatetimeField(null=True)  # the deadline running now, None when none
    due_kind = fields.CharField(max_length=16, default="")  # first_answer, handler_answer, level
    breaches = fields.SmallIntField(default=0)
    reopen_count = fields.SmallIntField(default=0)
    resolved_at = fields.DatetimeField(null=True)
    resolution = fields.TextField(default="")
    improvement = fields.TextField(default="")
    closed_at = fields.DatetimeField(null=True)
    handling_score = fields.SmallIntField(null=True)
    topic_thread_id = fields.BigIntField(null=True)  # the staff chat's forum topic
    card_message_id = fields.BigIntField(null=True)  # the card (root of the reply thread)
    updated_at = fields.DatetimeField(auto_now=True)

    events: fields.ReverseRelation[TicketEvent]

    class Meta:
        table = "ticket"
        indexes = (
            Index(fields=("state", "due_at"), name="ticket_state_due"),
            Index(fields=("customer_id", "state"), name="ticket_customer_state"),
            Index(fields=("handler_id", "state"), name="ticket_handler"),  # "mine", scopes
        )


class TicketEvent(Model):
    """One thing that happened to a ticket, with its time, actor and reason."""

    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="events", on_delete=fields.CASCADE
    )
    ticket_id: int
    kind = fields.CharField(max_length=16)  # opened, claimed, answered, escalated, ...
    actor: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="ticket_events", null=True, on_delete=fields.SET_NULL
    )
    actor_id: int | None
    text = fields.TextField(default="")
    reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    # Its effects (staff topic and card, notices, the owner's notice) are owed until this is
    # set: written with the change, carried out by the staff side's one instance, retried.
    effects_done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "ticket_event"
        indexes = (Index(fields=("ticket_id", "created_at"), name="ticket_event_ticket"),
                   Index(fields=("effects_done_at", "id"), name="ticket_event_effects"))


class TicketMessage(Model):
    """What the owner and staff said on a ticket. Owner messages wait here until relayed,
    so a flood or a restart loses nothing."""

    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="messages", on_delete=fields.CASCADE
    )
    ticket_id: int
    direction = fields.CharField(max_length=8)  # in (owner), out (staff to owner), note
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="ticket_messages", null=True, on_delete=fields.SET_NULL
    )
    staff_id: int | None
    text = fields.TextField(default="")
    photo_file_id = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    relayed_at = fields.DatetimeField(null=True)
    #: the Telegram message it came from (``chat:message``), so an update handled twice
    #: after a crash records (and relays) it once; None for the console and the CLI
    source = fields.CharField(max_length=64, null=True, unique=True)
    #: a staff answer owed to the owner: tries so far, when to try next, when given up
    attempts = fields.IntField(default=0)
    next_try_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=200, default="")
    #: a console answer or note, still to be shown in the ticket's topic
    mirrored_at = fields.DatetimeField(null=True)

    class Meta:
        table = "ticket_message"
        indexes = (
            Index(fields=("relayed_at", "direction"), name="ticket_message_pending"),
            Index(fields=("ticket_id", "id"), name="ticket_message_ticket"),  # a conversation
        )


# --- conversations (issue 14) ----------------------------------------------------------


class ThreadKind(StrEnum):
    """What an owner's conversation is, from what they answered (a reply to the insurance
    reminder is an insurance lead...); it routes the conversation to a person."""

    INQUIRY = "inquiry"
    INSURANCE_LEAD = "insurance_lead"
    BOOKING_REQUEST = "booking_request"
    CAMPAIGN_LEAD = "campaign_lead"


class ThreadState(StrEnum):
    OPEN = "open"
    DONE = "done"


class Thread(Model):
    """A conversation: what an owner wrote outside a running dialogue, open until a person
    marked it done (or turned it into a complaint ticket). One open per owner."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="threads", on_delete=fields.CASCADE
    )
    customer_id: int
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="threads", null=True, on_delete=fields.SET_NULL
    )
    vehicle_id: int | None
    kind = fields.CharEnumField(ThreadKind, max_length=16, default=ThreadKind.INQUIRY)
    state = fields.CharEnumField(ThreadState, max_length=8, default=ThreadState.OPEN)
    assignee: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="threads", null=True, on_delete=fields.SET_NULL
    )
    assignee_id: int | None
    queue = fields.CharField(max_length=12, default="agent")  # the role that sees it unassigned
    #: the touchpoint or campaign message it answers (by Telegram's reply, or next after it)
    touchpoint: fields.ForeignKeyNullableRelation[Touchpoint] = fields.ForeignKeyField(
        "models.Touchpoint", related_name="threads", null=True, on_delete=fields.SET_NULL
    )
    touchpoint_id: int | None
    topic_thread_id = fields.BigIntField(null=True)  # its forum topic in the staff group
    card_message_id = fields.BigIntField(null=True)  # its first message there
    topic_closed = fields.BooleanField(default=False)
    #: every change counts one up, the topic and its card show ``synced_version``: a higher
    #: ``version`` is a change still owed to the staff group
    version = fields.IntField(default=1)
    synced_version = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    last_in_at = fields.DatetimeField(null=True)
    last_out_at = fields.DatetimeField(null=True)
    read_at = fields.DatetimeField(null=True)  # last opened on the console (unread markers)
    #: when the owner was told a person will answer (owed until then, even after a crash)
    acknowledged_at = fields.DatetimeField(null=True)
    first_answer_due = fields.DatetimeField(null=True)
    first_answered_at = fields.DatetimeField(null=True)
    reminded_at = fields.DatetimeField(null=True)  # the assignee was reminded before the due
    breached_at = fields.DatetimeField(null=True)  # the supervisor was told at the due
    done_at = fields.DatetimeField(null=True)
    done_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="threads_done", null=True, on_delete=fields.SET_NULL
    )
    done_by_id: int | None
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="threads", null=True, on_delete=fields.SET_NULL
    )
    ticket_id: int | None
    outcome = fields.CharField(max_length=20, default="")  # a lead's: renewed_here, won...
    premium = fields.DecimalField(max_digits=12, decimal_places=2, null=True)
    outcome_note = fields.TextField(default="")

    class Meta:
        table = "thread"
        indexes = (
            Index(fields=("customer_id", "state"), name="thread_customer_state"),
            Index(fields=("state", "assignee_id", "last_in_at"), name="thread_inbox"),
            Index(fields=("state", "first_answer_due"), name="thread_due"),
        )


class ThreadMessage(Model):
    """One message of a conversation, and what it still owes: an owner's message waits to be
    shown in the topic (``relayed_at``); a staff answer waits to reach the owner (retried
    like a ticket's: attempts, next try, given up); a console answer or note waits to be
    mirrored in the topic (``mirrored_at``)."""

    id = fields.BigIntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="messages", on_delete=fields.CASCADE
    )
    thread_id: int
    direction = fields.CharField(max_length=8)  # in (owner), out (staff to owner), note
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="thread_messages", null=True, on_delete=fields.SET_NULL
    )
    staff_id: int | None
    text = fields.TextField(default="")
    media_kind = fields.CharField(max_length=12, default="")  # photo, voice, document...
    media = fields.CharField(max_length=200, default="")  # Telegram's file id, or "lat,lon"
    #: the Telegram message it is (the owner's, or staff's in the topic): copied as media
    telegram_message_id = fields.BigIntField(null=True)
    source = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField()
    relayed_at = fields.DatetimeField(null=True)
    mirrored_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    next_try_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=200, default="")
    #: a photo uploaded on the console, kept until Telegram took it (then its file id is
    #: in ``media`` and this is emptied)
    upload = fields.BinaryField(null=True)

    class Meta:
        table = "thread_message"
        indexes = (
            Index(fields=("thread_id", "id"), name="thread_message_thread"),
            Index(fields=("relayed_at", "direction"), name="thread_message_pending"),
        )


# --- satisfaction scores (issue 4) -------------------------------------------------------


class ScoreRates(StrEnum):
    """What a score rates: the delivery, a workshop visit, or the handling of a complaint."""

    DELIVERY = "delivery"
    VISIT = "visit"
    COMPLAINT = "complaint"


class Score(Model):
    """A 1-10 satisfaction score given in answer to a survey touchpoint (CSI, 003 §1.3).

    A changed answer keeps the old row with ``superseded_at`` set, so the history is never
    lost. The current score of a survey is its row whose ``superseded_at`` is null.
    ``handover`` follows a low score: "pending" while the owner picks a category and
    comments, then "ticket:<id>" or "staff" once complaints have it.
    """

    id = fields.BigIntField(primary_key=True)
    touchpoint: fields.ForeignKeyRelation[Touchpoint] = fields.ForeignKeyField(
        "models.Touchpoint", related_name="scores", on_delete=fields.CASCADE
    )
    touchpoint_id: int
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="scores", on_delete=fields.CASCADE
    )
    customer_id: int
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="scores", null=True, on_delete=fields.SET_NULL
    )
    vehicle_id: int | None
    visit: fields.ForeignKeyNullableRelation[Visit] = fields.ForeignKeyField(
        "models.Visit", related_name="scores", null=True, on_delete=fields.SET_NULL
    )
    visit_id: int | None
    ticket_id = fields.IntField(null=True)  # the complaint whose handling this rates
    rates = fields.CharEnumField(ScoreRates, max_length=10)
    advisor = fields.CharField(max_length=100, default="")
    score = fields.SmallIntField()
    category = fields.CharField(max_length=24, null=True)  # CSI category of a low score
    comment = fields.TextField(default="")
    source = fields.CharField(max_length=8, default="button")  # button or text
    first_answered_at = fields.DatetimeField()  # the survey's first answer (24 h window)
    created_at = fields.DatetimeField()
    superseded_at = fields.DatetimeField(null=True)
    handover = fields.CharField(max_length=24, default="")

    class Meta:
        table = "score"
        indexes = (
            Index(fields=("first_answered_at",), name="score_answered"),
            # KPI report: a period's current scores counted per rates and value (and per
            # advisor) from the index alone, and each owner's 9-10 found for the delight rate
            Index(fields=("rates", "superseded_at", "score", "first_answered_at", "category",
                          "advisor"), name="score_csi"),
            Index(fields=("customer_id", "score", "superseded_at", "rates", "first_answered_at"),
                  name="score_customer"),
            Index(fields=("touchpoint_id", "superseded_at"), name="score_touchpoint"),
            Index(fields=("handover",), name="score_handover"),
        )


# --- scheduled touchpoints: bookings and the daily scan (issue 3) ------------------------


class BookingKind(StrEnum):
    FIRST_SERVICE = "first_service"
    MAINTENANCE = "maintenance"


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class Booking(Model):
    """A workshop appointment the owner made from a reminder (002 §3.1).

    The advisor (or the staff chat) is told, and a reminder goes out the day before.
    """

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="bookings", on_delete=fields.CASCADE
    )
    customer_id: int
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="bookings", null=True, on_delete=fields.SET_NULL
    )
    vehicle_id: int | None
    day = fields.DateField()  # local date of the visit
    slot = fields.CharField(max_length=12)  # morning, afternoon
    kind = fields.CharEnumField(BookingKind, max_length=16)
    status = fields.CharEnumField(BookingStatus, max_length=12, default=BookingStatus.BOOKED)
    source_touchpoint_id = fields.BigIntField(null=True)  # the reminder it was made from
    created_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "booking"
        indexes = (
            Index(fields=("customer_id", "status"), name="booking_customer_status"),
            Index(fields=("vehicle_id", "kind", "status"), name="booking_vehicle_kind"),
        )


class ScanState(Model):
    """The last local day a daily scan covered, so a restart catches up what it missed."""

    name = fields.CharField(max_length=32, primary_key=True)
    last_day = fields.DateField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "scan_state"


# --- marketing campaigns, consent and tags (issue 6) ------------------------------------


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waiting for its send time, nothing written yet
    SENDING = "sending"  # launched: its touchpoints are in the outbox
    PAUSED = "paused"  # its pending touchpoints are held
    DONE = "done"
    CANCELLED = "cancelled"


class Campaign(Model):
    """A marketing campaign: message per language, buttons, audience, send time.

    ``launch`` keeps what launching decided (targeted, excluded by reason) so the results
    stay as they were even when the files change later.
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    marketer = fields.CharField(max_length=100, default="")
    status = fields.CharEnumField(CampaignStatus, max_length=12, default=CampaignStatus.DRAFT)
    messages: dict[str, str] = fields.JSONField(default=dict)  # language -> Jinja2 template
    buttons: list[dict[str, Any]] = fields.JSONField(default=list)  # kind, label, url
    audience: dict[str, Any] = fields.JSONField(default=dict)  # filters, see promotions.py
    send_at = fields.DatetimeField(null=True)
    event_date = fields.DateField(null=True)
    force_reason = fields.TextField(default="")
    launch: dict[str, Any] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    scheduled_at = fields.DatetimeField(null=True)
    launched_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "campaign"
        indexes = (Index(fields=("status", "send_at"), name="campaign_status_send"),)


class CampaignPress(Model):
    """An owner pressed a campaign button (interested, book, url, unsubscribe)."""

    id = fields.BigIntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="presses", on_delete=fields.CASCADE
    )
    campaign_id: int
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="campaign_presses", on_delete=fields.CASCADE
    )
    customer_id: int
    button = fields.CharField(max_length=16)
    created_at = fields.DatetimeField()

    class Meta:
        table = "campaign_press"
        unique_together = (("campaign", "customer", "button"),)


class ConsentRecord(Model):
    """One grant or withdrawal of marketing consent, with the wording the owner was shown.

    The proof a regulator asks for: rows are only ever added.
    """

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="consent_records", on_delete=fields.CASCADE
    )
    customer_id: int
    granted = fields.BooleanField()
    source = fields.CharField(max_length=50)  # import, bot:question, bot:unsubscribe, ...
    wording = fields.TextField(default="")
    campaign_id = fields.IntField(null=True)  # the campaign whose message led to it, if any
    created_at = fields.DatetimeField()

    class Meta:
        table = "consent_record"
        indexes = (Index(fields=("customer_id", "created_at"), name="consent_customer"),)


class CustomerTag(Model):
    """A marketer's label on an owner (e.g. "vip", "ev-interest"), for audiences."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="tags", on_delete=fields.CASCADE
    )
    customer_id: int
    tag = fields.CharField(max_length=50)
    created_at = fields.DatetimeField()

    class Meta:
        table = "customer_tag"
        unique_together = (("customer", "tag"),)
        indexes = (Index(fields=("tag",), name="customer_tag_tag"),)


class AuditLog(Model):
    """Who changed what in the console, and when: contact details, consents, staff, scripts."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="audit_entries", null=True, on_delete=fields.SET_NULL
    )
    staff_id: int | None
    action = fields.CharField(max_length=40)  # customer.edit, consent.grant, script.edit, ...
    target = fields.CharField(max_length=60, default="")  # "customer:42", "script:zh_CN/x"
    detail: dict[str, Any] = fields.JSONField(default=dict)  # {"field": [old, new], ...}
    created_at = fields.DatetimeField()

    class Meta:
        table = "audit_log"
        indexes = (
            Index(fields=("target", "created_at"), name="audit_target"),
            Index(fields=("action", "created_at"), name="audit_action"),  # e.g. recent imports
        )


# --- the inbox and the sender's failures (nothing said is lost) -------------------------


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored, waiting for a worker (or for its next try)
    HANDLING = "handling"  # a worker has it, until ``lease_until``
    DONE = "done"
    PARKED = "parked"  # its handler kept failing: a person looks (console, `carebot inbox`)


class InboxUpdate(Model):
    """A Telegram update, committed before Telegram is told it arrived, then handled from here."""

    id = fields.BigIntField(primary_key=True)
    update_id = fields.BigIntField(unique=True)
    chat_key = fields.BigIntField(default=0)  # one chat's updates are handled in order
    kind = fields.CharField(max_length=32, default="")  # message, callback_query, ...
    payload: dict[str, Any] = fields.JSONField()
    status = fields.CharEnumField(InboxStatus, max_length=10, default=InboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_try_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    claimed_by = fields.IntField(default=0)  # the claiming instance's slot (0: SQLite)
    last_error = fields.TextField(default="")
    received_at = fields.DatetimeField()
    handled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "inbox_update"
        indexes = (
            Index(fields=("status", "next_try_at"), name="inbox_status_next"),
            Index(fields=("chat_key", "status", "id"), name="inbox_chat_status"),
        )


class FailedSend(Model):
    """A message carebot owed and could not send after every retry: shown to staff."""

    id = fields.BigIntField(primary_key=True)
    lane = fields.CharField(max_length=10)  # reply, staff, service, marketing
    chat_id = fields.BigIntField(null=True)
    method = fields.CharField(max_length=40)
    error = fields.TextField(default="")
    created_at = fields.DatetimeField()
    seen_at = fields.DatetimeField(null=True)  # a person has looked at it

    class Meta:
        table = "failed_send"
        indexes = (Index(fields=("seen_at", "created_at"), name="failed_send_open"),)


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # a worker has it, until ``lease_until``
    SENT = "sent"
    FAILED = "failed"  # every try failed: each refusal is a failed send staff see


class Notice(Model):
    """A message owed to staff because something was recorded, sent once by the sender.

    A booking, a low score, a campaign press: written with the change, unique ``key``."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=120, unique=True)
    chats: list[int] = fields.JSONField()  # tried in order: the advisor, then the staff chat
    text = fields.TextField()
    lane = fields.CharField(max_length=10, default="staff")
    parse_mode = fields.CharField(max_length=8, default="")  # "HTML" for owners' scripts
    #: a notice to an owner (a ticket's news): kept in their message log once sent
    customer_id = fields.BigIntField(null=True)
    log_kind = fields.CharField(max_length=32, default="")
    status = fields.CharEnumField(NoticeStatus, max_length=8, default=NoticeStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_try_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notice"
        indexes = (Index(fields=("status", "next_try_at"), name="notice_status_next"),)


# --- canned replies (issue 14, point 3) --------------------------------------------------


class CannedReply(Model):
    """A ready answer staff pick by its short name (the console's picker, ``/r name`` in a
    conversation's topic), one row per language. Its text takes variables such as
    ``{name}`` and ``{car}``, checked when it is saved (``bot.canned``)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=32)  # the short name, e.g. "greeting"
    language = fields.CharField(max_length=8)  # zh_CN or en
    title = fields.CharField(max_length=100, default="")
    text = fields.TextField()
    active = fields.BooleanField(default=True)
    updated_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="canned_replies", null=True, on_delete=fields.SET_NULL
    )
    updated_by_id: int | None
    updated_at = fields.DatetimeField()

    class Meta:
        table = "canned_reply"
        unique_together = (("name", "language"),)
