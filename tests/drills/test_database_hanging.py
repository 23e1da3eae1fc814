"""Drill: a database that accepts connections and never answers (a hung server, a black-holed network).

Real processes: gunicorn whose DATABASE_URL points at a loopback server that accepts every connection and says
nothing. The short link answers 302 from the copy of the links shared in Redis (put there by a process that looked the
link up before the database hung); a page that needs the database answers 503 saying so once the connect timeout
(2 s) passes, and the API the same in JSON. Nothing waits for gunicorn's 30 s worker timeout.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from redis.exceptions import RedisError

from campaigns import redirects, scan_buffer
from campaigns.models import Campaign, Placement
from qartsite.models import Team
from qartsite.outage import MESSAGE
from tests.clients import IPHONE
from tests.drills.conftest import required

pytestmark = [pytest.mark.drill, pytest.mark.django_db]

ANSWER_WITHIN = 10.0  # seconds: the connect timeout is 2 s, a hung request would wait for gunicorn's 30 s


class SilentDatabase:
    """A loopback server that accepts connections, keeps them open and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                self.held.append(self.server.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def silent_database():
    database = SilentDatabase()
    yield database
    database.close()


def get(base: str, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=ANSWER_WITHIN + 20)
    try:
        connection.request("GET", path, headers={"User-Agent": IPHONE, **headers})
        response = connection.getresponse()
        return response, response.read(), time.monotonic() - started
    finally:
        connection.close()


def test_short_links_redirect_and_pages_say_the_database_is_away_when_it_hangs(silent_database, start_web):
    # 1. A link a process looked up while the database answered: it is in the copy shared in Redis.
    try:
        scan_buffer.redis_client().ping()
    except RedisError as exc:
        required(f"no Redis at the suite's REDIS_URL ({exc})")
    campaign = Campaign.objects.create(team=Team.objects.create(name="Drill"), name="Drill",
                                       destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    redirects.share_link(placement.slug, redirects.find_link(placement.slug))

    # 2. gunicorn on the silent database; the home page (no database) loads the site in both workers first.
    base = start_web(DATABASE_URL=f"postgres://qart@127.0.0.1:{silent_database.port}/qart")
    with ThreadPoolExecutor(2) as pool:
        assert [response.status for response, *_ in pool.map(lambda _: get(base, "/"), range(2))] == [200, 200]

    # 3. The short link, a signed-in person's page and the API, each once the database has hung.
    link, _, link_seconds = get(base, f"/r/{placement.slug}")
    page, body, page_seconds = get(base, "/campaigns/", Cookie="sessionid=" + "x" * 32)
    api, api_body, api_seconds = get(base, "/api/campaigns/", Authorization="Token " + "x" * 64)

    assert link.status == 302 and link.getheader("Location").startswith("https://shop.example.com/offer")
    assert page.status == 503 and MESSAGE in body.decode() and page.getheader("Retry-After") == "30"
    assert api.status == 503 and MESSAGE in api_body.decode()
    assert max(link_seconds, page_seconds, api_seconds) < ANSWER_WITHIN, (link_seconds, page_seconds, api_seconds)
    assert silent_database.held  # the site did try the database
