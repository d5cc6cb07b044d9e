from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from db.models import InboxStatus
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """The inbox (every update stored before Telegram is told it arrived) and the sender's
    failed sends, shown to staff (CreateModel only)."""

    dependencies = [('models', '0006_message_log_touchpoint')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FailedSend',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('lane', fields.CharField(max_length=10)),
                ('chat_id', fields.BigIntField(null=True)),
                ('method', fields.CharField(max_length=40)),
                ('error', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seen_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'failed_send', 'app': 'models', 'indexes': [Index(fields=['seen_at', 'created_at'], name='failed_send_open')], 'pk_attr': 'id', 'table_description': 'A message carebot owed and could not send after every retry: shown to staff.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InboxUpdate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('update_id', fields.BigIntField(unique=True)),
                ('chat_key', fields.BigIntField(default=0)),
                ('kind', fields.CharField(default='', max_length=32)),
                ('payload', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=InboxStatus.PENDING, description='PENDING: pending\nHANDLING: handling\nDONE: done\nPARKED: parked', enum_type=InboxStatus, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_try_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_by', fields.IntField(default=0)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('handled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'inbox_update', 'app': 'models', 'indexes': [Index(fields=['status', 'next_try_at'], name='inbox_status_next'), Index(fields=['chat_key', 'status', 'id'], name='inbox_chat_status')], 'pk_attr': 'id', 'table_description': 'A Telegram update, committed before Telegram is told it arrived, then handled from here.'},
            bases=['Model'],
        ),
    ]
