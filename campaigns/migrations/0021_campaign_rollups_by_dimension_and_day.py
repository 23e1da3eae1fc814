from django.db import migrations, models

from qartsite.sql import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # the index is built CONCURRENTLY on PostgreSQL: the drainer's writes to the rollups go on meanwhile

    dependencies = [
        ('campaigns', '0020_placement_deployed_on_years'),
    ]

    operations = [
        AddIndexOnline(
            model_name='campaignrollup',
            index=models.Index(fields=['dimension', 'day', 'campaign'], include=('value', 'scans', 'visitors'), name='campaign_rollups_by_dim_day'),
        ),
    ]
