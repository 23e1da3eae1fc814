"""Admin for human scan labels: team isolation and the CSV export action."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission

from generator.models import HumanScanResult, LabelingSession


@pytest.fixture
def staff_owner(team_users):
    user = team_users.owner
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_humanscanresult",
                                                                       "view_labelingsession"]))
    return user


@pytest.fixture
def labels(team_users):
    ours = LabelingSession.objects.create(name="ours sitting", team=team_users.team)
    theirs = LabelingSession.objects.create(name="theirs sitting", team=team_users.other_team)
    return {
        "ours": HumanScanResult.objects.create(session=ours, image_name="ours.png", device="iPhone", scanned=True),
        "theirs": HumanScanResult.objects.create(session=theirs, image_name="theirs.png", scanned=False),
        "loose": HumanScanResult.objects.create(image_name="loose.png", scanned=False),
    }


@pytest.mark.django_db
class TestHumanScanResultAdmin:
    def test_it_shows_staff_only_their_teams_results(self, client, staff_owner, labels):
        client.force_login(staff_owner)
        body = client.get("/admin/generator/humanscanresult/").content.decode()
        assert "ours.png" in body and "theirs.png" not in body and "loose.png" not in body
        sessions = client.get("/admin/generator/labelingsession/").content.decode()
        assert "ours sitting" in sessions and "theirs sitting" not in sessions

    def test_it_filters_by_scanned_and_device(self, client, admin_user, labels):
        client.force_login(admin_user)
        body = client.get("/admin/generator/humanscanresult/?scanned__exact=1&device=iPhone").content.decode()
        assert "ours.png" in body and "theirs.png" not in body

    def test_it_exports_selected_results_as_csv(self, client, admin_user, labels):
        client.force_login(admin_user)
        response = client.post("/admin/generator/humanscanresult/", {
            "action": "export_csv", "_selected_action": [labels["ours"].pk, labels["loose"].pk]})
        assert response["Content-Type"] == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert sorted((r["image"], r["scanned"]) for r in rows) == [("loose.png", "no"), ("ours.png", "yes")]
