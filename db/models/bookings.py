"""Workshop bookings and the daily scan's progress (issue 3)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.people import Customer, Vehicle


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
