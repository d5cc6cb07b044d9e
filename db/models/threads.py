"""Conversations: an owner's free-text exchanges with staff, and canned replies (issue 14)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer, Staff, Vehicle
    from db.models.tickets import Ticket
    from db.models.touchpoints import Touchpoint


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
