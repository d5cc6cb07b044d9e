from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """A notice may carry a file (the reports' CSV, issue 17 point 5), sent as a document
    with the notice's text as its caption. (The service forecast's options are restated by
    makemigrations after 0014, unchanged: its primary key is its car.)"""

    dependencies = [('models', '0014_workshop')]

    initial = False

    operations = [
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
        ops.AlterModelOptions(
            name='ServiceForecast',
            options={'table': 'service_forecast', 'app': 'models', 'indexes': [Index(fields=['remind_on', 'due_on'], name='service_forecast_remind')], 'pk_attr': 'vehicle_id', 'table_description': "When a car's next service is due, worked out when a reading arrives (a visit, the"},
        ),
    ]
