from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    """A ticket's news to its owner is a notice too, retried like staff notices: its parse
    mode and the owner whose message log keeps it (AddField)."""

    dependencies = [('models', '0012_console_photos')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Notice',
            name='customer_id',
            field=fields.BigIntField(null=True, description="a notice to an owner (a ticket's news): kept in their message log once sent"),
        ),
        ops.AddField(
            model_name='Notice',
            name='log_kind',
            field=fields.CharField(default='', max_length=32),
        ),
        ops.AddField(
            model_name='Notice',
            name='parse_mode',
            field=fields.CharField(default='', max_length=8),
        ),
    ]
