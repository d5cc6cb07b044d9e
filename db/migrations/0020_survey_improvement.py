from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    """What the owner said could be better, asked once after a good score (issue 16,
    point 3), kept with the score (AddField)."""

    dependencies = [('models', '0019_previous_handler')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Score',
            name='improvement',
            field=fields.TextField(default='', unique=False),
        ),
    ]
