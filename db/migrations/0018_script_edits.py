from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    """Scripts edited in the console kept in the database (issue 18), so that every running
    instance uses an edit without a restart: append-only rows, the newest id a version stamp."""

    dependencies = [('models', '0017_owner_title')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScriptEdit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(max_length=64)),
                ('lang', fields.CharField(max_length=8)),
                ('text', fields.TextField(null=True, description="the template's new text, or null for back to the packaged (or folder) text", unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'script_edit', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One save (or revert) of a template in the console. Rows are only ever added: an'},
            bases=['Model'],
        ),
    ]
