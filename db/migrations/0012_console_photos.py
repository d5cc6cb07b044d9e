from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    """A photo sent from the console is kept with its answer until Telegram took it; a
    conversation remembers when the owner was acknowledged (AddField)."""

    dependencies = [('models', '0011_canned_replies')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Thread',
            name='acknowledged_at',
            field=fields.DatetimeField(null=True, description='when the owner was told a person will answer (owed until then, even after a crash)', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ThreadMessage',
            name='upload',
            field=fields.BinaryField(null=True, description='a photo uploaded on the console, kept until Telegram took it (then its file id is'),
        ),
    ]
