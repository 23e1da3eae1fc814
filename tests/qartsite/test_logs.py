"""Logging's helpers (`qartsite.logs`), as settings.LOGGING installs them."""

from __future__ import annotations

import logging
import sys

import pytest
from django.test import Client

from campaigns.models import Campaign


@pytest.mark.django_db
def test_a_refused_request_is_logged_in_one_line_without_a_traceback(team_users, caplog):
    # Every viewer's 403 wrote a whole traceback to the web log.
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
    client = Client()
    client.force_login(team_users.viewer)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.post(f"/campaigns/{campaign.pk}/placements/new/", {"name": "x"}).status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert "Forbidden" in record.getMessage() and record.exc_info is None


def test_a_server_error_keeps_its_traceback():
    logger = logging.getLogger("django.request")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "Internal Server Error: /x", (),
                                   sys.exc_info(), extra={"status_code": 500})
    assert all(f.filter(record) for f in logger.filters) and logger.filters
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_an_error_report_shows_the_settings_urls_without_their_passwords(settings):
    # Django hides settings named like a secret, not a password inside a URL: DEBUG's error page and the 500 e-mails
    # showed REDIS_URL's and the queues' passwords whole.
    from django.views.debug import get_default_exception_reporter_filter

    settings.REDIS_URL = "redis://:s3cret@redis.internal:6379/0"
    settings.RQ_QUEUES = {"gpu": {"URL": "rediss://qart:s3cret@redis.internal:6380/0"}}
    settings.SITE_ROOT = "https://qart.example"
    shown = get_default_exception_reporter_filter().get_safe_settings()
    assert shown["REDIS_URL"] == "redis://:***@redis.internal:6379/0"
    assert shown["RQ_QUEUES"] == {"gpu": {"URL": "rediss://qart:***@redis.internal:6380/0"}}
    assert shown["SITE_ROOT"] == "https://qart.example"  # a URL without a password, as it is
    assert "s3cret" not in str(shown)
