"""Actions that cannot be undone ask first, in a real browser: revoking an API token happens only after the person
says yes to the question; saying no leaves the token working.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, TIMEOUT_MS, sign_in, watched_page

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.mark.browser
def test_revoking_a_token_asks_first_and_no_keeps_it(live_server, team_users, browser):
    from knox.models import AuthToken
    from playwright.sync_api import expect

    from qartsite import tokens

    row, _ = tokens.make_token(team_users.owner, "reporting script")
    expect.set_options(timeout=TIMEOUT_MS)
    context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS)
    questions: list[str] = []
    try:
        sign_in(page, "owner", next_url="/accounts/")
        token_row = page.locator(f"tr[data-token='{row.token_key}']")
        expect(token_row).to_contain_text("reporting script")

        # 1. No: the form is not sent, the token stays.
        page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
        token_row.get_by_role("button", name="Revoke").click()
        page.wait_for_timeout(500)  # a sent form would have navigated by now
        expect(token_row).to_be_visible()
        assert AuthToken.objects.filter(pk=row.pk).exists()

        # 2. Yes: revoked.
        page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
        token_row.get_by_role("button", name="Revoke").click()
        expect(token_row).to_have_count(0)
        assert not AuthToken.objects.filter(pk=row.pk).exists()
    finally:
        context.close()
    assert len(questions) == 2 and all(row.token_key in q and "cannot be undone" in q for q in questions)
    assert failures == []


@pytest.mark.browser
def test_deleting_your_account_asks_only_once_the_password_is_typed(live_server, team_users, browser):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS, viewport=PHONE)
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    try:
        sign_in(page, "teammate", next_url="/accounts/delete/")
        password = page.get_by_label("Your password")
        delete = page.get_by_role("button", name="Delete my account")

        # 1. Empty: the browser asks for the password, on the field; no question, nothing sent.
        delete.click()
        page.wait_for_timeout(500)  # a question or a sent form would have come by now
        expect(password).to_be_focused()
        assert questions == [] and page.evaluate("document.querySelector('#id_password').validity.valueMissing")

        # 2. Typed: the question comes; no keeps the account.
        password.fill("pw-teammate-1")
        delete.click()
        page.wait_for_timeout(500)
        assert len(questions) == 1 and "cannot be undone" in questions[0]
        assert get_user_model().objects.filter(username="teammate").exists() and page.url.endswith("/accounts/delete/")
        assert failures == []
    finally:
        context.close()
