from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    """Settings changed in the console kept in the database (issue 18 point 4), so every
    running instance uses a change without a restart: append-only rows (who, when), the
    newest id a version stamp."""

    dependencies = [('models', '0021_score_answers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SettingOverride',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(description='the Settings field (dealer_phone for CAREBOT_DEALER_PHONE)', max_length=64)),
                ('value', fields.TextField(null=True, description='the value as typed in the console, or null for back to the environment or default', unique=False)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='setting_overrides', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'setting_override', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One change (or reset) of a setting in the console. Rows are only ever added: an'},
            bases=['Model'],
        ),
    ]
