"""`manage.py qart_media_copy`: the media the database names, from the filesystem into the bucket (and back), each
copy checked, idempotent and resumable, and no row changed before its object is verified."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from generator.models import Candidate, GenerationJob, LabelingItem, LabelingSession, Prompt
from qartsite.management.commands import qart_media_copy
from qartsite.storage import MediaUnavailable
from tests.conftest import ON_S3_ONLY, use_missing_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_disk(team_users) -> SimpleNamespace:
    """Media as a one-host install has it: four files on the filesystem, each named by a row."""
    disk = storages["filesystem"]
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt, content="x",
                                       control_image=disk.save("generations/control/control-1.png",
                                                               ContentFile(b"control bytes")),
                                       init_image=disk.save("generations/init/picture-1.png",
                                                            ContentFile(b"picture bytes")))
    candidate = Candidate.objects.create(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass", rank=1,
                                         image=disk.save(f"generations/{job.pk}/candidate-00-seed1.png",
                                                         ContentFile(b"candidate bytes")))
    session = LabelingSession.objects.create(name="Friday", team=team_users.team)
    item = LabelingItem.objects.create(session=session, candidate=candidate,
                                       image=disk.save("labeling/1-0.png", ContentFile(b"labeling bytes")))
    return SimpleNamespace(job=job, candidate=candidate, item=item, names={
        job.control_image.name: b"control bytes", job.init_image.name: b"picture bytes",
        candidate.image.name: b"candidate bytes", item.image.name: b"labeling bytes",
    })


def copy(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("qart_media_copy", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def read(storage, name: str) -> bytes:
    with storage.open(name, "rb") as stored:
        return stored.read()


def bucket_names(bucket, folder: str = "") -> list[str]:
    folders, files = bucket.listdir(folder)
    return sorted([f"{folder}{name}" for name in files] +
                  [name for sub in folders for name in bucket_names(bucket, f"{folder}{sub}/")])


@ON_S3_ONLY
def test_it_copies_every_named_file_into_the_bucket_and_checks_it(media_storage, on_disk):
    out, err = copy("--to", "s3")

    bucket = storages["s3"]
    assert {name: read(bucket, name) for name in on_disk.names} == on_disk.names
    assert "4 files named in the database, from filesystem to s3." in out
    assert "Done: 4 copied, 0 already there, 0 copied under a new name, 0 missing from filesystem, 0 not copied." in out
    assert err == ""
    on_disk.candidate.refresh_from_db()
    assert on_disk.candidate.image.name == f"generations/{on_disk.job.pk}/candidate-00-seed1.png"  # no row changed


@ON_S3_ONLY
def test_it_copies_nothing_twice(media_storage, on_disk):
    copy("--to", "s3")
    before = bucket_names(storages["s3"])

    out, _ = copy("--to", "s3")

    assert "Done: 0 copied, 4 already there," in out and bucket_names(storages["s3"]) == before


@ON_S3_ONLY
def test_it_goes_on_where_a_stopped_run_left_off(media_storage, on_disk, monkeypatch):
    copy_file, tried = qart_media_copy.copy_file, []

    def bucket_goes_away_on_the_third(source, destination, name, max_length):
        tried.append(name)
        if len(tried) == 3:
            raise MediaUnavailable("The media storage could not store it: the bucket went away")
        return copy_file(source, destination, name, max_length)

    monkeypatch.setattr(qart_media_copy, "copy_file", bucket_goes_away_on_the_third)
    with pytest.raises(CommandError, match="the bucket went away\nStopped: no more files were started"):
        copy("--to", "s3", "--jobs", "1")
    monkeypatch.undo()
    assert len(bucket_names(storages["s3"])) == 2

    out, _ = copy("--to", "s3")

    assert "Done: 2 copied, 2 already there," in out
    assert {name: read(storages["s3"], name) for name in on_disk.names} == on_disk.names


@ON_S3_ONLY
def test_it_gives_a_copy_a_new_name_where_the_bucket_holds_other_bytes_and_only_then_renames_the_row(
        media_storage, on_disk):
    bucket, name = storages["s3"], on_disk.candidate.image.name
    bucket.save(name, ContentFile(b"someone else's bytes"))

    out, _ = copy("--to", "s3")

    on_disk.candidate.refresh_from_db()
    renamed = on_disk.candidate.image.name
    assert renamed != name and renamed.startswith(f"generations/{on_disk.job.pk}/candidate-00-seed1_")
    assert read(bucket, renamed) == b"candidate bytes" and read(bucket, name) == b"someone else's bytes"
    assert f"copied as {renamed}, and the rows now name that" in out
    assert "Done: 3 copied, 0 already there, 1 copied under a new name," in out


@ON_S3_ONLY
def test_it_changes_no_row_and_keeps_no_copy_it_could_not_verify(media_storage, on_disk, monkeypatch):
    bucket, name = storages["s3"], on_disk.candidate.image.name
    bucket.save(name, ContentFile(b"someone else's bytes"))  # so that the copy would get a new name
    monkeypatch.setattr(qart_media_copy, "holds", lambda storage, name, md5: False)  # every copy reads back wrong

    with pytest.raises(CommandError, match="4 files could not be copied"):
        copy("--to", "s3")

    on_disk.candidate.refresh_from_db()
    assert on_disk.candidate.image.name == name
    assert bucket_names(bucket) == [name] and read(bucket, name) == b"someone else's bytes"


@ON_S3_ONLY
def test_it_names_files_missing_from_the_source_and_leaves_their_rows(media_storage, on_disk):
    storages["filesystem"].delete(on_disk.item.image.name)

    out, err = copy("--to", "s3")

    assert err == f"{on_disk.item.image.name}: not in filesystem; its rows are unchanged\n"
    assert "Done: 3 copied, 0 already there, 0 copied under a new name, 1 missing from filesystem," in out
    on_disk.item.refresh_from_db()
    assert on_disk.item.image.name == "labeling/1-0.png"


@ON_S3_ONLY
def test_it_copies_back_to_the_filesystem(media_storage, on_disk, _media_root):
    copy("--to", "s3")
    for path in _media_root.rglob("*.png"):
        path.unlink()

    out, _ = copy("--to", "filesystem")

    assert "Done: 4 copied," in out
    assert {name: read(storages["filesystem"], name) for name in on_disk.names} == on_disk.names


def test_it_needs_a_bucket(settings):
    settings.STORAGES = {**settings.STORAGES, "s3": {"BACKEND": "qartsite.storage.S3MediaStorage",
                                                     "OPTIONS": {"bucket_name": ""}}}
    with pytest.raises(CommandError, match="Set MEDIA_S3_BUCKET"):
        copy("--to", "s3")


@ON_S3_ONLY
def test_it_names_a_bucket_that_is_not_there(media_storage, on_disk, settings, monkeypatch):
    # A typo in MEDIA_S3_BUCKET: the command's one message quotes the name as every message quotes a value.
    bucket = use_missing_bucket(media_storage, settings, monkeypatch)
    with pytest.raises(CommandError, match=f"^The media storage has no bucket “{bucket}”: check "
                                           "MEDIA_S3_BUCKET \\(and MEDIA_S3_ENDPOINT_URL\\)\\.\nStopped: "):
        copy("--to", "s3")


def test_it_stops_at_once_when_the_bucket_cannot_be_reached(unreachable_media, team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    storages["filesystem"].save("generations/init/p.png", ContentFile(b"picture bytes"))
    GenerationJob.objects.create(owner=team_users.owner, prompt=prompt, content="x",
                                 init_image="generations/init/p.png")

    with pytest.raises(CommandError, match="The media storage could not look up “generations/init/p.png”.*\n"
                                           "Stopped: no more files were started. Run the command again once the "
                                           "storage is back; what it copied is kept and not copied again."):
        copy("--to", "s3")
