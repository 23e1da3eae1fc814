from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("generator", "0017_generationjob_worker_stops"),
    ]

    operations = [
        migrations.AlterField(
            model_name="generationpreset",
            name="params",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
