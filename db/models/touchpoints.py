"""The outbox of touchpoints owed to owners and the message log of what was said."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer, Vehicle


class TouchpointStatus(StrEnum):
    PENDING = "pending"  # waiting for its due time (or for the owner to link)
    SENDING = "sending"  # claimed by a dispatcher; lease_until says until when
    SENT = "sent"
    EXPIRED = "expired"  # its window passed before it could be sent
    SKIPPED = "skipped"  # not sent on purpose: opt-out, unreachable owner (see reason)
    UNREACHABLE = "unreachable"  # Telegram said 403: the owner blocked the bot
    FAILED = "failed"  # a permanent error, or too many attempts
    HELD = "held"  # a paused campaign's row: not claimed until the campaign resumes (issue 6)
    CALL_LIST = "call_list"  # owed by phone instead: see its phone_call row (issue 16)


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


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
