"""Complaint tickets, their events and the messages exchanged on them (issue 5)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer, Staff, Vehicle


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
    # who handled it before it was escalated: they stay on it and may still answer and
    # resolve (003 §2.3.3), while the new level takes charge
    previous_handler: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="tickets_handled_before", null=True,
        on_delete=fields.SET_NULL
    )
    previous_handler_id: int | None
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
