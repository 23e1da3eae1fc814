"""Placement alerts (`campaigns.alerts`): the rule on simulated traffic (false alarms, time to flag a stop), the
daily check on the database, e-mail, webhooks and dismissing on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core import mail
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse

from campaigns import alerts, webhooks
from campaigns.alerts import BASELINE_DAYS, RECENT_DAYS, Counts, verdict
from campaigns.models import Placement, PlacementAlert, ScanEvent, ScanRollup, WebhookEndpoint

NOW = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)


def flagged_days(daily: np.ndarray) -> int:
    """How many daily checks flag a placement with these daily counts (each check sees whole days before it)."""
    sums = np.concatenate([[0], np.cumsum(daily)])
    flagged = 0
    for today in range(BASELINE_DAYS + RECENT_DAYS, len(daily) + 1):
        recent = today - RECENT_DAYS
        counts = Counts(baseline=int(sums[recent] - sums[recent - BASELINE_DAYS]),
                        last_week=int(sums[today] - sums[recent]), last_day=int(daily[today - 1]))
        flagged += verdict(counts) is not None
    return flagged


class TestRule:
    @pytest.mark.parametrize("per_day", [0.3, 2, 20, 300])
    def test_it_raises_at_most_one_false_alarm_per_placement_year_of_steady_traffic(self, per_day):
        rng = np.random.default_rng(15)
        years = 60
        daily = rng.poisson(per_day, size=365 * years + BASELINE_DAYS + RECENT_DAYS)
        # Every flagged day counted (not only new alerts): an upper bound on what people would see.
        assert flagged_days(daily) / years <= 1

    def test_it_flags_a_stop_of_a_placement_averaging_20_a_day_within_48_hours(self):
        rng = np.random.default_rng(48)
        check_every = alerts.CHECK_EVERY // 3600
        delays = []
        for _ in range(300):
            history = 24 * (BASELINE_DAYS + RECENT_DAYS + 5)
            stop = history + int(rng.integers(0, 24))  # an hour: scans before it, none from it on
            hourly = np.concatenate([rng.poisson(20 / 24, size=stop), np.zeros(24 * 5, dtype=int)])
            sums = np.concatenate([[0], np.cumsum(hourly)])
            check = stop - int(rng.integers(0, check_every))  # the daily checks' phase
            while True:
                check += check_every
                today = check // 24 * 24  # midnight of the check's day, in hours
                recent = today - 24 * RECENT_DAYS
                counts = Counts(baseline=int(sums[recent] - sums[recent - 24 * BASELINE_DAYS]),
                                last_week=int(sums[today] - sums[recent]),
                                last_day=int(sums[check] - sums[check - 24]))
                if verdict(counts) is not None:
                    break
            delays.append(check - stop)
        assert max(delays) <= 48

    def test_it_does_not_call_a_quiet_day_of_a_small_placement_a_stop(self):
        assert verdict(Counts(baseline=28 * 3, last_week=21, last_day=0)) is None

    def test_it_calls_a_sharp_fall_a_drop_but_not_a_mild_one(self):
        assert verdict(Counts(baseline=28 * 40, last_week=7 * 5, last_day=5)) == PlacementAlert.Kind.DROPPED
        assert verdict(Counts(baseline=28 * 40, last_week=7 * 30, last_day=30)) is None

    def test_it_sums_binomial_tails_without_underflow(self):
        assert alerts.binomial_cdf(0, 3, 0.5) == pytest.approx(0.125)
        assert alerts.binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)
        # 0.8 ** 40000 underflows to 0 in floats; the tail itself is about 1e-35.
        assert 1e-40 < alerts.binomial_cdf(7000, 40000, 0.2) < 1e-30


@pytest.fixture
def placement(campaign) -> Placement:
    made = Placement.objects.create(campaign=campaign, name="Station Poster")
    Placement.objects.filter(pk=made.pk).update(created=NOW - timedelta(days=60))
    return made


def steady(placement: Placement, per_day: int, days: int = 40, quiet_last: int = 0) -> None:
    """Daily rollups of `per_day` scans for `days` days before NOW's day, the last `quiet_last` of them empty,
    and raw scans in the last 24 hours unless quiet."""
    today = NOW.date()
    for back in range(1, days + 1):
        day = today - timedelta(days=back)
        scans = 0 if back <= quiet_last else per_day
        if scans:
            at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
            ScanRollup.objects.create(placement=placement, day=day, dimension="", value="", scans=scans,
                                      visitors=scans, first_scan=at, last_scan=at)
    if not quiet_last:
        ScanEvent.objects.create(placement=placement, time=NOW - timedelta(hours=3))


class TestDailyCheck:
    def test_it_flags_a_stopped_placement_once_and_tells_editors_and_webhooks(
            self, placement, team_users, monkeypatch, django_capture_on_commit_callbacks):
        for user, email in ((team_users.owner, "owner@example.com"), (team_users.teammate, "ed@example.com"),
                            (team_users.viewer, "viewer@example.com")):
            user.email = email
            user.save()
        WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/",
                                       events=["placement.alert"], secret=webhooks.new_secret())
        queued = []

        def enqueue(ids, event, messages) -> list[int]:
            queued.append((event, messages))
            return list(ids)

        monkeypatch.setattr(webhooks, "enqueue", enqueue)
        steady(placement, per_day=30, quiet_last=2)
        with django_capture_on_commit_callbacks(execute=True):
            [alert] = alerts.check_all(NOW)
        assert alert.kind == PlacementAlert.Kind.STOPPED and "averaged 30.0 a day" in alert.message
        assert [sorted(message.to) for message in mail.outbox] == [["ed@example.com", "owner@example.com"]]
        [(event, [(message_id, data)])] = queued
        assert event == "placement.alert" and data["placement"] == placement.pk and data["kind"] == "stopped"
        assert alerts.check_all(NOW) == []  # open already: not raised again

    def test_an_alert_whose_webhook_cannot_be_kept_is_not_raised_without_it(self, placement, monkeypatch):
        # The alert and its webhook commit together: an alert stored without its webhook would never send it (the
        # next day's check finds it open already).
        def broken(*args):
            raise DatabaseError("the outbox could not be written")

        monkeypatch.setattr(webhooks, "emit", broken)
        steady(placement, per_day=30, quiet_last=2)
        with pytest.raises(DatabaseError):
            alerts.check_all(NOW)
        assert not PlacementAlert.objects.exists()

    def test_it_leaves_steady_young_archived_and_switched_off_placements_alone(self, placement, campaign):
        steady(placement, per_day=30)
        young = Placement.objects.create(campaign=campaign, name="New flyer")
        off = Placement.objects.create(campaign=campaign, name="Old flyer", active=False)
        Placement.objects.filter(pk=off.pk).update(created=NOW - timedelta(days=60))
        steady(off, per_day=30, quiet_last=3)
        assert alerts.check_all(NOW) == [] and young.alerts.count() == 0

    def test_a_dismissed_stop_is_not_raised_again_until_people_scan_again(self, placement):
        # The baseline holds the weeks before the stop for a month: it was raised again every day, e-mails and all.
        steady(placement, per_day=30, quiet_last=2)
        [alert] = alerts.check_all(NOW)
        alert.dismissed_at = NOW
        alert.save()
        for days in (1, 2, 10):
            assert alerts.check_all(NOW + timedelta(days=days)) == []
        ScanEvent.objects.create(placement=placement, time=NOW + timedelta(days=10))  # back, then stopped again
        [again] = alerts.check_all(NOW + timedelta(days=12))
        assert again.kind == PlacementAlert.Kind.STOPPED and again.pk != alert.pk

    def test_it_leaves_a_campaign_past_its_last_day_alone(self, placement, campaign):
        steady(placement, per_day=30, quiet_last=3)
        campaign.ends_on = (NOW - timedelta(days=3)).date()  # ended as planned, not archived
        campaign.save()
        assert alerts.check_all(NOW) == []
        campaign.ends_on = (NOW + timedelta(days=3)).date()
        campaign.save()
        assert [a.kind for a in alerts.check_all(NOW)] == [PlacementAlert.Kind.STOPPED]

    def test_it_runs_once_a_day_across_workers(self, scan_redis, monkeypatch):
        scan_redis.delete(alerts.check_key())
        runs = []
        monkeypatch.setattr(alerts, "check_all", lambda: runs.append(1) or [])
        assert alerts.check_daily(scan_redis) == [] and alerts.check_daily(scan_redis) is None
        assert runs == [1]
        scan_redis.delete(alerts.check_key())


class TestDismiss:
    @pytest.fixture
    def alert(self, placement) -> PlacementAlert:
        return PlacementAlert.objects.create(placement=placement, kind="stopped", day=NOW.date(),
                                             message="No scans in the last 24 hours.")

    def test_it_shows_open_alerts_on_the_dashboard_and_lets_an_editor_dismiss_them(self, client, team_users, alert):
        client.force_login(team_users.teammate)
        page = client.get(reverse("campaigns:detail", args=[alert.placement.campaign_id])).content.decode()
        assert "No scans in the last 24 hours." in page and reverse("campaigns:alert_dismiss", args=[alert.pk]) in page
        response = client.post(reverse("campaigns:alert_dismiss", args=[alert.pk]))
        assert response.status_code == 302
        alert.refresh_from_db()
        assert alert.dismissed_by == team_users.teammate and alert.dismissed_at is not None
        page = client.get(reverse("campaigns:detail", args=[alert.placement.campaign_id])).content.decode()
        assert "No scans in the last 24 hours." not in page

    @pytest.mark.parametrize("who, status", [("viewer", 403), ("outsider", 404)])
    def test_it_lets_only_the_teams_editors_dismiss(self, client, team_users, alert, who, status):
        client.force_login(getattr(team_users, who))
        assert client.post(reverse("campaigns:alert_dismiss", args=[alert.pk])).status_code == status
        alert.refresh_from_db()
        assert alert.dismissed_at is None

    def test_it_hides_the_dismiss_button_from_viewers(self, client, team_users, alert):
        client.force_login(team_users.viewer)
        page = client.get(reverse("campaigns:detail", args=[alert.placement.campaign_id])).content.decode()
        assert "No scans in the last 24 hours." in page
        assert reverse("campaigns:alert_dismiss", args=[alert.pk]) not in page

    def test_it_needs_the_csrf_token(self, team_users, alert):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        assert client.post(reverse("campaigns:alert_dismiss", args=[alert.pk])).status_code == 403


class TestAlertApi:
    @pytest.fixture
    def alert(self, placement) -> PlacementAlert:
        return PlacementAlert.objects.create(placement=placement, kind="dropped", day=NOW.date(), message="Fell.")

    def api(self, user):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(user)
        return client

    def test_it_lists_open_alerts_and_lets_an_editor_dismiss_one(self, team_users, alert):
        client = self.api(team_users.teammate)
        assert [row["id"] for row in client.get("/api/alerts/?open=true").json()["results"]] == [alert.pk]
        response = client.post(f"/api/alerts/{alert.pk}/dismiss/")
        assert response.status_code == 200 and response.json()["dismissed_at"]
        assert client.get("/api/alerts/?open=true").json()["results"] == []

    @pytest.mark.parametrize("who, status", [("viewer", 403), ("outsider", 404)])
    def test_it_lets_only_the_teams_editors_dismiss_through_the_api(self, team_users, alert, who, status):
        assert self.api(getattr(team_users, who)).post(f"/api/alerts/{alert.pk}/dismiss/").status_code == status
        alert.refresh_from_db()
        assert alert.dismissed_at is None
