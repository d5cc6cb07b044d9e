from tortoise import migrations
from tortoise.migrations import operations as ops
from db.models import ThreadKind, ThreadState
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """Conversations (issue 14): what an owner writes outside a dialogue reaches a person,
    with the messages it still owes; a console answer or note on a ticket waits to be
    mirrored in its topic (CreateModel, AddField, one UPDATE)."""

    dependencies = [('models', '0009_answers_owed')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Thread',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.CASCADE)),
                ('vehicle', fields.ForeignKeyField('models.Vehicle', source_field='vehicle_id', null=True, db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharEnumField(default=ThreadKind.INQUIRY, description='INQUIRY: inquiry\nINSURANCE_LEAD: insurance_lead\nBOOKING_REQUEST: booking_request\nCAMPAIGN_LEAD: campaign_lead', enum_type=ThreadKind, max_length=16)),
                ('state', fields.CharEnumField(default=ThreadState.OPEN, description='OPEN: open\nDONE: done', enum_type=ThreadState, max_length=8)),
                ('assignee', fields.ForeignKeyField('models.Staff', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.SET_NULL)),
                ('queue', fields.CharField(default='agent', max_length=12)),
                ('touchpoint', fields.ForeignKeyField('models.Touchpoint', source_field='touchpoint_id', null=True, description="the touchpoint or campaign message it answers (by Telegram's reply, or next after it)", db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.SET_NULL)),
                ('topic_thread_id', fields.BigIntField(null=True)),
                ('card_message_id', fields.BigIntField(null=True)),
                ('topic_closed', fields.BooleanField(default=False)),
                ('version', fields.IntField(default=1, description='every change counts one up, the topic and its card show ``synced_version``: a higher')),
                ('synced_version', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_in_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_out_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('first_answer_due', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('first_answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('breached_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('done_by', fields.ForeignKeyField('models.Staff', source_field='done_by_id', null=True, db_constraint=True, to_field='id', related_name='threads_done', on_delete=OnDelete.SET_NULL)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.SET_NULL)),
                ('outcome', fields.CharField(default='', max_length=20)),
                ('premium', fields.DecimalField(null=True, max_digits=12, decimal_places=2)),
                ('outcome_note', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'thread', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'state'], name='thread_customer_state'), Index(fields=['state', 'assignee_id', 'last_in_at'], name='thread_inbox'), Index(fields=['state', 'first_answer_due'], name='thread_due')], 'pk_attr': 'id', 'table_description': 'A conversation: what an owner wrote outside a running dialogue, open until a person'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ThreadMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('direction', fields.CharField(max_length=8)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='thread_messages', on_delete=OnDelete.SET_NULL)),
                ('text', fields.TextField(default='', unique=False)),
                ('media_kind', fields.CharField(default='', max_length=12)),
                ('media', fields.CharField(default='', max_length=200)),
                ('telegram_message_id', fields.BigIntField(null=True, description="the Telegram message it is (the owner's, or staff's in the topic): copied as media")),
                ('source', fields.CharField(null=True, unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('relayed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('mirrored_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('next_try_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'thread_message', 'app': 'models', 'indexes': [Index(fields=['thread_id', 'id'], name='thread_message_thread'), Index(fields=['relayed_at', 'direction'], name='thread_message_pending')], 'pk_attr': 'id', 'table_description': "One message of a conversation, and what it still owes: an owner's message waits to be"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='TicketMessage',
            name='mirrored_at',
            field=fields.DatetimeField(null=True, description="a console answer or note, still to be shown in the ticket's topic", auto_now=False, auto_now_add=False),
        ),
        # answers and notes recorded before this were shown where they were written
        ops.RunSQL("UPDATE ticket_message SET mirrored_at = created_at "
                   "WHERE mirrored_at IS NULL"),
    ]
