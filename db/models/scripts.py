"""Scripts edited in the console, kept in the database so that every running instance uses
an edit without a restart (issue 18): append-only, the latest row per template wins."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ScriptEdit(Model):
    """One save (or revert) of a template in the console. Rows are only ever added: an
    instance notices a change by the highest id (one indexed read) and then reloads."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=64)
    lang = fields.CharField(max_length=8)
    #: the template's new text, or null for back to the packaged (or folder) text
    text = fields.TextField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "script_edit"
