from django.db import migrations
from django.db.models import Value
from django.db.models.functions import Concat, Replace

# The note a tiny-model job's message ended with, written out: a migration must keep meaning what it meant. The
# job's `tiny_model` flag says it (the page's banner, the API), and the page showed both: "noise" twice.
TINY_MODEL_NOTE = " (tiny model: images are noise)"


def drop_the_note(apps, schema_editor):
    jobs = apps.get_model("generator", "GenerationJob")
    jobs.objects.filter(tiny_model=True, result_message__contains=TINY_MODEL_NOTE).update(
        result_message=Replace("result_message", Value(TINY_MODEL_NOTE), Value("")))


def put_the_note_back(apps, schema_editor):
    """Backwards the note returns: 0014 going forward again sets the flag from it."""
    jobs = apps.get_model("generator", "GenerationJob")
    jobs.objects.filter(tiny_model=True).exclude(result_message="").exclude(
        result_message__contains=TINY_MODEL_NOTE).update(
        result_message=Concat("result_message", Value(TINY_MODEL_NOTE)))


class Migration(migrations.Migration):

    dependencies = [
        ("generator", "0015_verifier_model_id_help"),
    ]

    operations = [
        migrations.RunPython(drop_the_note, put_the_note_back),
    ]
