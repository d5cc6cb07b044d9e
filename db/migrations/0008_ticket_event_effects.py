from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """Ticket events carry whether their effects were carried out: those recorded before
    this were (AddField, AddIndex, and the events already there marked done)."""

    dependencies = [('models', '0007_inbox_and_failed_sends')]

    initial = False

    operations = [
        ops.AddField(
            model_name='TicketEvent',
            name='effects_done_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='TicketEvent',
            index=Index(fields=['effects_done_at', 'id'], name='ticket_event_effects'),
        ),
        ops.RunSQL("UPDATE ticket_event SET effects_done_at = created_at "
                   "WHERE effects_done_at IS NULL"),
    ]
