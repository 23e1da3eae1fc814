"""The Content-Security-Policy middleware (qartsite.content_policy): django-csp's headers, the usual one kept."""

from __future__ import annotations

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, SELF
from csp.decorators import csp_exempt, csp_update
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.http import HttpResponse

from qartsite.content_policy import ContentPolicyMiddleware


def answer(view=None):
    """Both middlewares around the same view: (django-csp's response, ours)."""
    view = view or (lambda request: HttpResponse("ok"))
    return CSPMiddleware(view), ContentPolicyMiddleware(view)


def parts(value: str) -> set[str]:
    return {part.strip() for part in value.split(";")}


def test_the_usual_response_gets_django_csps_header(rf):
    theirs, ours = answer()
    assert parts(ours(rf.get("/campaigns/"))[HEADER]) == parts(theirs(rf.get("/campaigns/"))[HEADER])
    assert HEADER_REPORT_ONLY not in ours(rf.get("/campaigns/"))


def test_a_nonce_used_by_the_page_is_in_its_header_and_a_fresh_one_per_request(rf):
    def page(request):
        return HttpResponse(f'<script nonce="{request.csp_nonce}">')

    _, ours = answer(page)
    first, second = ours(rf.get("/api/docs/")), ours(rf.get("/api/docs/"))
    for response in (first, second):
        nonce = response.content.decode().split('"')[1]
        assert f"'nonce-{nonce}'" in response[HEADER]
    assert first[HEADER] != second[HEADER]
    # the kept header never carries an earlier request's nonce
    _, plain = answer()
    assert "nonce-" not in plain(rf.get("/campaigns/"))[HEADER]


def test_a_nonce_asked_for_after_the_header_was_written_raises(rf):
    _, ours = answer()
    request = rf.get("/campaigns/")
    ours(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


def test_per_view_policies_and_exemptions_are_honoured(rf):
    _, ours = answer(csp_update({"img-src": ["https://images.example"]})(lambda request: HttpResponse("ok")))
    assert "https://images.example" in ours(rf.get("/campaigns/"))[HEADER]
    _, ours = answer(csp_exempt()(lambda request: HttpResponse("ok")))
    assert HEADER not in ours(rf.get("/campaigns/"))


def test_a_changed_setting_is_read_again(rf, settings):
    _, ours = answer()
    assert "https://cdn.example" not in ours(rf.get("/"))[HEADER]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [SELF, "https://cdn.example"]},
                                        "EXCLUDE_URL_PREFIXES": ["/r/"]}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": [SELF]}}
    response = ours(rf.get("/"))
    assert response[HEADER] == "default-src 'self' https://cdn.example"
    assert response[HEADER_REPORT_ONLY] == "default-src 'self'"
    assert HEADER not in ours(rf.get("/r/AbCd1234"))
