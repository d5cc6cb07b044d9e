from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Canned replies (issue 14, point 3): the dealer's library of ready answers, one row per
    short name and language; the defaults are written on first use (``bot.canned``)
    (CreateModel)."""

    dependencies = [('models', '0010_threads')]  # noqa: RUF012 (Tortoise's form)

    initial = False

    operations = [  # noqa: RUF012
        ops.CreateModel(
            name='CannedReply',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=32)),
                ('language', fields.CharField(max_length=8)),
                ('title', fields.CharField(default='', max_length=100)),
                ('text', fields.TextField(unique=False)),
                ('active', fields.BooleanField(default=True)),
                ('updated_by', fields.ForeignKeyField('models.Staff', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name='canned_replies', on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'canned_reply', 'app': 'models', 'unique_together': (('name', 'language'),), 'pk_attr': 'id', 'table_description': "A ready answer staff pick by its short name (the console's picker, ``/r name`` in a"},
            bases=['Model'],
        ),
    ]
