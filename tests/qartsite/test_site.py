"""qartsite.site: one rule for absolute links, SITE_ROOT when set, else the request's host."""

from __future__ import annotations

import pytest

from qartsite.site import absolute_url, site_root


@pytest.fixture
def lan_request(rf, settings):
    settings.ALLOWED_HOSTS = ["192.168.1.20"]
    return rf.get("/evals/", HTTP_HOST="192.168.1.20:8000")


def test_it_uses_the_request_host_without_a_site_root(lan_request, settings):
    settings.SITE_ROOT = ""
    assert site_root(lan_request) == "http://192.168.1.20:8000"
    assert absolute_url(lan_request, "/r/AbC123") == "http://192.168.1.20:8000/r/AbC123"


@pytest.mark.parametrize("root", ["https://qart.example", "http://127.0.0.1:8000"])
def test_it_always_uses_a_configured_site_root(lan_request, settings, root):
    # Whatever its value: the development address once counted as "unset", and no value should.
    settings.SITE_ROOT = root
    assert absolute_url(lan_request, "/l/tok") == f"{root}/l/tok"


def test_it_keeps_a_secure_request_secure(rf, settings):
    settings.SITE_ROOT = ""
    assert site_root(rf.get("/", secure=True)) == "https://testserver"
