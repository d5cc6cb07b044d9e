"""The customer file: owners, their cars and workshop visits, and the staff who serve them;
the console's audit trail of who changed what."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # relations only: the models refer to each other by name at run time
    from db.models.touchpoints import Touchpoint


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


class Customer(Model):
    """An owner. Identified by phone. Two owners with the same name are two people."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    phone = fields.CharField(max_length=20, unique=True)  # E.164
    birthday = fields.DateField(null=True)
    licence_expiry = fields.DateField(null=True)
    # Occasions (issue 3): the owner celebrates the 农历 anniversary of ``birthday``; the scan
    # key is "G" + MMDD (Gregorian) or "L"/"R" + lunar MMDD ("R": born in a leap month).
    birthday_lunar = fields.BooleanField(default=False)
    birthday_md = fields.CharField(max_length=6, null=True)
    language = fields.CharField(max_length=8, default="zh_CN")
    #: how scripts address the owner (先生/女士): "mr", "ms" or "" when not known
    title = fields.CharField(max_length=4, default="")
    advisor = fields.CharField(max_length=100, default="")
    link_token = fields.CharField(max_length=64, unique=True)
    telegram_user_id = fields.BigIntField(null=True, unique=True)
    telegram_chat_id = fields.BigIntField(null=True)
    linked_at = fields.DatetimeField(null=True)
    unreachable_at = fields.DatetimeField(null=True)
    followups_refused = fields.BooleanField(default=False)
    followups_refused_at = fields.DatetimeField(null=True)
    # 电话有误: a phone call found the number wrong (the call list, issue 16); cleared when
    # staff correct the phone
    phone_wrong_at = fields.DatetimeField(null=True)
    marketing_consent = fields.BooleanField(default=False)
    marketing_consent_at = fields.DatetimeField(null=True)
    marketing_consent_source = fields.CharField(max_length=50, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    vehicles: fields.ReverseRelation[Vehicle]
    touchpoints: fields.ReverseRelation[Touchpoint]

    class Meta:
        table = "customer"
        indexes = (
            Index(fields=("birthday_md",), name="customer_birthday_md"),
            Index(fields=("licence_expiry",), name="customer_licence_expiry"),
            Index(fields=("name",), name="customer_name"),  # console search by name prefix
            Index(fields=("advisor",), name="customer_advisor"),  # an advisor's own owners
        )

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
        indexes = (
            Index(fields=("insurance_expiry",), name="vehicle_insurance_expiry"),
            # KPI owners served: the period's deliveries, and each owner's earlier cars
            Index(fields=("delivered_at", "customer_id"), name="vehicle_delivered_owner"),
            Index(fields=("customer_id", "delivered_at"), name="vehicle_customer"),
            Index(fields=("plate",), name="vehicle_plate"),  # console search
        )


class Visit(Model):
    """A workshop visit. Its follow-up is written when it is recorded."""

    id = fields.IntField(primary_key=True)
    vehicle: fields.ForeignKeyRelation[Vehicle] = fields.ForeignKeyField(
        "models.Vehicle", related_name="visits", on_delete=fields.RESTRICT
    )
    vehicle_id: int
    kind = fields.CharEnumField(VisitKind, max_length=16)
    advisor = fields.CharField(max_length=100, default="")
    left_at = fields.DatetimeField()
    mileage = fields.IntField(null=True)
    major_repair = fields.BooleanField(default=False)
    next_service_on = fields.DateField(null=True)  # as the workshop wrote it, if it did
    next_service_km = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visit"
        unique_together = (("vehicle", "left_at", "kind"),)
        # KPI owners served: the period's visits with their cars, from the index alone
        indexes = (Index(fields=("left_at", "vehicle_id"), name="visit_left_vehicle"),)


class Staff(Model):
    id = fields.IntField(primary_key=True)
    telegram_id = fields.BigIntField(null=True, unique=True)
    name = fields.CharField(max_length=100)
    role = fields.CharEnumField(StaffRole, max_length=12)
    active = fields.BooleanField(default=True)
    password_hash = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The web console (issue 7): sign-in name, interface language, lock after failures.
    login = fields.CharField(max_length=50, null=True, unique=True)
    language = fields.CharField(max_length=8, default="zh_CN")
    failed_logins = fields.SmallIntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    last_login_at = fields.DatetimeField(null=True)
    session_epoch = fields.IntField(default=0)  # moves on at sign-out: old cookies stop

    class Meta:
        table = "staff"


class AuditLog(Model):
    """Who changed what in the console, and when: contact details, consents, staff, scripts."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="audit_entries", null=True, on_delete=fields.SET_NULL
    )
    staff_id: int | None
    action = fields.CharField(max_length=40)  # customer.edit, consent.grant, script.edit, ...
    target = fields.CharField(max_length=60, default="")  # "customer:42", "script:zh_CN/x"
    detail: dict[str, Any] = fields.JSONField(default=dict)  # {"field": [old, new], ...}
    created_at = fields.DatetimeField()

    class Meta:
        table = "audit_log"
        indexes = (
            Index(fields=("target", "created_at"), name="audit_target"),
            Index(fields=("action", "created_at"), name="audit_action"),  # e.g. recent imports
        )
