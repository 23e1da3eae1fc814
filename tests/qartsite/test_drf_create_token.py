"""DRF's drf_create_token, retired by qartsite's command of that name: it points to qart_token and stores nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_it_points_to_qart_token_and_stores_no_plain_text_token(team_users):
    with pytest.raises(CommandError, match="python manage.py qart_token USER"):
        call_command("drf_create_token", "owner", stdout=StringIO())
    assert not Token.objects.exists()
