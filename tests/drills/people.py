"""A signed-in person's browser against a drill's gunicorn, every answer timed."""

from __future__ import annotations

import re
import time

import requests
from django.test import Client


class Person:
    """`user`'s browser against gunicorn at `base` (the session cookie), recording (what, status, seconds, body) of
    every answer in `answers`."""

    def __init__(self, base: str, user) -> None:
        client = Client()
        client.force_login(user)  # a session row in the shared database
        self.base, self.http = base, requests.Session()
        self.http.cookies.set("sessionid", client.cookies["sessionid"].value)
        self.answers: list[tuple[str, int, float, str]] = []

    def ask(self, what: str, method: str, path: str, **kwargs) -> requests.Response:
        """One request, redirects not followed; `kwargs` go to requests (data, files)."""
        started = time.monotonic()
        response = self.http.request(method, self.base + path, timeout=60, allow_redirects=False, **kwargs)
        self.answers.append((what, response.status_code, time.monotonic() - started, response.text))
        return response

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on the page at `path` (its cookie kept by the session)."""
        page = self.http.get(self.base + path, timeout=60).text
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    def wait_for(self, what: str, path: str, status: int, seconds: float) -> int:
        """Ask `path` until it answers `status`, at most `seconds`; the last status."""
        deadline = time.monotonic() + seconds
        while (answer := self.ask(what, "GET", path).status_code) != status and time.monotonic() < deadline:
            time.sleep(0.5)
        return answer
