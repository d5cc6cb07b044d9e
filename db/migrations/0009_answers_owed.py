from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    """A staff answer is a row owed to the owner until Telegram took it (tries, next try,
    given up), and a ticket message keeps the Telegram message it came from, so handling an
    update twice records and relays it once (AddField)."""

    dependencies = [('models', '0008_effects_owed')]

    initial = False

    operations = [
        ops.AddField(
            model_name='TicketMessage',
            name='source',
            field=fields.CharField(null=True, unique=True, description='the Telegram message it came from (``chat:message``), so an update handled twice', max_length=64),
        ),
        ops.AddField(
            model_name='TicketMessage',
            name='attempts',
            field=fields.IntField(default=0, description='a staff answer owed to the owner: tries so far, when to try next, when given up'),
        ),
        ops.AddField(
            model_name='TicketMessage',
            name='next_try_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='TicketMessage',
            name='failed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='TicketMessage',
            name='last_error',
            field=fields.CharField(default='', max_length=200),
        ),
    ]
