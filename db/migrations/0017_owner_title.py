from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    """An owner's title (先生/女士, issue 18): scripts address 张先生 where the manuals'
    scripts do, from the import's 称呼/性别 column or the owner's own choice."""

    dependencies = [('models', '0016_workshop')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Customer',
            name='title',
            field=fields.CharField(default='', description='how scripts address the owner (先生/女士): "mr", "ms" or "" when not known', max_length=4),
        ),
    ]
