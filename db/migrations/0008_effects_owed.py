from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from db.models import NoticeStatus
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """Effects owed are rows: ticket events carry whether their effects were carried out
    (those recorded before this were: marked done), and notices to staff wait in their own
    table until sent (CreateModel, AddField, AddIndex, one UPDATE)."""

    dependencies = [('models', '0007_inbox_and_failed_sends')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Notice',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=120)),
                ('chats', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('text', fields.TextField(unique=False)),
                ('lane', fields.CharField(default='staff', max_length=10)),
                ('status', fields.CharEnumField(default=NoticeStatus.PENDING, description='PENDING: pending\nSENDING: sending\nSENT: sent\nFAILED: failed', enum_type=NoticeStatus, max_length=8)),
                ('attempts', fields.IntField(default=0)),
                ('next_try_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notice', 'app': 'models', 'indexes': [Index(fields=['status', 'next_try_at'], name='notice_status_next')], 'pk_attr': 'id', 'table_description': 'A message owed to staff because something was recorded, sent once by the sender.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='TicketEvent',
            name='effects_done_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='TicketEvent',
            index=Index(fields=['effects_done_at', 'id'], name='ticket_event_effects'),
        ),
        ops.RunSQL("UPDATE ticket_event SET effects_done_at = created_at "
                   "WHERE effects_done_at IS NULL"),
    ]
