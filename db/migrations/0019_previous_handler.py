from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    """Who handled a ticket before it was escalated (issue 18, 003 §2.3.3): they stay on it
    and may still answer and resolve while the next level takes charge."""

    dependencies = [('models', '0018_script_edits')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Ticket',
            name='previous_handler',
            field=fields.ForeignKeyField('models.Staff', source_field='previous_handler_id', null=True, db_constraint=True, to_field='id', related_name='tickets_handled_before', on_delete=OnDelete.SET_NULL),
        ),
    ]
