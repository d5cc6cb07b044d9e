"""The call list (电话回访): follow-ups owed to owners Telegram cannot reach, made by phone,
and the lost-owner recall's answers (流失客户)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer, Staff, Vehicle
    from db.models.touchpoints import Touchpoint


class CallReason(StrEnum):
    """Why a follow-up became a phone call."""

    NOT_LINKED = "not_linked"  # the owner had not linked Telegram when it fell due
    BLOCKED = "blocked"  # the owner blocked the bot
    UNANSWERED = "unanswered"  # the survey was delivered but left unanswered


class CallStatus(StrEnum):
    OPEN = "open"  # to be called (again) from due_at
    REACHED = "reached"  # the owner answered the phone and the questions
    REFUSED = "refused"  # the owner did not want to talk (打扰了)
    WRONG_NUMBER = "wrong_number"  # 电话有误: the file is flagged
    UNREACHABLE = "unreachable"  # 联络不上: no answer after the last attempt
    ANSWERED = "answered"  # answered in Telegram meanwhile: no call needed


class CallOutcome(StrEnum):
    """What one attempt gave."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"


class PhoneCall(Model):
    """One follow-up owed by phone: the touchpoint it stands in for, who calls, until when.

    One call per touchpoint (unique), so the scan that writes calls may run again and again.
    """

    id = fields.IntField(primary_key=True)
    touchpoint: fields.OneToOneRelation[Touchpoint] = fields.OneToOneField(
        "models.Touchpoint", related_name="phone_call", on_delete=fields.CASCADE
    )
    touchpoint_id: int
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="phone_calls", on_delete=fields.CASCADE
    )
    customer_id: int
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="phone_calls", null=True, on_delete=fields.SET_NULL
    )
    vehicle_id: int | None
    assignee: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="phone_calls", null=True, on_delete=fields.SET_NULL
    )
    assignee_id: int | None
    kind = fields.CharField(max_length=32)  # the touchpoint kind the call stands in for
    reason = fields.CharEnumField(CallReason, max_length=12)
    status = fields.CharEnumField(CallStatus, max_length=14, default=CallStatus.OPEN)
    due_at = fields.DatetimeField()  # the next attempt is due from then
    attempts = fields.SmallIntField(default=0)
    last_outcome = fields.CharField(max_length=14, default="")
    answers: dict[str, Any] = fields.JSONField(default=dict)  # what the owner said, by question
    created_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "phone_call"
        indexes = (
            Index(fields=("status", "due_at"), name="phone_call_status_due"),
            Index(fields=("assignee_id", "status", "due_at"), name="phone_call_assignee"),
        )


class PhoneCallAttempt(Model):
    """One dialling of a call and its outcome, by whom and when (the call log)."""

    id = fields.IntField(primary_key=True)
    call: fields.ForeignKeyRelation[PhoneCall] = fields.ForeignKeyField(
        "models.PhoneCall", related_name="attempt_log", on_delete=fields.CASCADE
    )
    call_id: int
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="call_attempts", null=True, on_delete=fields.SET_NULL
    )
    staff_id: int | None
    outcome = fields.CharEnumField(CallOutcome, max_length=14)
    note = fields.TextField(default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "phone_call_attempt"


class RecallAnswer(Model):
    """Why an owner stopped coming to the workshop, as they answered the recall (流失原因)."""

    id = fields.IntField(primary_key=True)
    touchpoint: fields.OneToOneRelation[Touchpoint] = fields.OneToOneField(
        "models.Touchpoint", related_name="recall_answer", on_delete=fields.CASCADE
    )
    touchpoint_id: int
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="recall_answers", on_delete=fields.CASCADE
    )
    customer_id: int
    vehicle: fields.ForeignKeyNullableRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="recall_answers", null=True, on_delete=fields.SET_NULL
    )
    vehicle_id: int | None
    reason = fields.CharField(max_length=16)
    channel = fields.CharField(max_length=8)  # telegram or phone
    answered_at = fields.DatetimeField()

    class Meta:
        table = "recall_answer"
        indexes = (Index(fields=("answered_at", "reason"), name="recall_answer_month"),)
