"""Settings changed in the console, kept in the database so that every running instance
uses a change without a restart (issue 18): append-only, the latest row per setting wins."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from db.models.people import Staff


class SettingOverride(Model):
    """One change (or reset) of a setting in the console. Rows are only ever added: an
    instance notices a change by the highest id (one indexed read) and then reloads."""

    id = fields.BigIntField(primary_key=True)
    #: the Settings field (dealer_phone for CAREBOT_DEALER_PHONE)
    key = fields.CharField(max_length=64)
    #: the value as typed in the console, or null for back to the environment or default
    value = fields.TextField(null=True)
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="setting_overrides", null=True, on_delete=fields.SET_NULL
    )
    staff_id: int | None
    created_at = fields.DatetimeField()

    class Meta:
        table = "setting_override"
