"""Large print files' bookkeeping (`campaigns.print_builds`); the download flow is in test_views.py
(TestPrintDownloads) and the browser's in tests/e2e/test_print_flow.py."""

from __future__ import annotations

import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from campaigns import print_builds


@pytest.mark.django_db
def test_made_files_are_deleted_a_day_later(media_storage):
    name = default_storage.save(f"{print_builds.FOLDER}/made.png", ContentFile(b"png"))
    assert print_builds.forget_old_files() == 0 and default_storage.exists(name)
    later = time.time() + print_builds.KEEP_SECONDS + 2 * 3600
    assert print_builds.forget_old_files(now=later) == 1 and not default_storage.exists(name)


def test_no_folder_yet_is_nothing_to_delete(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                          "OPTIONS": {"location": str(tmp_path / "media")}}}
    assert print_builds.forget_old_files() == 0
