from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Score',
            index=Index(fields=['first_answered_at', 'rates', 'superseded_at', 'score', 'category', 'customer_id'], name='score_kpi'),
        ),
        ops.AddIndex(
            model_name='Touchpoint',
            index=Index(fields=['kind', 'due_at'], name='touchpoint_kind_due'),
        ),
        ops.AddIndex(
            model_name='Vehicle',
            index=Index(fields=['delivered_at'], name='vehicle_delivered'),
        ),
        ops.AddIndex(
            model_name='Visit',
            index=Index(fields=['left_at'], name='visit_left'),
        ),
    ]
