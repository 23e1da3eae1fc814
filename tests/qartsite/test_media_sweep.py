"""qartsite.media_sweep and `manage.py qart_media_sweep`: media no row names, found and deleted once a day old; on
the filesystem and on the S3 server."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from generator.models import Candidate
from qartsite import media, media_sweep
from tests.qartsite.conftest import png_bytes

pytestmark = pytest.mark.django_db
LATER = timedelta(days=2)


def orphan(name: str) -> str:
    return default_storage.save(name, ContentFile(png_bytes(50)))


def test_it_deletes_what_no_row_names_once_a_day_old_and_keeps_every_named_file(files):
    job_gone = orphan("generations/999/candidate-00-seed1.png")  # a deleted job's candidate
    retried = orphan("generations/control/control-7.png")  # a first attempt's control image
    extra = Candidate(job=files.job, index=1, seed=124, scan_probability=0.2, verdict="fail", rank=2)
    extra.image.save("candidate-01-seed124.png", ContentFile(png_bytes(35)))
    gone = extra.image.name
    extra.delete()  # its row goes, its file stays

    young = media_sweep.sweep(default_storage, delete=True)  # all of them younger than a day: left for later
    assert young.orphans == [] and young.young == 3 and young.deleted == 0 and young.files == 8

    listed = media_sweep.sweep(default_storage, delete=False, now=timezone.now() + LATER)
    assert sorted(listed.orphans) == sorted([job_gone, retried, gone]) and listed.deleted == 0
    assert all(default_storage.exists(name) for name in listed.orphans)

    swept = media_sweep.sweep(default_storage, delete=True, now=timezone.now() + LATER)
    assert swept.deleted == 3 and not any(default_storage.exists(name) for name in (job_gone, retried, gone))
    assert all(default_storage.exists(field.name) for field in files.fields.values())


def test_it_holds_back_when_most_files_look_orphaned_or_the_database_names_none(files, monkeypatch):
    # A worker on the wrong (or an empty) database sees every file as an orphan: the upkeep must not empty the bucket.
    later = timezone.now() + LATER
    for i in range(5):
        orphan(f"generations/999/candidate-0{i}-seed1.png")  # 5 orphans beside 5 named files: half, not over
    swept = media_sweep.sweep(default_storage, delete=False, now=later)
    assert len(swept.orphans) == 5 and swept.files == 10 and not swept.held
    orphan("generations/999/candidate-05-seed1.png")  # 6 of 11: over half
    held = media_sweep.sweep(default_storage, delete=True, now=later)
    assert held.deleted == 0 and "Held back: 6 of 11 files are named by no row, and more than 50% of them" in str(held)

    monkeypatch.setattr(media_sweep, "named_files", lambda: {})  # an empty database: even one orphan is held
    for field in files.fields.values():
        field.delete(save=False)
    only = media_sweep.sweep(default_storage, delete=True, now=later)
    assert only.deleted == 0 and "the database names no file at all" in only.held
    unguarded = media_sweep.sweep(default_storage, delete=True, guard=False, now=later)
    assert unguarded.deleted == 6  # a person running the command decides


def test_every_file_field_stores_under_a_swept_folder():
    for owner in media.OWNERS:  # where a new row of each field would store its file
        field = owner.model._meta.get_field(owner.field)
        name = field.generate_filename(owner.model(), "x.png")
        assert name.split("/", 1)[0] in media_sweep.FOLDERS, (owner, name)


def test_the_command_lists_then_deletes_and_says_so(files, monkeypatch):
    name = orphan("labeling/item-gone.png")
    monkeypatch.setattr(media_sweep, "MIN_AGE", timedelta(0))
    out = StringIO()
    call_command("qart_media_sweep", stdout=out)
    assert out.getvalue().splitlines()[0] == name and "Run with --delete to delete them." in out.getvalue()
    assert default_storage.exists(name)
    out = StringIO()
    call_command("qart_media_sweep", "--delete", stdout=out)
    assert "1 deleted." in out.getvalue() and not default_storage.exists(name)


def test_the_command_says_the_storage_is_away_in_one_line(unreachable_media):
    with pytest.raises(CommandError, match="The media storage does not answer: .*Nothing more was deleted"):
        call_command("qart_media_sweep")


def test_it_asks_a_bucket_that_does_not_answer_once_and_briefly(frozen_bucket, monkeypatch):
    # Its listing waited out a worker's timeouts and tries on a frozen bucket: 22-25 s before the command's one line
    # (a fault drill). The bucket is asked first, once, within the probe's timeout.
    from qartsite import storage

    monkeypatch.setattr(storage.S3MediaStorage, "web", False)  # a command's storage (an earlier test may load the web)
    monkeypatch.setattr(storage, "PROBE_TIMEOUT", 0.3)
    monkeypatch.setattr(storage, "READ_TIMEOUT", 0.3)  # the listing's, were it asked
    with pytest.raises(CommandError, match="does not answer: Read timeout on endpoint URL.*Nothing more was deleted"):
        call_command("qart_media_sweep")
    assert len(frozen_bucket) == 1  # the probe, and no listing after it
