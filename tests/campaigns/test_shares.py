"""Share links of a campaign's report (`campaigns.shares`, `campaigns.share_views`): editors make and revoke them,
anyone with a live link reads the report without signing in, and it shows no personal data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import drainer, rules, scan_buffer, shares
from campaigns.models import ReportShare


def shared_link(client: Client, campaign, **data) -> str:
    response = client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7, **data}, follow=True)
    assert response.redirect_chain == [(reverse("campaigns:shares", args=[campaign.pk]), 302)]
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    return re.search(r'value="(http[^"]+/shared/[^"]+/)"', response.content.decode()).group(1)


@pytest.fixture(autouse=True)
def _fresh_rates():
    # The shared page's rate is counted per address in the cache, and every test client is 127.0.0.1.
    cache.clear()
    yield
    cache.clear()


class TestShares:
    def test_the_new_link_is_shown_once_and_a_reload_makes_no_second_one(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        link = shared_link(client, campaign, label="Agency")
        again = client.get(reverse("campaigns:shares", args=[campaign.pk]))  # a reload of the page it landed on
        assert again.status_code == 200 and link not in again.content.decode()
        assert ReportShare.objects.filter(campaign=campaign).count() == 1

    def test_a_head_request_does_not_use_up_the_one_showing_of_the_link(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        response = client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7})
        assert response.status_code == 302
        assert client.head(response["Location"]).status_code == 200  # a prefetcher, a monitor
        shown = client.get(response["Location"]).content.decode()
        assert re.search(r'value="(http[^"]+/shared/[^"]+/)"', shown)

    def test_it_opens_the_report_without_login_and_without_personal_data(self, client, team_users, campaign,
                                                                         placement):
        team_users.owner.email = "owner@example.com"
        team_users.owner.save()
        drainer.store_events([scan_buffer.scan_event(
            placement.pk, timezone.now(), browser="Safari", os="iOS", device_class="mobile", referer="",
            accept_language="de", country="DE", is_bot=False, visitor_key="k" * 32)])
        client.force_login(team_users.teammate)
        link = shared_link(client, campaign, label="Agency")
        anonymous = Client()
        response = anonymous.get(link.split("testserver")[-1])
        page = response.content.decode()
        assert response.status_code == 200 and "Spring Sale" in page and "Station poster" in page
        assert response["Cache-Control"] == "no-store" and "noindex" in response["X-Robots-Tag"]
        for private in ("k" * 32, "owner@example.com", "teammate", "Acme", placement.slug, "Agency"):
            assert private not in page

    def test_it_writes_large_counts_with_thousands_separators(self, client, team_users, campaign, placement):
        from campaigns import rollups, stats
        from campaigns.models import ScanRollup

        now = timezone.now()
        ScanRollup.objects.create(placement=placement, day=stats.local_today(campaign.team), scans=2_500_000,
                                  visitors=2_000_000, first_scan=now, last_scan=now)
        rollups.refresh_campaigns([campaign.pk])
        client.force_login(team_users.teammate)
        page = Client().get(shared_link(client, campaign).split("testserver")[-1]).content.decode()
        assert 'data-tile="scans">2,500,000<' in page and 'data-tile="unique">2,000,000<' in page
        assert 'data-col="scans">2,500,000<' in page and '<td data-label="Unique" class="num">2,000,000<' in page

    def test_it_says_how_unique_visitors_are_counted(self, client, team_users, campaign, placement):
        client.force_login(team_users.teammate)
        page = Client().get(shared_link(client, campaign).split("testserver")[-1]).content.decode()
        assert "(a day's)" not in page
        tile = re.search(r'data-tile="unique">\d+</span><span class="tile-label">(.*?)</div>', page, re.S).group(1)
        assert "(counted once a day per placement)" in tile and 'title="Each person is counted once a day' in tile
        assert re.search(r'<th class="num"><abbr title="Unique visitors, counted once a day per placement\.[^"]*">'
                         r'Unique</abbr>', page)

    def test_it_shows_the_destination_rules_card_without_the_visitors(self, client, team_users, campaign,
                                                                       placement):
        secret = "https://shop.example.com/launch-coupon-ZX81"  # the team's own business: not on a shared report
        placement.rules = {"split": [{"url": secret, "weight": 1}, {"url": "https://shop.example.com/b", "weight": 1}]}
        placement.save()
        drainer.store_events([scan_buffer.scan_event(
            placement.pk, timezone.now(), browser="Safari", os="iOS", device_class="mobile", referer="",
            accept_language="", country="", is_bot=False, visitor_key=f"{n:032d}", rule=rule)
            for n, rule in enumerate([rules.variant_rule(secret), "ab:1", "ab:1", "ios"])])
        client.force_login(team_users.teammate)
        assert secret in client.get(f"/campaigns/{campaign.pk}/").content.decode()  # the team sees where it led
        page = Client().get(shared_link(client, campaign).split("testserver")[-1]).content.decode()
        card = page[page.index('id="destination-rules"'):]
        card = card[:card.index("</section>")]
        for words in ("iPhone (iOS) destination", "A/B destination 1", "A/B destination 2", "33.3%", "66.7%"):
            assert words in card
        assert f"{0:032d}" not in page and "launch-coupon" not in page

    def test_a_campaign_never_scanned_says_so_in_one_line_and_draws_no_charts(self, client, team_users, campaign,
                                                                               placement):
        # Three empty charts and six empty cards; and its reader is not in the team: no next step to take
        client.force_login(team_users.teammate)
        link = shared_link(client, campaign).split("testserver")[-1]
        page = Client().get(link).content.decode()
        note = re.search(r"<p class=\"muted\" data-no-scans-yet>(.*?)</p>", page, re.S).group(1)
        assert " ".join(note.split()) == ("No scans yet. Once people scan this campaign's codes, their scans by day, "
                                          "hour, device, country and language appear here.")
        assert "data-chart=" not in page and "chart.umd.min.js" not in page and "Hour of the day" not in page
        assert 'data-tile="scans">0<' in page and '<tr data-placement="Station poster">' in page  # the table stays
        drainer.store_events([scan_buffer.scan_event(placement.pk, timezone.now(), visitor_key="0" * 32)])
        page = Client().get(link).content.decode()
        assert "data-no-scans-yet" not in page and 'data-chart="scan-chart"' in page and "chart.umd.min.js" in page
        assert 'data-tile="scans">1<' in page

    def test_it_keeps_the_link_out_of_other_sites_referers_without_breaking_forms(self, client, team_users,
                                                                                   campaign):
        # Under Referrer-Policy: no-referrer browsers send "Origin: null" with a page's forms (Sign out in the
        # header, Revoke on the page with the new link), and CSRF refuses them.
        client.force_login(team_users.owner)
        response = client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7}, follow=True)
        link = re.search(r'value="(http[^"]+/shared/[^"]+/)"', response.content.decode()).group(1)
        shared = client.get(link.split("testserver")[-1])
        assert response["Referrer-Policy"] == shared["Referrer-Policy"] == "same-origin"
        assert shared.status_code == 200 and "Sign out" in shared.content.decode()

    def test_it_keeps_only_a_hash_of_the_token(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        token = shared_link(client, campaign).rstrip("/").rsplit("/", 1)[1]
        share = ReportShare.objects.get()
        assert share.token_hash == shares.token_hash(token) and token not in share.token_hash

    def test_it_stops_opening_once_revoked(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        link = shared_link(client, campaign).split("testserver")[-1]
        client.post(reverse("campaigns:share_revoke", args=[ReportShare.objects.get().pk]))
        response = Client().get(link)
        page = response.content.decode()
        assert response.status_code == 410 and "revoked or it expired" in page
        assert "Spring Sale" not in page and response["Cache-Control"] == "no-store"

    def test_it_stops_opening_once_expired(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        link = shared_link(client, campaign).split("testserver")[-1]
        ReportShare.objects.update(expires=timezone.now() - timedelta(seconds=1))
        response = Client().get(link)
        assert response.status_code == 410 and "Spring Sale" not in response.content.decode()

    @pytest.mark.parametrize("token", ["nope", "x" * 500])
    def test_it_answers_404_to_unknown_tokens(self, db, token):
        response = Client().get(f"/campaigns/shared/{token}/")
        assert response.status_code == 404 and "No report has this link" in response.content.decode()

    @pytest.mark.parametrize(("days", "words"), [(0, "A share link lasts at least 1 day."),
                                                 (200, "A share link lasts at most 90 days."),
                                                 ("soon", "whole number")])
    def test_it_refuses_a_bad_lifetime_at_its_field_keeping_what_was_typed(self, client, team_users, campaign,
                                                                           days, words):
        client.force_login(team_users.owner)
        response = client.post(reverse("campaigns:share_new", args=[campaign.pk]),
                               {"label": "Agency Berlin", "days": days})
        html = response.content.decode()
        assert response.status_code == 400 and not ReportShare.objects.exists()
        field = re.search(r'<div>\s*<label for="id_days">.*?</div>', html, re.S).group(0)
        assert words in field and f'value="{days}"' in field
        assert 'value="Agency Berlin"' in html
        # Listed once more in the summary at the top, linked to the field; no Django "Ensure this value…".
        summary = re.search(r'<div class="form-errors".*?</div>', html, re.S).group(0)
        assert '<a href="#id_days">Valid for (days)</a>' in summary and words in summary
        assert "Ensure this value" not in html

    @pytest.mark.parametrize("who, status", [("viewer", 403), ("outsider", 404)])
    def test_it_lets_only_the_teams_editors_make_and_revoke(self, client, team_users, campaign, who, status):
        share, _ = shares.create(campaign, team_users.owner)
        client.force_login(getattr(team_users, who))
        assert client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7}).status_code == status
        assert client.get(reverse("campaigns:shares", args=[campaign.pk])).status_code == status
        assert client.post(reverse("campaigns:share_revoke", args=[share.pk])).status_code == status
        assert ReportShare.objects.filter(revoked_at__isnull=True).count() == 1

    def test_it_needs_the_csrf_token(self, team_users, campaign):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        assert client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7}).status_code == 403
        assert not ReportShare.objects.exists()


@pytest.fixture
def three_a_minute(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "shared_reports": "3/minute"}}


class TestSharedReportRate:
    def test_it_answers_429_with_retry_after_past_the_rate(self, client, team_users, campaign, three_a_minute):
        client.force_login(team_users.owner)
        link = shared_link(client, campaign).split("testserver")[-1]
        visitor = Client()
        assert [visitor.get(link).status_code for _ in range(3)] == [200, 200, 200]
        response = visitor.get(link)
        page = response.content.decode()
        assert response.status_code == 429 and "Too many requests" in page and "Try again in" in page
        assert 1 <= int(response["Retry-After"]) <= 60 and "Spring Sale" not in page
        assert response["Cache-Control"] == "no-store"

    def test_it_counts_bad_tokens_too(self, db, three_a_minute):
        visitor = Client()
        assert [visitor.get(f"/campaigns/shared/guess{n}/").status_code for n in range(4)] == [404, 404, 404, 429]

    def test_it_counts_each_address_apart(self, db, three_a_minute):
        for _ in range(3):
            Client(REMOTE_ADDR="198.51.100.7").get("/campaigns/shared/guess/")
        assert Client(REMOTE_ADDR="198.51.100.7").get("/campaigns/shared/guess/").status_code == 429
        assert Client(REMOTE_ADDR="198.51.100.8").get("/campaigns/shared/guess/").status_code == 404

    def test_it_ignores_a_forged_forwarded_for_header(self, db, three_a_minute, settings):
        settings.QART = {**settings.QART, "TRUST_PROXY": False}
        statuses = [Client(HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").get("/campaigns/shared/guess/").status_code
                    for n in range(4)]
        assert statuses == [404, 404, 404, 429]

    def test_it_counts_an_ipv6_host_by_its_64(self, db, three_a_minute):
        for n in range(3):
            Client(REMOTE_ADDR=f"2001:db8:1:2::{n + 1}").get("/campaigns/shared/guess/")
        assert Client(REMOTE_ADDR="2001:db8:1:2::ffff").get("/campaigns/shared/guess/").status_code == 429
        assert Client(REMOTE_ADDR="2001:db8:1:3::1").get("/campaigns/shared/guess/").status_code == 404

    def test_it_serves_the_report_unthrottled_while_the_cache_is_away(self, client, team_users, campaign,
                                                                       three_a_minute, cache_away):
        client.force_login(team_users.owner)
        link = shared_link(client, campaign).split("testserver")[-1]
        with cache_away():
            visitor = Client()
            assert [visitor.get(link).status_code for _ in range(4)] == [200, 200, 200, 200]
