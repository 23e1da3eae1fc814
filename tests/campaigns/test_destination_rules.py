"""Destination rules (`campaigns.rules`): device, schedule and A/B split destinations of one printed code, chosen by
the short link (`campaigns.redirects`) from its cached copy, recorded on the scan, kept in the destination history
and edited through the pages, the API and the admin."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import history, links, redirects, rules, scan_buffer
from campaigns.drainer import drain_once
from campaigns.models import Campaign, DestinationChange, Placement, ScanEvent
from tests.campaigns.admin_forms import NO_PLACEMENTS
from tests.clients import IPHONE, api_as
from tests.conftest import make_staff

IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
        "Mobile/15E148 Safari/604.1")
PIXEL = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
         "Safari/537.36")
SAMSUNG = ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 "
           "Chrome/117.0.0.0 Mobile Safari/537.36")
WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
           "Safari/537.36")
MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
       "Safari/605.1.15")

APP_STORE = "https://apps.apple.com/app/id123"
PLAY = "https://play.google.com/store/apps/details?id=com.example"
WEB = "https://example.com/app"
FALLBACK = "https://shop.example.com/ended"
A, B = "https://shop.example.com/a", "https://shop.example.com/b"
VA, VB = rules.variant_rule(A), rules.variant_rule(B)  # what a scan sent to A or B records
DEVICES = {"ios": APP_STORE, "android": PLAY, "other": WEB}


def hours(n: float) -> str:
    return (timezone.now() + timedelta(hours=n)).isoformat()


@pytest.fixture
def placement(campaign) -> Placement:
    campaign.fallback_url = FALLBACK
    campaign.save()
    return Placement.objects.create(campaign=campaign, name="Station Poster")


def campaign_page_form(**fields) -> dict:
    """The campaign edit page's form as the fixture's campaign fills it, with `fields` changed."""
    return {"name": "Spring Sale", "destination": "https://shop.example.com/", "fallback_url": FALLBACK,
            "utm_source": "qr", "utm_medium": "print", "utm_campaign": "spring-sale", "dates_route": "on", **fields}


def with_rules(target, **given):
    target.rules = given
    target.save()
    return target


def scan(client, placement, agent=IPHONE, address="198.51.100.7", method="get") -> str:
    """Where the short link sends this scanner, without the UTM parameters (checked once, below)."""
    response = getattr(client, method)(f"/r/{placement.slug}", HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    assert response.status_code == 302, response
    return response["Location"].split("?utm_source=")[0].split("&utm_source=")[0]


def stored_rules() -> list[str]:
    drain_once()
    return list(ScanEvent.objects.order_by("time", "pk").values_list("rule", flat=True))


@pytest.mark.django_db
class TestDevices:
    def test_it_sends_each_system_to_its_destination_by_real_user_agents(self, client, placement):
        with_rules(placement, **DEVICES)
        assert [scan(client, placement, agent) for agent in (IPHONE, IPAD, PIXEL, SAMSUNG, WINDOWS, MAC)] == [
            APP_STORE, APP_STORE, PLAY, PLAY, WEB, WEB]
        assert stored_rules() == ["ios", "ios", "android", "android", "other", "other"]

    def test_each_destination_carries_the_placements_utm_parameters(self, client, placement):
        with_rules(placement, **DEVICES)
        location = client.get(f"/r/{placement.slug}", HTTP_USER_AGENT=PIXEL)["Location"]
        query = parse_qs(urlsplit(location).query)
        assert query["id"] == ["com.example"] and query["utm_content"] == ["station-poster"]
        assert query["utm_campaign"] == ["spring-sale"] and query["utm_source"] == ["qr"]

    def test_the_scanners_query_goes_on_to_the_destination_the_rules_chose(self, client, placement):
        with_rules(placement, **DEVICES)
        location = client.get(f"/r/{placement.slug}?id=other&src=poster", HTTP_USER_AGENT=PIXEL)["Location"]
        assert location.startswith(f"{PLAY}&utm_source=qr&")
        query = parse_qs(urlsplit(location).query)
        assert query["id"] == ["com.example"] and query["src"] == ["poster"] and query["utm_source"] == ["qr"]

    def test_a_system_without_a_destination_of_its_own_gets_the_destination(self, client, placement):
        with_rules(placement, ios=APP_STORE)
        assert scan(client, placement, PIXEL) == "https://shop.example.com/"
        assert scan(client, placement, WINDOWS) == "https://shop.example.com/"
        assert scan(client, placement, IPHONE) == APP_STORE
        assert stored_rules() == ["", "", "ios"]

    def test_head_requests_follow_the_rules_but_are_not_counted(self, client, placement):
        with_rules(placement, android=PLAY)
        assert scan(client, placement, PIXEL, method="head") == PLAY
        assert drain_once().read == 0


@pytest.mark.django_db
class TestSchedule:
    def test_before_the_start_it_leads_to_the_fallback(self, client, placement):
        with_rules(placement, starts_at=hours(2), **DEVICES)
        assert scan(client, placement, IPHONE) == FALLBACK
        assert stored_rules() == ["before_start"]

    def test_after_the_end_it_leads_to_the_fallback(self, client, placement):
        with_rules(placement, starts_at=hours(-48), ends_at=hours(-1))
        assert scan(client, placement) == FALLBACK
        assert stored_rules() == ["after_end"]

    def test_inside_the_schedule_the_other_rules_apply(self, client, placement):
        with_rules(placement, starts_at=hours(-1), ends_at=hours(1), **DEVICES)
        assert scan(client, placement, PIXEL) == PLAY
        assert stored_rules() == ["android"]

    def test_without_a_fallback_address_it_leads_to_the_campaigns_destination(self, client, placement):
        Campaign.objects.filter(pk=placement.campaign_id).update(fallback_url="")
        with_rules(placement, ends_at=hours(-1))
        placement.destination_override = "https://shop.example.com/own"
        placement.save()
        assert scan(client, placement) == "https://shop.example.com/"  # not the placement's own: its offer ended

    def test_a_placement_switched_off_goes_to_the_fallback_whatever_its_rules(self, client, placement):
        with_rules(placement, **DEVICES)
        placement.set_active(False)
        assert scan(client, placement, IPHONE) == FALLBACK
        assert stored_rules() == [""]


@pytest.mark.django_db
class TestCampaignDates:
    """A campaign's `starts_on`/`ends_on` are its placements' schedule wherever no rules set one."""

    def dated(self, placement, starts: int | None = None, ends: int | None = None) -> Campaign:
        campaign = placement.campaign
        today = timezone.localdate(timezone=campaign.team.zone)
        campaign.starts_on = None if starts is None else today + timedelta(days=starts)
        campaign.ends_on = None if ends is None else today + timedelta(days=ends)
        campaign.save()
        return campaign

    def test_after_its_last_day_its_codes_lead_to_the_fallback(self, client, placement):
        self.dated(placement, starts=-10, ends=-1)
        assert scan(client, placement) == FALLBACK
        assert stored_rules() == ["after_end"]

    def test_before_its_first_day_its_codes_lead_to_the_fallback(self, client, placement):
        self.dated(placement, starts=1)
        assert scan(client, placement) == FALLBACK
        assert stored_rules() == ["before_start"]

    def test_its_first_and_last_days_are_included(self, client, placement):
        with_rules(placement, **DEVICES)
        self.dated(placement, starts=0, ends=0)
        assert scan(client, placement, PIXEL) == PLAY
        assert stored_rules() == ["android"]

    @pytest.mark.parametrize("owner", ["campaign", "placement"])
    def test_a_schedule_in_the_rules_wins_over_the_dates(self, client, placement, owner):
        self.dated(placement, ends=-1)
        with_rules(placement if owner == "placement" else placement.campaign, ends_at=hours(2))
        assert scan(client, placement) == "https://shop.example.com/"
        assert stored_rules() == [""]

    def test_the_days_are_the_teams_whole_days(self):
        zone = rules.zoneinfo.ZoneInfo("Europe/Paris")
        dated = rules.with_dates({"ios": APP_STORE}, date(2026, 3, 28), date(2026, 3, 29), zone)
        # the last day is 23 hours long (summer time starts): it ends at midnight Paris time, in summer time
        assert dated == {"ios": APP_STORE, "starts_at": "2026-03-28T00:00:00+01:00",
                         "ends_at": "2026-03-30T00:00:00+02:00"}
        assert rules.with_dates({}, None, None, zone) == {}
        assert rules.with_dates({}, None, date.max, zone) == {}  # no day after it: no end

    def test_the_dates_fill_only_the_ends_the_rules_leave_open(self):
        zone = rules.UTC
        assert rules.with_dates({"ends_at": "2026-04-01T00:00:00+00:00"}, date(2026, 3, 28), date(2026, 5, 1),
                                zone) == {"starts_at": "2026-03-28T00:00:00+00:00",
                                          "ends_at": "2026-04-01T00:00:00+00:00"}

    def test_a_campaign_that_does_not_route_by_its_dates_keeps_its_codes_where_they_lead(self, client, team_users,
                                                                                          placement):
        campaign = self.dated(placement, starts=-10, ends=-1)
        campaign.dates_route = False
        campaign.save()
        assert scan(client, placement) == "https://shop.example.com/"
        assert not campaign.routed_by_dates and campaign.effective_rules == {}
        client.force_login(team_users.owner)
        page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
        assert "Its dates do not change where its codes lead" in page and "Before its first day" not in page

    @pytest.mark.parametrize("day", ["1999-12-31", "2201-01-01", "9999-12-31"])
    def test_a_date_out_of_range_is_refused_with_one_message(self, team_users, placement, day):
        response = api_as(team_users.owner).patch(f"/api/campaigns/{placement.campaign_id}/", {"ends_on": day},
                                                  format="json")
        assert response.status_code == 400 and response.json() == {"ends_on": ["Give a year from 2000 to 2200."]}

    def test_the_pages_refuse_a_date_out_of_range_in_these_words(self, client, team_users, placement):
        client.force_login(team_users.owner)
        campaign = placement.campaign
        response = client.post(f"/campaigns/{campaign.pk}/edit/", campaign_page_form(ends_on="9999-12-31"))
        assert response.status_code == 400
        assert response.context["form"].errors == {"ends_on": ["Give a year from 2000 to 2200."]}

    def test_the_page_says_when_the_dates_send_its_codes_to_the_fallback_today(self, client, team_users, placement):
        client.force_login(team_users.owner)
        campaign = self.dated(placement, starts=-10, ends=-1)
        page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
        assert f"It ended on {campaign.ends_on.day} {campaign.ends_on:%b %Y}: its codes lead to" in page
        campaign = self.dated(placement, starts=2, ends=9)
        page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
        assert f"It starts on {campaign.starts_on.day} {campaign.starts_on:%b %Y}: until then" in page
        self.dated(placement, starts=-1, ends=1)
        page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
        assert "It ended on" not in page and "It starts on" not in page

    def test_without_a_fallback_the_page_names_the_destination_once(self, client, team_users, placement):
        # The header said "leads to X", "It ended on ...: its codes lead to X now" and "Before its first day and
        # after its last its codes lead to X": one address three times.
        campaign = self.dated(placement, starts=-10, ends=-1)
        Campaign.objects.filter(pk=campaign.pk).update(fallback_url="")
        client.force_login(team_users.owner)
        page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
        head = page[page.index("<h1>"):page.index('class="actions"')]
        assert head.count(f">{campaign.destination}<") == 1
        assert "its codes lead to its destination still" in head and "lead to its destination too" in head

    def test_the_admin_refuses_a_campaign_that_ends_before_it_starts(self, placement):
        campaign = self.dated(placement, starts=0, ends=-1)
        with pytest.raises(ValidationError, match="can't end before it starts"):
            campaign.full_clean()

    def test_a_change_of_dates_is_in_the_history_and_reverted(self, team_users, placement):
        campaign = placement.campaign
        with history.recorded(campaign, team_users.owner):
            self.dated(placement, ends=-1)
        with history.recorded(campaign, team_users.owner):
            campaign.dates_route = False
            campaign.save()
        changes = {change.field: change for change in DestinationChange.objects.all()}
        assert (changes["ends_on"].before, changes["dates_route"].after) == ("", "off")
        assert changes["ends_on"].after == campaign.ends_on.isoformat()
        assert changes["ends_on"].after_shown == f"{campaign.ends_on.day} {campaign.ends_on:%b %Y}"  # as the page
        history.revert(changes["dates_route"], team_users.owner)
        history.revert(changes["ends_on"], team_users.owner)
        campaign.refresh_from_db()
        assert campaign.dates_route and campaign.ends_on is None

    def test_the_pages_and_the_api_say_so(self, client, team_users, placement):
        self.dated(placement, starts=-1, ends=30)
        client.force_login(team_users.owner)
        page = client.get(f"/campaigns/{placement.campaign_id}/").content.decode()
        assert "Before its first day and after its last" in page and FALLBACK in page
        body = api_as(team_users.owner).get(f"/api/placements/{placement.pk}/").json()
        assert set(body["effective_rules"]) == {"starts_at", "ends_at"} and body["rules"] == {}
        with_rules(placement.campaign, starts_at=hours(-2), ends_at=hours(2))
        assert "Before its first day" not in client.get(f"/campaigns/{placement.campaign_id}/").content.decode()


@pytest.mark.django_db
class TestPrecedence:
    def test_schedule_then_device_then_split_then_override(self, client, placement):
        placement.destination_override = "https://shop.example.com/own"
        with_rules(placement, ios=APP_STORE, split=[{"url": A, "weight": 1}, {"url": B, "weight": 1}])
        assert scan(client, placement, IPHONE) == APP_STORE  # device before split
        assert scan(client, placement, WINDOWS) in (A, B)  # split before the override
        with_rules(placement, ios=APP_STORE, ends_at=hours(-1), split=[{"url": A, "weight": 1}, {"url": B,
                                                                                                "weight": 1}])
        assert scan(client, placement, IPHONE) == FALLBACK  # schedule before device
        with_rules(placement)
        assert scan(client, placement, IPHONE) == "https://shop.example.com/own"  # no rules: the override
        assert stored_rules()[0] == "ios" and stored_rules()[2:] == ["after_end", ""]

    def test_a_campaigns_rules_are_its_placements_defaults_kind_by_kind(self, client, placement):
        with_rules(placement.campaign, ios=APP_STORE, android=PLAY, ends_at=hours(-1))
        redirects.forget_links()
        assert scan(client, placement, PIXEL) == FALLBACK  # the campaign's schedule
        with_rules(placement, ios="https://example.com/ios-poster")
        # The placement sets devices: all of the campaign's devices give way (android too); the schedule stays.
        assert placement.effective_rules == {"ios": "https://example.com/ios-poster",
                                             "ends_at": placement.campaign.rules["ends_at"]}
        with_rules(placement.campaign, ios=APP_STORE, android=PLAY)
        assert scan(client, placement, IPHONE) == "https://example.com/ios-poster"
        assert scan(client, placement, PIXEL) == "https://shop.example.com/"


@pytest.mark.django_db
class TestSplit:
    SPLIT = [{"url": A, "weight": 3}, {"url": B, "weight": 1}]

    def test_one_visitor_keeps_one_destination_all_day(self, client, placement):
        with_rules(placement, split=self.SPLIT)
        for address in ("198.51.100.7", "203.0.113.9", "192.0.2.44"):
            seen = {scan(client, placement, PIXEL, address) for _ in range(5)}
            assert len(seen) == 1
        drain_once()
        by_visitor = {}
        for key, rule in ScanEvent.objects.values_list("visitor_key", "rule"):
            by_visitor.setdefault(key, set()).add(rule)
        assert len(by_visitor) == 3 and all(len(fired) == 1 and fired <= {VA, VB}
                                            for fired in by_visitor.values())

    def test_it_matches_the_weights_over_many_visitors(self, placement):
        compiled = with_rules(placement, split=self.SPLIT).link_rules()
        today = date(2026, 12, 2)
        counts = Counter(compiled.choose("default", "Android", links.visitor_key(f"10.0.{i // 250}.{i % 250}",
                                                                                    PIXEL, "secret", today, 1), 0)[1]
                         for i in range(4000))
        assert set(counts) == {VA, VB}
        assert 0.72 <= counts[VA] / 4000 <= 0.78

    def test_the_same_visitor_may_get_another_destination_another_day(self, placement):
        compiled = with_rules(placement, split=self.SPLIT).link_rules()
        picks = {compiled.choose("", "iOS", links.visitor_key("198.51.100.7", IPHONE, "secret",
                                                              date(2026, 12, 1) + timedelta(days=n), 1), 0)[1]
                 for n in range(20)}
        assert picks == {VA, VB}

    def test_a_destination_records_the_same_rule_wherever_it_stands_in_a_split(self, placement):
        swapped = [{"url": B, "weight": 1}, {"url": A, "weight": 3}]
        assert VA == "ab:" + hashlib.sha256(A.encode()).hexdigest()[:12] and len(VA) <= 16
        assert ({rule for _, _, rule in with_rules(placement, split=self.SPLIT).link_rules().split}
                == {rule for _, _, rule in with_rules(placement, split=swapped).link_rules().split} == {VA, VB})


class TestValidation:
    @pytest.mark.parametrize("given, message", [
        ({"ios": "javascript:alert(1)"}, "Destination for iOS: The destination must start with http:// or https://."),
        ({"android": "/offer"}, "Destination for Android: The destination must start with http:// or https://."),
        ({"other": "//evil.example.com/"}, "must start with http:// or https://"),
        ({"other": "https://user:pw@example.com/"}, "must not contain a user name or password"),
        ({"split": [{"url": A, "weight": 1}]}, "give 2 to 10 destinations"),
        ({"split": [{"url": A, "weight": 0}, {"url": B, "weight": 1}]}, "destination 1: the weight must be a whole"),
        ({"split": [{"url": A, "weight": 1.5}, {"url": B, "weight": 1}]}, "the weight must be a whole number"),
        ({"split": [{"url": A, "weight": "3"}, {"url": B, "weight": 1}]}, "the weight must be a whole number"),
        ({"split": [{"url": A, "weight": True}, {"url": B, "weight": 1}]}, "the weight must be a whole number"),
        ({"split": [{"url": A, "weight": 1}, {"url": B, "weight": 1001}]}, "destination 2: the weight must be"),
        ({"split": [{"url": A, "weight": 1}, {"url": "data:text/html,x", "weight": 1}]}, "A/B split, destination 2:"),
        ({"split": "https://a.example.com"}, "give 2 to 10 destinations"),
        ({"ios": "https://example.com/\x00"}, "Destination for iOS: the address contains control characters."),
        ({"starts_at": "next tuesday"}, "Start: give a date and time"),
        ({"starts_at": "2026-12-02T10:00+00:00", "ends_at": "2026-12-02T11:00+02:00"}, "must end after it starts"),
        ({"ios_url": APP_STORE}, "Unknown rule ios_url"),
        (["https://example.com"], "Rules must be an object"),
    ])
    def test_it_refuses_with_one_clear_message(self, given, message):
        with pytest.raises(ValidationError) as refused:
            rules.clean_rules(given)
        assert len(refused.value.messages) == 1 and message in refused.value.messages[0]

    def test_it_names_every_bad_split_destination_in_its_one_message(self):
        with pytest.raises(ValidationError) as refused:
            rules.clean_rules({"split": [{"url": "/a", "weight": 1}, {"url": A, "weight": 2},
                                         {"url": "ftp://b.example.com", "weight": 0}]})
        assert refused.value.messages == [
            "A/B split, destination 1: The destination must start with http:// or https://. "
            "A/B split, destination 3: the weight must be a whole number from 1 to 1000. "
            "The destination must start with http:// or https://."]

    def test_times_without_an_offset_are_the_given_zones(self):
        from zoneinfo import ZoneInfo

        cleaned = rules.clean_rules({"starts_at": "2026-12-24T18:00", "ios": f" {APP_STORE} ", "split": []},
                                    ZoneInfo("Europe/Berlin"))
        assert cleaned == {"ios": APP_STORE, "starts_at": "2026-12-24T18:00:00+01:00"}

    @pytest.mark.django_db
    def test_the_model_refuses_bad_rules_on_every_save(self, placement):
        placement.rules = {"ios": "javascript:alert(1)"}
        with pytest.raises(ValidationError) as refused:
            placement.save()
        assert "rules" in refused.value.message_dict
        assert Placement.objects.get(pk=placement.pk).rules == {}


@pytest.mark.django_db
class TestCopies:
    def test_no_query_per_request_once_the_link_with_rules_is_cached(self, client, placement):
        with_rules(placement, split=[{"url": A, "weight": 1}, {"url": B, "weight": 1}], **DEVICES)
        scan(client, placement)
        with CaptureQueriesContext(connection) as queries:
            for agent in (IPHONE, PIXEL, WINDOWS):
                scan(client, placement, agent)
        assert queries.captured_queries == []

    def test_a_link_without_rules_carries_none(self, placement):
        assert redirects.resolve(placement.slug)[2] is None

    def test_the_copy_in_redis_carries_the_rules_through_an_outage(self, client, placement, scan_redis, monkeypatch):
        with_rules(placement, ends_at=hours(1), **DEVICES)
        scan(client, placement)  # looked up and shared
        shared = json.loads(scan_redis.hget(scan_buffer.links_key(), placement.slug))
        assert shared[0] == placement.pk and len(shared) == 5 and shared[2] is not None
        redirects._links.clear()  # a process that starts during the outage

        def fail(slug):
            raise OperationalError("connection refused")

        monkeypatch.setattr(redirects, "find_link", fail)
        assert [scan(client, placement, agent) for agent in (PIXEL, IPHONE, MAC)] == [PLAY, APP_STORE, WEB]
        assert stored_rules()[1:] == ["android", "ios", "other"]

    def test_the_shared_form_chooses_as_the_compiled_one(self, placement):
        compiled = with_rules(placement, starts_at=hours(-1), android=PLAY,
                              split=[{"url": A, "weight": 2}, {"url": B, "weight": 5}]).link_rules()
        copied = rules.LinkRules.from_json(json.loads(json.dumps(compiled.to_json())))
        now = timezone.now().timestamp()
        for n in range(50):
            key = links.visitor_key(f"10.1.1.{n}", WINDOWS, "secret", date(2026, 12, 2), 1)
            for os_family in ("Android", "iOS", "Windows"):
                assert copied.choose("x", os_family, key, now) == compiled.choose("x", os_family, key, now)
        assert copied.choose("x", "iOS", "0", now - 7200)[1] == "before_start"


@pytest.mark.django_db
class TestHistory:
    def test_a_rule_change_is_recorded_and_reverted(self, team_users, placement):
        client = api_as(team_users.teammate)
        response = client.patch(f"/api/placements/{placement.pk}/", {"rules": {"ios": APP_STORE}}, format="json")
        assert response.status_code == 200 and response.json()["rules"] == {"ios": APP_STORE}
        change = DestinationChange.objects.get()
        assert (change.field, change.before, change.after) == ("rules", "", rules.as_text({"ios": APP_STORE}))
        assert change.after_shown == f"iOS → {APP_STORE}" and change.changed_by == team_users.teammate
        undo = history.revert(change, team_users.owner)
        placement.refresh_from_db()
        assert placement.rules == {} and (undo.before, undo.after, undo.reverts) == (change.after, "", change)
        history.revert(undo, team_users.owner)
        placement.refresh_from_db()
        assert placement.rules == {"ios": APP_STORE}

    def test_an_editor_reverts_a_rule_change_from_the_page_and_the_link_follows(self, client, team_users,
                                                                                placement):
        with_rules(placement, android=PLAY)
        with history.recorded(placement, team_users.owner):
            with_rules(placement, android=PLAY, split=[{"url": A, "weight": 1}, {"url": B, "weight": 1}])
        assert scan(client, placement, WINDOWS) in (A, B)
        change = DestinationChange.objects.get()
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/destination-changes/{change.pk}/revert/", follow=True)
        shown = [str(message) for message in response.context["messages"]]
        assert shown == [f"Reverted: the set of destination rules is “Android → {PLAY}” again."]
        assert scan(client, placement, WINDOWS) == "https://shop.example.com/"  # this process saw the save
        assert scan(client, placement, PIXEL) == PLAY

    def test_a_revert_to_rules_no_longer_accepted_is_refused_with_the_reason(self, team_users, placement):
        change = DestinationChange.objects.create(campaign=placement.campaign, placement=placement, field="rules",
                                                  before='{"ios":"javascript:alert(1)"}', after="")
        with pytest.raises(history.RevertRefused, match="earlier rules are no longer accepted. Destination for iOS"):
            history.revert(change, team_users.owner)
        placement.refresh_from_db()
        assert placement.rules == {}

    def test_the_page_edits_rules_in_the_teams_time_zone_and_records_them(self, client, team_users, placement):
        team_users.team.time_zone = "Europe/Berlin"
        team_users.team.save()
        client.force_login(team_users.owner)
        form = {"name": "Station Poster", "kind": "poster", "active": "on", "rule_ios": APP_STORE,
                "rule_starts_at": "2026-12-24T18:00", "rule_split": f"3 {A}\n\n{B}\n"}
        response = client.post(f"/campaigns/placements/{placement.pk}/edit/", form)
        assert response.status_code == 302
        placement.refresh_from_db()
        assert placement.rules == {"ios": APP_STORE, "starts_at": "2026-12-24T18:00:00+01:00",
                                   "split": [{"url": A, "weight": 3}, {"url": B, "weight": 1}]}
        assert DestinationChange.objects.get().field == "rules"
        page = client.get(f"/campaigns/placements/{placement.pk}/edit/").content.decode()
        assert 'value="2026-12-24T18:00"' in page and f"3 {A}" in page
        shown = client.get(f"/campaigns/placements/{placement.pk}/").content.decode()
        assert "destination rules" in shown and f"split 75% {A}, 25% {B}" in shown

    def test_saving_the_page_for_another_field_records_no_change_of_rules(self, client, team_users, placement):
        with_rules(placement, starts_at="2026-12-24T18:00:30+05:00", other=WEB,
                   split=[{"url": A, "weight": 2}, {"url": B, "weight": 1}])
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        client.force_login(team_users.owner)
        form = client.get(f"/campaigns/placements/{placement.pk}/edit/").context["form"]
        posted = {name: form[name].value() for name in form.fields if form[name].value() not in (None, "", False)}
        posted.update(name="Renamed", active="on")
        posted.pop("artwork", None)
        assert posted["rule_starts_at"] == "2026-12-24T08:00"
        assert client.post(f"/campaigns/placements/{placement.pk}/edit/", posted).status_code == 302
        placement.refresh_from_db()
        assert placement.name == "Renamed" and placement.rules["starts_at"] == "2026-12-24T18:00:30+05:00"
        assert not DestinationChange.objects.exists()

    def test_the_page_refuses_bad_rules_with_a_message_on_the_field(self, client, team_users, placement):
        client.force_login(team_users.owner)
        base = {"name": "Station Poster", "kind": "poster", "active": "on"}
        for fields, where, message in [
            ({"rule_ios": "javascript:alert(1)"}, "rule_ios", "must start with http"),
            ({"rule_split": f"heavy {A}\n1 {B}"}, "rule_split", "Line 1: write the weight, then the address"),
            ({"rule_split": f"0 {A}\n1 {B}"}, "rule_split", "Line 1: the weight must be a whole number"),
            ({"rule_starts_at": "2026-12-24T18:00", "rule_ends_at": "2026-12-24T17:00"}, "rule_ends_at",
             "The schedule must end after it starts."),
            ({"rule_split": f"1 {A}"}, "rule_split", "Give 2 to 10 destinations"),
            ({"rule_split": f"1 {A}\n1 ftp://b.example.com"}, "rule_split", "Line 2: The destination must"),
        ]:
            response = client.post(f"/campaigns/placements/{placement.pk}/edit/", {**base, **fields})
            assert response.status_code == 400
            errors = " ".join(response.context["form"].errors[where])
            assert message in errors
            # The page puts the field's label before its message: the message does not name the field again
            assert not errors.startswith(("A/B split", "End:", "Start:")) and "A/B split," not in errors
        assert Placement.objects.get(pk=placement.pk).rules == {} and not DestinationChange.objects.exists()

    def test_the_campaign_page_edits_its_rules(self, client, team_users, placement):
        client.force_login(team_users.teammate)
        campaign = placement.campaign
        response = client.post(f"/campaigns/{campaign.pk}/edit/", campaign_page_form(rule_android=PLAY))
        assert response.status_code == 302
        campaign.refresh_from_db()
        assert campaign.rules == {"android": PLAY}
        assert DestinationChange.objects.get().placement is None
        assert scan(client, placement, SAMSUNG) == PLAY
        page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
        assert f"Destination rules for its placements: <span class=\"wrap\">Android → {PLAY}" in page
        # Its header no longer says plainly "leads to" the destination, which rules may send no scan to
        assert "<span data-main-destination>leads, where no rule below applies, to</span>" in page
        edit = client.get(f"/campaigns/placements/{placement.pk}/edit/").content.decode()
        assert f"the campaign's rules: Android → {PLAY}." in edit
        assert f"<dt>Rules</dt><dd class=\"wrap\">Android → {PLAY}" in client.get(
            f"/campaigns/placements/{placement.pk}/").content.decode()


@pytest.mark.django_db
class TestApi:
    @pytest.mark.parametrize("given, message", [
        ({"ios": "javascript:alert(1)"}, "Destination for iOS: The destination must start with http:// or https://."),
        ({"split": [{"url": A, "weight": -1}, {"url": B, "weight": 1}]}, "the weight must be a whole number"),
        ({"other": "offer.html"}, "must start with http"),
        ({"android": "https://example.com/\x00"}, "the address contains control characters"),
        ("not rules", "Rules must be an object"),
    ])
    def test_bad_rules_answer_400_with_the_reason(self, team_users, placement, given, message):
        client = api_as(team_users.teammate)
        for url in (f"/api/placements/{placement.pk}/", f"/api/campaigns/{placement.campaign_id}/"):
            response = client.patch(url, {"rules": given}, format="json")
            assert response.status_code == 400
            [reason] = response.json()["rules"]
            assert message in reason
        assert not DestinationChange.objects.exists()

    def test_it_creates_a_placement_with_rules_and_shows_the_effective_ones(self, team_users, placement):
        with_rules(placement.campaign, ios=APP_STORE, starts_at="2026-01-01T00:00")
        client = api_as(team_users.owner)
        response = client.post("/api/placements/", {"campaign": placement.campaign_id, "name": "Flyer",
                                                    "rules": {"android": PLAY}}, format="json")
        assert response.status_code == 201
        assert response.json()["effective_rules"] == {"android": PLAY, "starts_at": "2026-01-01T00:00:00+00:00"}

    def test_it_lists_the_destination_history_to_members_only(self, team_users, placement):
        client = api_as(team_users.teammate)
        client.patch(f"/api/placements/{placement.pk}/", {"rules": {"ios": APP_STORE}}, format="json")
        client.patch(f"/api/campaigns/{placement.campaign_id}/", {"fallback_url": ""}, format="json")
        viewer = api_as(team_users.viewer)
        listed = viewer.get(f"/api/campaigns/{placement.campaign_id}/destination-changes/").json()
        assert [row["field"] for row in listed["results"]] == ["fallback_url", "rules"]
        [only] = viewer.get(f"/api/placements/{placement.pk}/destination-changes/").json()["results"]
        assert (only["field"], only["after"], only["changed_by"]) == ("rules", rules.as_text({"ios": APP_STORE}),
                                                                       team_users.teammate.username)
        outsider = api_as(team_users.outsider)
        assert outsider.get(f"/api/placements/{placement.pk}/destination-changes/").status_code == 404

    @pytest.mark.parametrize("path", ["campaigns/{campaign}", "placements/{placement}"])
    def test_the_history_takes_no_ordering_and_says_so(self, team_users, placement, path):
        # It answered 200 in its own order, whatever `ordering` asked, where every list answers 400 for a bad one
        url = "/api/" + path.format(campaign=placement.campaign_id, placement=placement.pk) + "/destination-changes/"
        response = api_as(team_users.owner).get(url + "?ordering=bogus")
        assert response.status_code == 400
        assert response.json() == {"ordering": ["Changes come newest first: this list takes no ordering."]}
        assert api_as(team_users.owner).get(url + "?page=1").status_code == 200


@pytest.mark.django_db
class TestAdmin:
    def test_the_admin_validates_and_records_rules(self, client, team_users, placement):
        make_staff(team_users.teammate)
        client.force_login(team_users.teammate)
        campaign = placement.campaign
        form = {"name": "Spring Sale", "team": campaign.team_id, "destination": "https://shop.example.com/",
                "fallback_url": FALLBACK, "utm_source": "qr", "utm_medium": "print", "utm_campaign": "spring-sale",
                "dates_route": "on", **NO_PLACEMENTS}
        refused = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                              {**form, "rules": '{"ios": "javascript:alert(1)"}'})
        assert refused.status_code == 200 and "rules" in refused.context["adminform"].form.errors
        done = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                           {**form, "rules": json.dumps({"ios": APP_STORE})})
        assert done.status_code == 302
        campaign.refresh_from_db()
        assert campaign.rules == {"ios": APP_STORE}
        assert DestinationChange.objects.get().field == "rules"


class TestRuleWords:
    @pytest.mark.parametrize(("rule", "words"), [
        ("ios", "iPhone (iOS) destination"), ("android", "Android destination"),
        ("other", "Other systems' destination"), ("before_start", "Before the start date"),
        ("after_end", "After the end date"), ("ab:0", "A/B variant A"), ("ab:2", "A/B variant C"),
        ("", "Main destination (no rule)"), ("geo", "Rule “geo”"),
    ])
    def test_it_names_each_recorded_rule_in_plain_words(self, rule, words):
        assert rules.rule_label(rule) == words

    def test_it_names_a_variant_by_its_destination(self):
        variants = rules.variant_destinations([{"split": [{"url": B, "weight": 1}, {"url": A, "weight": 1}]},
                                               {"split": [{"url": A, "weight": 2}]}, {}])
        assert variants == {VB: B, VA: A}
        assert rules.rule_label(VA, variants) == f"A/B: {A}"
        assert rules.rule_label(rules.variant_rule("https://gone.example.com/"), variants) == (
            "A/B: a destination no longer in any split")

    def test_it_orders_rules_by_precedence_then_variants_then_the_main_destination(self):
        recorded = ["", "ab:10", "ios", VA, "after_end", "geo", "before_start"]
        assert sorted(recorded, key=rules.rule_order) == ["before_start", "after_end", "ios", "ab:10", VA, "geo", ""]


@pytest.mark.parametrize(("stored", "words"), [
    ("2026-11-01T00:00:00+00:00", "1 Nov 2026 00:00 (UTC)"),
    ("2027-01-01T00:00:00+01:00", "1 Jan 2027 00:00 (UTC+01:00)"),
    ("2026-03-08T09:30:00-05:30", "8 Mar 2026 09:30 (UTC-05:30)"),
    ("not a moment", "not a moment"),
])
def test_a_rules_moment_reads_as_a_day_and_time(stored, words):
    assert rules.moment_in_words(stored) == words
    assert rules.describe({"starts_at": stored}) == f"from {words}"


def test_an_answer_names_a_few_unknown_rules_and_counts_the_rest():
    # Half a million unknown keys answered 4 MB naming each, however long.
    with pytest.raises(ValidationError) as refused:
        rules.clean_rules({f"k{i:06d}" + "x" * 100: 1 for i in range(50_000)}, rules.UTC)
    [message] = refused.value.messages
    assert len(message) < 2000 and "and 49980 more" in message
