"""Marketing campaigns, who pressed their buttons, consent records and customer tags (issue 6)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer


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
