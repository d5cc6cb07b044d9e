from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """A survey's kept comments and re-asks are read on every score: an index lookup by
    touchpoint, not a scan of the whole message log (AddIndex only)."""

    dependencies = [('models', '0005_console_indexes')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='MessageLog',
            index=Index(fields=['touchpoint_id', 'kind'], name='message_log_touchpoint'),
        ),
    ]
