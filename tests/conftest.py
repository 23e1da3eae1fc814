"""Suite-wide fixtures. Kept light: anything specific to one area belongs in that area's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploads and generated images go to a per-test folder, never to var/media."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    return media
