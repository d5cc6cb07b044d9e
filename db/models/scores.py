"""Satisfaction scores from follow-up surveys (issue 4)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer, Vehicle, Visit
    from db.models.touchpoints import Touchpoint


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
    # asked once after a good score: what could be better (003 §2.2 g iv), optional
    improvement = fields.TextField(default="")

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


class ScoreAnswer(Model):
    """One question of a survey's questionnaire answered (or skipped) by the owner, in
    Telegram or on the phone (issue 16 point 2). The overall score of the questionnaire is
    the weighted mean of these, stored as the survey's Score. One row per survey and
    question: a changed answer before the survey is finished replaces the value."""

    id = fields.BigIntField(primary_key=True)
    touchpoint: fields.ForeignKeyRelation[Touchpoint] = fields.ForeignKeyField(
        "models.Touchpoint", related_name="answers", on_delete=fields.CASCADE
    )
    touchpoint_id: int
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="answers", on_delete=fields.CASCADE
    )
    customer_id: int
    rates = fields.CharEnumField(ScoreRates, max_length=10)  # sales (delivery) or service
    kind = fields.CharField(max_length=16)  # the questionnaire: delivery, visit...
    question = fields.CharField(max_length=24)  # the question's key in its file
    position = fields.SmallIntField()  # its place in the questionnaire, from 0
    dimension = fields.CharField(max_length=24, default="")  # its CSI dimension
    choice = fields.CharField(max_length=16, default="")  # 1..10 or satisfied/neutral/...
    value = fields.SmallIntField(null=True)  # the number it counts as, null when skipped
    skipped = fields.BooleanField(default=False)
    source = fields.CharField(max_length=8, default="button")  # button, text or phone
    answered_at = fields.DatetimeField()

    class Meta:
        table = "score_answer"
        unique_together = (("touchpoint_id", "question"),)
        indexes = (
            # the report: a period's answers counted per questionnaire, question and choice
            Index(fields=("answered_at", "kind", "question", "choice"), name="answer_report"),
        )
