"""qartsite.site: one rule for absolute links, SITE_ROOT when set, else the request's host."""

from __future__ import annotations

import pytest

from qartsite.site import absolute_url, client_address, site_root, unreachable_reason


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


@pytest.mark.django_db
def test_the_apis_links_start_with_the_site_root_too(team_users, settings):
    # Location, next and previous, the root's links: the host the request came to (here "testserver"), while the
    # short links in the same answers started with SITE_ROOT.
    from campaigns.models import Campaign
    from tests.clients import api_as

    settings.SITE_ROOT = "https://qart.example"
    Campaign.objects.bulk_create(Campaign(team=team_users.team, name=f"C{i}", destination="https://a.example/")
                                 for i in range(51))
    client = api_as(team_users.owner)
    created = client.post("/api/campaigns/", {"name": "New", "destination": "https://a.example/"}, format="json")
    second = client.get("/api/campaigns/?page=2").json()
    links = [created["Location"], client.get("/api/campaigns/").json()["next"], second["previous"],
             *client.get("/api/").json().values()]
    assert [link for link in links if not link.startswith("https://qart.example/api/")] == []
    settings.SITE_ROOT = ""
    assert client.get("/api/campaigns/").json()["next"] == "http://testserver/api/campaigns/?page=2"


class TestSiteRootMiddleware:
    """SiteRootMiddleware sets Django's private `request._current_scheme_host`, what `build_absolute_uri` starts a
    path with: these fail if Django stops reading it, and hold that the request's own host still rules every check
    (CSRF, sign-in redirects), with SITE_ROOT on another host than the request's."""

    @pytest.fixture(autouse=True)
    def elsewhere(self, settings):
        settings.SITE_ROOT = "https://qart.example"

    @pytest.mark.parametrize("factory", ["rf", "async_rf"])
    def test_links_start_with_the_site_root_and_the_host_stays_the_requests(self, request, factory):
        from qartsite.site import SiteRootMiddleware

        seen = {}

        def view(req):
            seen.update(link=req.build_absolute_uri("/api/?page=2"), here=req.build_absolute_uri(),
                        host=req.get_host(), scheme=req.scheme)

        # WSGI's request and ASGI's alike (uvicorn serves `qartsite.asgi`).
        SiteRootMiddleware(view)(request.getfixturevalue(factory).get("/api/campaigns/?page=3"))
        assert seen == {"link": "https://qart.example/api/?page=2", "here": "https://qart.example/api/campaigns/?page=3",
                        "host": "testserver", "scheme": "http"}

    @pytest.mark.django_db
    def test_a_browsers_https_form_on_the_requests_host_passes_csrf(self, team_users):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.get("/accounts/login/", secure=True)
        sent = {"username": "owner", "password": "pw-owner-1",
                "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
        origin = {"HTTP_ORIGIN": "https://testserver", "HTTP_REFERER": "https://testserver/accounts/login/"}
        assert client.post("/accounts/login/", sent, secure=True, **origin).status_code == 302
        # Another site's page posting here is refused: the checks read the request's host, not SITE_ROOT's links.
        other = Client(enforce_csrf_checks=True)
        other.get("/accounts/login/", secure=True)
        sent["csrfmiddlewaretoken"] = other.cookies["csrftoken"].value
        assert other.post("/accounts/login/", sent, secure=True, HTTP_ORIGIN="https://evil.example").status_code == 403

    @pytest.mark.django_db
    def test_a_form_from_the_site_roots_host_needs_it_among_the_trusted_origins(self, team_users, settings):
        # Behind a proxy that rewrites Host, a browser on SITE_ROOT's page sends its Origin: .env.example says to
        # trust it, as SiteRootMiddleware changes no check.
        from django.test import Client

        def sign_in() -> int:
            client = Client(enforce_csrf_checks=True)
            client.get("/accounts/login/", secure=True)
            sent = {"username": "owner", "password": "pw-owner-1",
                    "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
            return client.post("/accounts/login/", sent, secure=True, HTTP_ORIGIN="https://qart.example").status_code

        assert sign_in() == 403
        settings.CSRF_TRUSTED_ORIGINS = ["https://qart.example"]
        assert sign_in() == 302

    @pytest.mark.django_db
    def test_sign_in_redirects_stay_on_the_site(self, client, team_users):
        assert client.get("/campaigns/")["Location"] == "/accounts/login/?next=/campaigns/"  # a path, not a host
        signed = client.post("/accounts/login/?next=https://evil.example/", {"username": "owner",
                                                                               "password": "pw-owner-1"})
        assert signed.status_code == 302 and signed["Location"] == "/campaigns/"


class TestClientAddress:
    @pytest.fixture
    def trusted(self, settings):
        settings.QART = {**settings.QART, "TRUST_PROXY": True, "TRUSTED_PROXY_COUNT": 1}
        return settings

    def address(self, rf, forwarded: str) -> str:
        return client_address(rf.get("/r/x", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded))

    def test_it_ignores_x_forwarded_for_unless_the_proxy_is_trusted(self, rf):
        assert self.address(rf, "203.0.113.9") == "10.0.0.1"

    def test_a_peer_mapped_into_ipv6_is_its_ipv4_address(self, rf):
        # gunicorn bound to [::] hands a dual-stack socket's IPv4 clients over so
        assert client_address(rf.get("/r/x", REMOTE_ADDR="::ffff:203.0.113.9")) == "203.0.113.9"
        assert client_address(rf.get("/r/x", REMOTE_ADDR="2001:db8::7")) == "2001:db8::7"
        assert client_address(rf.get("/r/x", REMOTE_ADDR="")) == ""

    def test_it_takes_the_right_most_hop_the_trusted_proxy_added(self, rf, trusted):
        # The client can write anything left of what our proxy appended.
        assert self.address(rf, "198.51.100.66, 203.0.113.9") == "203.0.113.9"
        assert self.address(rf, " 2001:db8::7 ") == "2001:db8::7"

    def test_it_counts_hops_from_the_right_for_several_proxies(self, rf, trusted):
        trusted.QART = {**trusted.QART, "TRUSTED_PROXY_COUNT": 2}
        assert self.address(rf, "198.51.100.66, 203.0.113.9, 10.0.0.2") == "203.0.113.9"
        assert self.address(rf, "203.0.113.9") == "10.0.0.1"  # fewer hops than proxies: not from them

    @pytest.mark.parametrize(("forwarded", "address"), [
        ("198.51.100.66, 203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ])
    def test_it_reads_a_hop_written_with_its_port_or_brackets(self, rf, trusted, forwarded, address):
        # Azure's proxies append "address:port": taken for no address, every client was the proxy's one address.
        assert self.address(rf, forwarded) == address

    @pytest.mark.parametrize("forwarded", ["", "unknown", "203.0.113.9, evil", "203.0.113.9, 10.0.0.300",
                                           "203.0.113.9, <script>", "203.0.113.9:http", "[evil]:80", ":80"])
    def test_it_falls_back_to_the_peer_when_the_hop_is_not_an_address(self, rf, trusted, forwarded):
        assert self.address(rf, forwarded) == "10.0.0.1"


class TestUnreachableReason:
    @pytest.mark.parametrize(("url", "words"), [
        ("http://127.0.0.1:8140/r/AbC12345", "loopback"),
        ("http://[::1]:8000/r/AbC12345", "loopback"),
        ("http://localhost:8000/r/AbC12345", "this machine itself"),
        ("http://0.0.0.0:8000/r/AbC12345", "no address a phone can open"),
        ("http://192.168.1.20:8000/r/AbC12345", "private network address"),
        ("http://10.0.0.5/r/AbC12345", "private network address"),
        ("http://qart.local/r/AbC12345", "only this network knows"),
        ("http://devbox:8000/r/AbC12345", "bare machine name"),
    ])
    def test_it_says_why_phones_cannot_open_a_local_link(self, url, words):
        reason = unreachable_reason(url)
        assert reason is not None and words in reason

    @pytest.mark.parametrize("url", ["https://qart.example/r/AbC12345", "http://93.184.215.14/r/x",
                                     "https://go.shop.example.com/r/x"])
    def test_it_passes_public_hosts(self, url):
        assert unreachable_reason(url) is None

    @pytest.mark.parametrize(("url", "words"), [
        ("http://192.168.1.20:8000/l/x", None), ("http://qart.local/l/x", None), ("http://[fe80::1]/l/x", None),
        ("http://127.0.0.1:8000/l/x", "loopback"), ("http://localhost:8000/l/x", "this machine itself"),
        ("http://devbox:8000/l/x", "bare machine name"),
    ])
    def test_on_the_same_network_only_this_machine_and_bare_names_are_out_of_reach(self, url, words):
        # A labeling session's phones are in the room, on the labeler's Wi-Fi.
        reason = unreachable_reason(url, same_network=True)
        assert reason is None if words is None else words in reason
