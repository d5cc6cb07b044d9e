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


class Visit(Model):
    """A workshop visit. Its follow-up is written when it is recorded."""

    id = fields.IntField(primary_key=True)
    vehicle: fields.ForeignKeyRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="visits", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(VisitKind, max_length=16)
    advisor = fields.CharField(max_length=100, default="")
    left_at = fields.DatetimeField()
    mileage = fields.IntField(null=True)
    major_repair = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visit"
        unique_together = (("vehicle", "left_at", "kind"),)


class Staff(Model):
    id = fields.IntField(primary_key=True)
    telegram_id = fields.BigIntField(null=True, unique=True)
    name = fields.CharField(max_length=100)
    role = fields.CharEnumField(StaffRole, max_length=12)
    active = fields.BooleanField(default=True)
    password_hash = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

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
        indexes = (Index(fields=("status", "due_at"), name="touchpoint_status_due"),)


class MessageLog(Model):
    """Everything said to and by an owner, kept (the seeds' call logs and letter registers)."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    touchpoint: fields.ForeignKeyNullableRelation[Touchpoint] = fields.ForeignKeyField(
        "models.Touchpoint", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    direction = fields.CharEnumField(Direction, max_length=3)
    chat_id = fields.BigIntField()
    telegram_message_id = fields.BigIntField(null=True)
    kind = fields.CharField(max_length=32, default="")  # touchpoint kind, "text", "contact", ...
    text = fields.TextField(default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "message_log"
        indexes = (Index(fields=("customer_id", "created_at"), name="message_log_customer"),)


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
