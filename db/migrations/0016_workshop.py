from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """The workshop side (issue 17): owners' odometer readings, each car's service forecast
    (due by time or mileage, read by the daily scan through its remind_on index), the
    repairs owners postponed (建议维修项目), and a notice's file (the reports' CSV, sent as
    a document with the notice's text as its caption)."""

    dependencies = [('models', '0015_bookings_capacity')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MileageReading',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('vehicle', fields.ForeignKeyField('models.Vehicle', source_field='vehicle_id', db_constraint=True, to_field='id', related_name='mileage_readings', on_delete=OnDelete.CASCADE)),
                ('read_on', fields.DateField()),
                ('km', fields.IntField()),
                ('source', fields.CharField(default='owner', max_length=12)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'mileage_reading', 'app': 'models', 'indexes': [Index(fields=['vehicle_id', 'read_on'], name='mileage_reading_vehicle')], 'pk_attr': 'id', 'table_description': 'An odometer reading the owner gave the bot (visits carry their own): kept, never'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecommendedRepair',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('visit', fields.ForeignKeyField('models.Visit', source_field='visit_id', db_constraint=True, to_field='id', related_name='recommended_repairs', on_delete=OnDelete.CASCADE)),
                ('vehicle_id', fields.IntField()),
                ('customer_id', fields.IntField()),
                ('item', fields.CharField(max_length=100)),
                ('recommended_on', fields.DateField()),
                ('remind_on', fields.DateField()),
                ('done_visit_id', fields.IntField(null=True)),
                ('done_on', fields.DateField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'recommended_repair', 'app': 'models', 'unique_together': (('visit', 'item'),), 'indexes': [Index(fields=['remind_on', 'done_on'], name='recommended_repair_remind'), Index(fields=['vehicle_id', 'done_on'], name='recommended_repair_vehicle')], 'pk_attr': 'id', 'table_description': 'Work the workshop recommended and the owner postponed (003 §3.2 用户维修项目提醒):'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ServiceForecast',
            fields=[
                ('vehicle', fields.OneToOneField('models.Vehicle', source_field='vehicle_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='service_forecast', on_delete=OnDelete.CASCADE)),
                ('customer_id', fields.IntField()),
                ('last_service_on', fields.DateField()),
                ('due_on', fields.DateField()),
                ('remind_on', fields.DateField()),
                ('by', fields.CharField(max_length=4)),
                ('due_km', fields.IntField(null=True)),
                ('interval_km', fields.IntField(default=0)),
                ('km_per_day', fields.FloatField(null=True)),
                ('cycle', fields.CharField(max_length=40)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'service_forecast', 'app': 'models', 'indexes': [Index(fields=['remind_on', 'due_on'], name='service_forecast_remind')], 'pk_attr': 'vehicle_id', 'table_description': "When a car's next service is due, worked out when a reading arrives (a visit, the"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Notice',
            name='document',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Notice',
            name='document_name',
            field=fields.CharField(default='', description="a file sent as a document with ``text`` as its caption (a report's CSV), when named", max_length=100),
        ),
        # restated once (Tortoise's state names a one-to-one key differently after
        # CreateModel), so later makemigrations find no change
        ops.AlterModelOptions(
            name='ServiceForecast',
            options={'table': 'service_forecast', 'app': 'models', 'indexes': [Index(fields=['remind_on', 'due_on'], name='service_forecast_remind')], 'pk_attr': 'vehicle_id', 'table_description': "When a car's next service is due, worked out when a reading arrives (a visit, the"},
        ),
    ]
