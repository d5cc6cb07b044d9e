from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0002_kpi_indexes')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Staff',
            name='login',
            field=fields.CharField(null=True, unique=True, max_length=50),
        ),
        ops.AddField(
            model_name='Staff',
            name='language',
            field=fields.CharField(default='zh_CN', max_length=8),
        ),
        ops.AddField(
            model_name='Staff',
            name='failed_logins',
            field=fields.SmallIntField(default=0),
        ),
        ops.AddField(
            model_name='Staff',
            name='locked_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Staff',
            name='last_login_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.CreateModel(
            name='AuditLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='audit_entries', on_delete=OnDelete.SET_NULL)),
                ('action', fields.CharField(max_length=40)),
                ('target', fields.CharField(default='', max_length=60)),
                ('detail', fields.JSONField(default=dict)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'audit_log', 'app': 'models', 'indexes': [Index(fields=['target', 'created_at'], name='audit_target')], 'pk_attr': 'id', 'table_description': 'Who changed what in the console, and when: contact details, consents, staff, scripts.'},
            bases=['Model'],
        ),
    ]
