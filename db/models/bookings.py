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
    """The job booked (issue 17): what the workshop plans the slot's capacity by."""

    FIRST_SERVICE = "first_service"
    MAINTENANCE = "maintenance"
    REPAIR = "repair"
    INSPECTION = "inspection"
    OTHER = "other"


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    ARRIVED = "arrived"  # marked by staff on the day
    NO_SHOW = "no_show"  # marked by staff: the owner is offered a new time


class BookingChannel(StrEnum):
    """How the booking was made: by the owner in Telegram, or by staff for a caller or a
    walk-in (the console or ``carebot booking add``)."""

    BOT = "bot"
    PHONE = "phone"
    WALK_IN = "walk_in"


class Booking(Model):
    """A workshop appointment (002 §3.1), made by the owner or by staff for them.

    It takes one place of its kind in its slot. The advisor (or the staff chat) is told,
    and a reminder goes out the day before. Staff mark it arrived or no-show on the day.
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
    slot = fields.CharField(
        max_length=12
    )  # the slot's start, 09:00 (morning, afternoon: before issue 17)
    kind = fields.CharEnumField(BookingKind, max_length=16)
    status = fields.CharEnumField(BookingStatus, max_length=12, default=BookingStatus.BOOKED)
    source_touchpoint_id = fields.BigIntField(null=True)  # the reminder it was made from
    created_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)
    #: what the owner or staff said about the job (a repair's symptoms), and a photo of it
    note = fields.TextField(default="")
    photo_file_id = fields.CharField(max_length=200, default="")
    channel = fields.CharEnumField(BookingChannel, max_length=12, default=BookingChannel.BOT)
    created_by_id = fields.IntField(null=True)  # the staff member who entered it, if staff did
    marked_at = fields.DatetimeField(null=True)  # arrived or no-show marked then
    marked_by_id = fields.IntField(null=True)

    class Meta:
        table = "booking"
        indexes = (
            Index(fields=("customer_id", "status"), name="booking_customer_status"),
            Index(fields=("vehicle_id", "kind", "status"), name="booking_vehicle_kind"),
            # a slot's places taken, and the day's list
            Index(fields=("day", "slot", "kind"), name="booking_day_slot"),
        )


class ScanState(Model):
    """The last local day a daily scan covered, so a restart catches up what it missed."""

    name = fields.CharField(max_length=32, primary_key=True)
    last_day = fields.DateField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "scan_state"
