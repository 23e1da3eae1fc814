"""Fixtures for the browser tests: the real worker fixtures of the generation tests, and a headless Chromium.

The browser is Debian's own `chromium` (scripts/test.sh installs it), driven by the Playwright Python package;
Playwright's downloaded browsers are never used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.generator.conftest import gpu_queue, start_worker, tiny_spec  # noqa: F401 (fixtures used here too)

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15's viewport: the phone size every browser test uses
DESKTOP = {"width": 1280, "height": 900}
TIMEOUT_MS = 15_000  # how long a page and Playwright's `expect` wait for anything
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]  # containers' /dev/shm is small: a renderer that runs out of it dies


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium; skipped without one, except in CI where it must be there.

    Per test, not per session: Playwright's sync API keeps an asyncio loop in this thread while it runs, and
    Django refuses ORM calls under a loop unless DJANGO_ALLOW_ASYNC_UNSAFE is set (only while the browser is up).
    Under that loop Django keeps its connections apart from the thread's (asgiref's Local stores them in a context
    variable then): the connections ORM calls opened while the browser was up are closed before the loop stops, else
    one stays open to the session's end and the test database cannot be dropped ("being accessed by other users").
    """
    reason = None
    if not CHROMIUM.exists():
        reason = f"no {CHROMIUM} (make test installs Debian's chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "the playwright package is missing (pip install -r requirements-dev.txt)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium in CI: {reason}")
        pytest.skip(reason)

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
        finally:
            connections.close_all()  # the loop's own: only reachable while it still runs


@pytest.fixture(autouse=True)
def _media_through_the_site(monkeypatch):
    """Django's live server answers MEDIA_URL from MEDIA_ROOT itself, with no access check; hand /media/ to the
    site's own view (qartsite.media), so the browser loads images the way production does."""
    monkeypatch.setattr("django.test.testcases._MediaFilesHandler._should_handle", lambda self, path: False)


def sign_in(page, username: str, next_url: str = "/campaigns/") -> None:
    """Sign in through the login form as one of `team_users` (password "pw-<name>-1") and wait for `next_url`."""
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{next_url}")


def watched_page(browser, base: str, timeout_ms: int, **options):
    """A new context (base URL, `options` such as viewport and accept_downloads) and its page, with the list that
    collects every 5xx answer the page receives and everything the Content-Security-Policy blocked; close the
    context when done."""
    context = browser.new_context(base_url=base, **options)
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    failures: list[str] = []
    page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    # What the Content-Security-Policy blocked is a failure too: a script or form the page needs did not run.
    page.on("console", lambda m: failures.append(m.text) if "Content Security Policy" in m.text else None)
    return context, page, failures


@pytest.fixture
def new_page(browser, live_server):
    """`page, failures = new_page(viewport=PHONE)`: a `watched_page` on the live server, waiting TIMEOUT_MS for
    anything (Playwright's `expect` too); every context it opened is closed after the test, passed or failed."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts = []

    def open_page(**options):
        context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS, **options)
        contexts.append(context)
        return page, failures

    yield open_page
    for context in contexts:
        context.close()
