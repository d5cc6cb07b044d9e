from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """The console: sign-out ends every copy of the session (``staff.session_epoch``);
    customer search by name prefix and plate, an advisor's own owners, a
    handler's tickets, a ticket's conversation are index lookups (AddIndex only)."""

    dependencies = [('models', '0004_kpi_speed')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Staff',
            name='session_epoch',
            field=fields.IntField(default=0),
        ),
        ops.AddIndex(
            model_name='AuditLog',
            index=Index(fields=['action', 'created_at'], name='audit_action'),
        ),
        ops.AddIndex(
            model_name='Customer',
            index=Index(fields=['name'], name='customer_name'),
        ),
        ops.AddIndex(
            model_name='Vehicle',
            index=Index(fields=['plate'], name='vehicle_plate'),
        ),
        ops.AddIndex(
            model_name='Customer',
            index=Index(fields=['advisor'], name='customer_advisor'),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['handler_id', 'state'], name='ticket_handler'),
        ),
        ops.AddIndex(
            model_name='TicketMessage',
            index=Index(fields=['ticket_id', 'id'], name='ticket_message_ticket'),
        ),
    ]
