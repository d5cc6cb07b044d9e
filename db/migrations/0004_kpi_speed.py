from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """KPI report speed: covering indexes for the follow-ups, scores and owners served
    (bot/kpi.py, docs/kpi.md). The 0002 indexes they supersede are dropped (DROP INDEX
    only: no table is rebuilt)."""

    dependencies = [('models', '0003_console')]  # noqa: RUF012 (the framework's style)

    initial = False

    operations = [  # noqa: RUF012
        ops.RemoveIndex(model_name='Score', name='score_kpi'),
        ops.RemoveIndex(model_name='Touchpoint', name='touchpoint_kind_due'),
        ops.RemoveIndex(model_name='Vehicle', name='vehicle_delivered'),
        ops.RemoveIndex(model_name='Visit', name='visit_left'),
        ops.AddIndex(
            model_name='Score',
            index=Index(fields=['rates', 'superseded_at', 'score', 'first_answered_at', 'category', 'advisor'], name='score_csi'),
        ),
        ops.AddIndex(
            model_name='Score',
            index=Index(fields=['customer_id', 'score', 'superseded_at', 'rates', 'first_answered_at'], name='score_customer'),
        ),
        ops.AddIndex(
            model_name='Touchpoint',
            index=Index(fields=['kind', 'status', 'due_at', 'status_reason', 'customer_id'], name='touchpoint_kpi'),
        ),
        ops.AddIndex(
            model_name='Touchpoint',
            index=Index(fields=['kind', 'status', 'id', 'due_at'], name='touchpoint_answered'),
        ),
        ops.AddIndex(
            model_name='Vehicle',
            index=Index(fields=['delivered_at', 'customer_id'], name='vehicle_delivered_owner'),
        ),
        ops.AddIndex(
            model_name='Vehicle',
            index=Index(fields=['customer_id', 'delivered_at'], name='vehicle_customer'),
        ),
        ops.AddIndex(
            model_name='Visit',
            index=Index(fields=['left_at', 'vehicle_id'], name='visit_left_vehicle'),
        ),
    ]
