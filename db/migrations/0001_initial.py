from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from db.models import Direction, StaffRole, TouchpointStatus, VehicleStatus, VisitKind
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Conversation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('telegram_user_id', fields.BigIntField(unique=True)),
                ('state', fields.CharField(default='', max_length=32)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'conversation', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Dialogue state per Telegram user, kept in the database so a restart or another'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Customer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('phone', fields.CharField(unique=True, max_length=20)),
                ('birthday', fields.DateField(null=True)),
                ('licence_expiry', fields.DateField(null=True)),
                ('language', fields.CharField(default='zh_CN', max_length=8)),
                ('advisor', fields.CharField(default='', max_length=100)),
                ('link_token', fields.CharField(unique=True, max_length=64)),
                ('telegram_user_id', fields.BigIntField(null=True, unique=True)),
                ('telegram_chat_id', fields.BigIntField(null=True)),
                ('linked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('unreachable_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('followups_refused', fields.BooleanField(default=False)),
                ('followups_refused_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('marketing_consent', fields.BooleanField(default=False)),
                ('marketing_consent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('marketing_consent_source', fields.CharField(default='', max_length=50)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'customer', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An owner. Identified by phone. Two owners with the same name are two people.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Staff',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('telegram_id', fields.BigIntField(null=True, unique=True)),
                ('name', fields.CharField(max_length=100)),
                ('role', fields.CharEnumField(description='AGENT: agent\nADVISOR: advisor\nSUPERVISOR: supervisor\nMANAGER: manager\nMARKETING: marketing\nADMIN: admin', enum_type=StaffRole, max_length=12)),
                ('active', fields.BooleanField(default=True)),
                ('password_hash', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'staff', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Vehicle',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vin', fields.CharField(unique=True, max_length=17)),
                ('plate', fields.CharField(default='', max_length=20)),
                ('model', fields.CharField(default='', max_length=100)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='vehicles', on_delete=OnDelete.RESTRICT)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sales_advisor', fields.CharField(default='', max_length=100)),
                ('insurance_expiry', fields.DateField(null=True)),
                ('mileage', fields.IntField(null=True)),
                ('status', fields.CharEnumField(default=VehicleStatus.ACTIVE, description='ACTIVE: active\nTRANSFERRED: transferred\nSCRAPPED: scrapped', enum_type=VehicleStatus, max_length=12)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'vehicle', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One car, one file. The VIN is unique.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Touchpoint',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='touchpoints', on_delete=OnDelete.CASCADE)),
                ('vehicle', fields.ForeignKeyField('models.Vehicle', source_field='vehicle_id', null=True, db_constraint=True, to_field='id', related_name='touchpoints', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(max_length=32)),
                ('occasion_key', fields.CharField(max_length=64)),
                ('priority', fields.SmallIntField(default=0)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=TouchpointStatus.PENDING, description='PENDING: pending\nSENDING: sending\nSENT: sent\nEXPIRED: expired\nSKIPPED: skipped\nUNREACHABLE: unreachable\nFAILED: failed', enum_type=TouchpointStatus, max_length=12)),
                ('status_reason', fields.CharField(default='', max_length=200)),
                ('attempts', fields.SmallIntField(default=0)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('telegram_message_id', fields.BigIntField(null=True)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'touchpoint', 'app': 'models', 'unique_together': (('customer', 'kind', 'occasion_key'),), 'indexes': [Index(fields=['status', 'due_at'], name='touchpoint_status_due')], 'pk_attr': 'id', 'table_description': 'A row of the outbox: one message owed to one owner, sent at most once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MessageLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.SET_NULL)),
                ('touchpoint', fields.ForeignKeyField('models.Touchpoint', source_field='touchpoint_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.SET_NULL)),
                ('direction', fields.CharEnumField(description='OUT: out\nIN: in', enum_type=Direction, max_length=3)),
                ('chat_id', fields.BigIntField()),
                ('telegram_message_id', fields.BigIntField(null=True)),
                ('kind', fields.CharField(default='', max_length=32)),
                ('text', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'message_log', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'created_at'], name='message_log_customer')], 'pk_attr': 'id', 'table_description': "Everything said to and by an owner, kept (the seeds' call logs and letter registers)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Visit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vehicle', fields.ForeignKeyField('models.Vehicle', source_field='vehicle_id', db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='FIRST_SERVICE: first_service\nMAINTENANCE: maintenance\nREPAIR: repair\nWARRANTY: warranty\nACCIDENT: accident', enum_type=VisitKind, max_length=16)),
                ('advisor', fields.CharField(default='', max_length=100)),
                ('left_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('mileage', fields.IntField(null=True)),
                ('major_repair', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'visit', 'app': 'models', 'unique_together': (('vehicle', 'left_at', 'kind'),), 'pk_attr': 'id', 'table_description': 'A workshop visit. Its follow-up is written when it is recorded.'},
            bases=['Model'],
        ),
    ]
