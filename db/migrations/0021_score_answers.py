from tortoise import migrations
from tortoise.migrations import operations as ops
from db.models.scores import ScoreRates
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """Questionnaires (issue 16 point 2): each question answered or skipped is a row, so
    reports can count each question's answers; the overall score stays in score."""

    dependencies = [('models', '0020_survey_improvement')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScoreAnswer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('touchpoint', fields.ForeignKeyField('models.Touchpoint', source_field='touchpoint_id', db_constraint=True, to_field='id', related_name='answers', on_delete=OnDelete.CASCADE)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='answers', on_delete=OnDelete.CASCADE)),
                ('rates', fields.CharEnumField(description='DELIVERY: delivery\nVISIT: visit\nCOMPLAINT: complaint', enum_type=ScoreRates, max_length=10)),
                ('kind', fields.CharField(max_length=16)),
                ('question', fields.CharField(max_length=24)),
                ('position', fields.SmallIntField()),
                ('dimension', fields.CharField(default='', max_length=24)),
                ('choice', fields.CharField(default='', max_length=16)),
                ('value', fields.SmallIntField(null=True)),
                ('skipped', fields.BooleanField(default=False)),
                ('source', fields.CharField(default='button', max_length=8)),
                ('answered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'score_answer', 'app': 'models', 'unique_together': (('touchpoint_id', 'question'),), 'indexes': [Index(fields=['answered_at', 'kind', 'question', 'choice'], name='answer_report')], 'pk_attr': 'id', 'table_description': "One question of a survey's questionnaire answered (or skipped) by the owner, in"},
            bases=['Model'],
        ),
    ]
