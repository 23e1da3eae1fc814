from django.db import migrations, models

# The note with which a job drawn by the tiny test model ended its message, before it said so as data: written out,
# since a migration must keep meaning what it meant when the code changes.
TINY_MODEL_NOTE = "(tiny model: images are noise)"


def mark_jobs_of_the_tiny_model(apps, schema_editor):
    """Jobs finished before the flag keep their noise warning: the job page read it from the message."""
    jobs = apps.get_model("generator", "GenerationJob")
    jobs.objects.filter(result_message__contains=TINY_MODEL_NOTE).update(tiny_model=True)


class Migration(migrations.Migration):

    dependencies = [
        ("generator", "0013_generationjob_picture_fights"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="tiny_model",
            field=models.BooleanField(default=False, editable=False,
                                      help_text="Drawn by the tiny test model: its candidates are noise"),
        ),
        # Backwards the column goes, and the message still says it.
        migrations.RunPython(mark_jobs_of_the_tiny_model, migrations.RunPython.noop),
    ]
