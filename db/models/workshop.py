"""The workshop side of the customer file (issue 17): odometer readings, each car's service
forecast (due by time or mileage), and the repairs an owner postponed (建议维修项目)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Vehicle, Visit


class MileageReading(Model):
    """An odometer reading the owner gave the bot (visits carry their own): kept, never
    overwritten, so the estimate of the car's daily distance can be checked."""

    id = fields.BigIntField(primary_key=True)
    vehicle: fields.ForeignKeyRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="mileage_readings", on_delete=fields.CASCADE
    )
    vehicle_id: int
    read_on = fields.DateField()  # local day
    km = fields.IntField()
    source = fields.CharField(max_length=12, default="owner")
    created_at = fields.DatetimeField()

    class Meta:
        table = "mileage_reading"
        indexes = (Index(fields=("vehicle_id", "read_on"), name="mileage_reading_vehicle"),)


class ServiceForecast(Model):
    """When a car's next service is due, worked out when a reading arrives (a visit, the
    owner's mileage), so the daily scan only picks the rows whose reminder day came.

    ``cycle`` names the reminder's occasion: a new last service or a moved due date is a new
    cycle (the old cycle's unsent reminder is dropped)."""

    vehicle: fields.OneToOneRelation[Vehicle] = fields.OneToOneField(
        "models.Vehicle", related_name="service_forecast", on_delete=fields.CASCADE,
        primary_key=True,
    )
    vehicle_id: int
    customer_id = fields.IntField()
    last_service_on = fields.DateField()
    due_on = fields.DateField()
    remind_on = fields.DateField()
    by = fields.CharField(max_length=4)  # "date" or "km": which measure comes first
    due_km = fields.IntField(null=True)
    interval_km = fields.IntField(default=0)
    km_per_day = fields.FloatField(null=True)
    cycle = fields.CharField(max_length=40)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "service_forecast"
        indexes = (Index(fields=("remind_on", "due_on"), name="service_forecast_remind"),)


class RecommendedRepair(Model):
    """Work the workshop recommended and the owner postponed (003 §3.2 用户维修项目提醒):
    reminded ``remind_on``, dropped once a later visit records it done."""

    id = fields.BigIntField(primary_key=True)
    visit: fields.ForeignKeyRelation[Visit] = fields.ForeignKeyField(
        "models.Visit", related_name="recommended_repairs", on_delete=fields.CASCADE
    )
    visit_id: int
    vehicle_id = fields.IntField()
    customer_id = fields.IntField()
    item = fields.CharField(max_length=100)
    recommended_on = fields.DateField()  # local day the car left the workshop
    remind_on = fields.DateField()
    done_visit_id = fields.IntField(null=True)  # the later visit that did it
    done_on = fields.DateField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "recommended_repair"
        unique_together = (("visit", "item"),)
        indexes = (
            Index(fields=("remind_on", "done_on"), name="recommended_repair_remind"),
            Index(fields=("vehicle_id", "done_on"), name="recommended_repair_vehicle"),
        )

