"""The inbox of updates Telegram handed over, the sender's failures and notices owed
(nothing said is lost)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


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
    #: a file sent as a document with ``text`` as its caption (a report's CSV), when named
    document_name = fields.CharField(max_length=100, default="")
    document = fields.TextField(default="")
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
