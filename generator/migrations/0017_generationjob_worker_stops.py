from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("generator", "0016_tiny_model_note_dropped"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="worker_stops",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False, help_text="Runs that a stop of its worker interrupted, spending no attempt"),
        ),
    ]
