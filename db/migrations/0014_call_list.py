import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from db.models.calls import CallOutcome, CallReason, CallStatus
from db.models.touchpoints import TouchpointStatus


class StateOnlyAlterField(ops.AlterField):
    """An enum's new value changes only the field's Python-side description: no database
    operation (on SQLite an AlterField rebuilds the table and loses its unique key)."""

    async def database_forward(self, *args: object, **kwargs: object) -> None:
        return None

    async def database_backward(self, *args: object, **kwargs: object) -> None:
        return None


class Migration(migrations.Migration):
    """The call list (phone_call, its attempts), the lost-owner recall's answers, the
    wrong-number flag on the owner's file, and the touchpoint status call_list (issue 16)."""

    dependencies = [('models', '0013_owner_notices')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PhoneCall',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('touchpoint', fields.OneToOneField('models.Touchpoint', source_field='touchpoint_id', db_constraint=True, to_field='id', related_name='phone_call', on_delete=OnDelete.CASCADE)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='phone_calls', on_delete=OnDelete.CASCADE)),
                ('vehicle', fields.ForeignKeyField('models.Vehicle', source_field='vehicle_id', null=True, db_constraint=True, to_field='id', related_name='phone_calls', on_delete=OnDelete.SET_NULL)),
                ('assignee', fields.ForeignKeyField('models.Staff', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='phone_calls', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(max_length=32)),
                ('reason', fields.CharEnumField(description='NOT_LINKED: not_linked\nBLOCKED: blocked\nUNANSWERED: unanswered', enum_type=CallReason, max_length=12)),
                ('status', fields.CharEnumField(default=CallStatus.OPEN, description='OPEN: open\nREACHED: reached\nREFUSED: refused\nWRONG_NUMBER: wrong_number\nUNREACHABLE: unreachable\nANSWERED: answered', enum_type=CallStatus, max_length=14)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.SmallIntField(default=0)),
                ('last_outcome', fields.CharField(default='', max_length=14)),
                ('answers', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'phone_call', 'app': 'models', 'indexes': [Index(fields=['status', 'due_at'], name='phone_call_status_due'), Index(fields=['assignee_id', 'status', 'due_at'], name='phone_call_assignee')], 'pk_attr': 'id', 'table_description': 'One follow-up owed by phone: the touchpoint it stands in for, who calls, until when.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PhoneCallAttempt',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('call', fields.ForeignKeyField('models.PhoneCall', source_field='call_id', db_constraint=True, to_field='id', related_name='attempt_log', on_delete=OnDelete.CASCADE)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='call_attempts', on_delete=OnDelete.SET_NULL)),
                ('outcome', fields.CharEnumField(description='REACHED: reached\nNO_ANSWER: no_answer\nBUSY: busy\nWRONG_NUMBER: wrong_number\nREFUSED: refused', enum_type=CallOutcome, max_length=14)),
                ('note', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'phone_call_attempt', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One dialling of a call and its outcome, by whom and when (the call log).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecallAnswer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('touchpoint', fields.OneToOneField('models.Touchpoint', source_field='touchpoint_id', db_constraint=True, to_field='id', related_name='recall_answer', on_delete=OnDelete.CASCADE)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='recall_answers', on_delete=OnDelete.CASCADE)),
                ('vehicle', fields.ForeignKeyField('models.Vehicle', source_field='vehicle_id', null=True, db_constraint=True, to_field='id', related_name='recall_answers', on_delete=OnDelete.SET_NULL)),
                ('reason', fields.CharField(max_length=16)),
                ('channel', fields.CharField(max_length=8)),
                ('answered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'recall_answer', 'app': 'models', 'indexes': [Index(fields=['answered_at', 'reason'], name='recall_answer_month')], 'pk_attr': 'id', 'table_description': 'Why an owner stopped coming to the workshop, as they answered the recall (流失原因).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Customer',
            name='phone_wrong_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        StateOnlyAlterField(
            model_name='Touchpoint',
            name='status',
            field=fields.CharEnumField(default=TouchpointStatus.PENDING, description='PENDING: pending\nSENDING: sending\nSENT: sent\nEXPIRED: expired\nSKIPPED: skipped\nUNREACHABLE: unreachable\nFAILED: failed\nHELD: held\nCALL_LIST: call_list', enum_type=TouchpointStatus, max_length=12),
        ),
    ]
