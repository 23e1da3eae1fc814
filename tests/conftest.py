"""Suite-wide fixtures. Kept light: anything specific to one area belongs in that area's tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploads and generated images go to a per-test folder, never to var/media."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    return media


@pytest.fixture(autouse=True)
def _scan_buffer_keys(settings, tmp_path):
    """Scans of short links go to this test's own Redis keys and spool folder: never to the real stream (a running
    drainer would store them in its database) nor to var/spool."""
    settings.QART = {**settings.QART, "REDIS_PREFIX": f"qart-test-{uuid.uuid4().hex[:12]}:",
                     "SPOOL_DIR": tmp_path / "spool"}


@pytest.fixture
def team_users(db):
    """The shared cast for access tests: an owner and a teammate (editor) and a viewer of one team, and an
    outsider who owns another team."""
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model

    from qartsite.models import Membership, Team

    users = get_user_model().objects
    team, other = Team.objects.create(name="Acme"), Team.objects.create(name="Rival")
    cast = SimpleNamespace(
        team=team,
        other_team=other,
        owner=users.create_user("owner", password="pw-owner-1"),
        teammate=users.create_user("teammate", password="pw-teammate-1"),
        viewer=users.create_user("viewer", password="pw-viewer-1"),
        outsider=users.create_user("outsider", password="pw-outsider-1"),
    )
    Membership.objects.create(team=team, user=cast.owner, role="owner")
    Membership.objects.create(team=team, user=cast.teammate, role="editor")
    Membership.objects.create(team=team, user=cast.viewer, role="viewer")
    Membership.objects.create(team=other, user=cast.outsider, role="owner")
    return cast


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests make many users; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
