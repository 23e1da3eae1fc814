"""A page's address without its trailing slash (`qartsite.paths.AppendSlashMiddleware`): a form sent there reaches
the page, method and body kept, in every mode. (The NUL checks of the same module: tests/qartsite/test_views.py.)"""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False])
def test_a_form_sent_without_the_trailing_slash_reaches_its_page(team_users, settings, debug):
    # Django's APPEND_SLASH answered this POST with a RuntimeError (a 500) under DEBUG and, without DEBUG, with a 301
    # that clients follow with a GET and no body: the sign-in page came back empty, nobody signed in.
    settings.DEBUG = debug
    client = Client()
    sign_in = {"username": "owner", "password": "pw-owner-1"}
    response = client.post("/accounts/login?next=/campaigns/", sign_in)
    assert response.status_code == 308 and response["Location"] == "/accounts/login/?next=/campaigns/"
    followed = client.post("/accounts/login?next=/campaigns/", sign_in, follow=True)
    assert followed.redirect_chain == [("/accounts/login/?next=/campaigns/", 308), ("/campaigns/", 302)]
    assert followed.status_code == 200 and followed.wsgi_request.user == team_users.owner


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_every_method_but_get_and_head_keeps_itself(settings, method):
    settings.DEBUG = True
    response = getattr(Client(), method)("/accounts/login")
    assert response.status_code == 308 and response["Location"] == "/accounts/login/"


@pytest.mark.parametrize("method", ["get", "head"])
def test_a_get_keeps_djangos_permanent_redirect(method):
    # Browsers remember a 301 and go straight to the page next time; a GET has no body to lose.
    response = getattr(Client(), method)("/accounts/login")
    assert response.status_code == 301 and response["Location"] == "/accounts/login/"


def test_an_address_with_no_page_even_with_its_slash_is_the_404():
    response = Client().post("/nowhere", {"a": "1"})
    assert response.status_code == 404
