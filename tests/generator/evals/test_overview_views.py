"""The /evals/ index: staff only, the user's teams' sessions, labels and sweeps, links to each eval page."""

from __future__ import annotations

import pytest
from django.test import Client

from generator.models import EvalRun, HumanScanResult, LabelingSession


def staff_client(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def evals(team_users):
    ours = LabelingSession.objects.create(team=team_users.team, created_by=team_users.owner, name="Our session")
    LabelingSession.objects.create(team=team_users.other_team, created_by=team_users.outsider, name="Their session")
    HumanScanResult.objects.create(session=ours, image_name="a.png", scanned=True)
    HumanScanResult.objects.create(session=ours, image_name="b.png", scanned=False)
    EvalRun.objects.create(team=team_users.team, created_by=team_users.owner, name="Our sweep")
    EvalRun.objects.create(team=team_users.other_team, created_by=team_users.outsider, name="Their sweep")
    return ours


def test_it_lists_the_teams_sessions_labels_and_sweeps_with_links(team_users, evals):
    response = staff_client(team_users.viewer).get("/evals/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Our session" in page and "Our sweep" in page
    assert "2 human labels so far, 1 scanned" in page
    for link in ("/evals/labeling/", "/evals/alignment/", "/evals/runs/", f"/evals/labeling/{evals.pk}/done/"):
        assert f'href="{link}' in page


def test_it_hides_other_teams_work(team_users, evals):
    page = staff_client(team_users.viewer).get("/evals/").content.decode()
    assert "Their session" not in page and "Their sweep" not in page
    assert "1 session." in page and "1 run." in page


def test_it_is_for_staff_only(team_users):
    client = Client()
    assert client.get("/evals/").status_code == 302  # to the login page
    client.force_login(team_users.owner)
    assert client.get("/evals/").status_code == 403
