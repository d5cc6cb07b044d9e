from tortoise import migrations
from tortoise.migrations import operations as ops
from db.models.bookings import BookingChannel, BookingKind, BookingStatus
from tortoise import fields
from tortoise.indexes import Index

class _DescriptionOnly(ops.AlterField):
    """New enum members change only the field's description (Python-side metadata): the
    column stays as it is, so nothing runs on the database (SQLite would rebuild the table
    and drop its indexes)."""

    async def database_forward(self, *args: object, **kwargs: object) -> None:
        return None

    async def database_backward(self, *args: object, **kwargs: object) -> None:
        return None


class Migration(migrations.Migration):
    """Bookings with capacity (issue 17): the job kinds repair, inspection and other, the
    statuses arrived and no-show, the note and photo of a repair, how and by whom it was
    booked, who marked it, an index for a slot's places taken, and the half-day slot names
    bookings had before slots were the dealership's turned into the default slots' starts."""
    dependencies = [('models', '0014_call_list')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='Booking',
            options={'table': 'booking', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'status'], name='booking_customer_status'), Index(fields=['vehicle_id', 'kind', 'status'], name='booking_vehicle_kind'), Index(fields=['day', 'slot', 'kind'], name='booking_day_slot')], 'pk_attr': 'id', 'table_description': 'A workshop appointment (002 §3.1), made by the owner or by staff for them.'},
        ),
        _DescriptionOnly(
            model_name='Booking',
            name='kind',
            field=fields.CharEnumField(description='FIRST_SERVICE: first_service\nMAINTENANCE: maintenance\nREPAIR: repair\nINSPECTION: inspection\nOTHER: other', enum_type=BookingKind, max_length=16),
        ),
        _DescriptionOnly(
            model_name='Booking',
            name='status',
            field=fields.CharEnumField(default=BookingStatus.BOOKED, description='BOOKED: booked\nCANCELLED: cancelled\nARRIVED: arrived\nNO_SHOW: no_show', enum_type=BookingStatus, max_length=12),
        ),
        ops.AddField(
            model_name='Booking',
            name='channel',
            field=fields.CharEnumField(default=BookingChannel.BOT, description='BOT: bot\nPHONE: phone\nWALK_IN: walk_in', enum_type=BookingChannel, max_length=12),
        ),
        ops.AddField(
            model_name='Booking',
            name='created_by_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='marked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Booking',
            name='marked_by_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='note',
            field=fields.TextField(default='', description="what the owner or staff said about the job (a repair's symptoms), and a photo of it", unique=False),
        ),
        ops.AddField(
            model_name='Booking',
            name='photo_file_id',
            field=fields.CharField(default='', max_length=200),
        ),
        ops.AddIndex(
            model_name='Booking',
            index=Index(fields=['day', 'slot', 'kind'], name='booking_day_slot'),
        ),
        ops.RunSQL(["UPDATE booking SET slot = '09:00' WHERE slot = 'morning'",
                    "UPDATE booking SET slot = '13:30' WHERE slot = 'afternoon'"]),
    ]
