"""Admin isolation: staff who are not superusers see only their own teams' rows."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile

from campaigns.models import Campaign, Placement, ScanEvent
from generator.models import Candidate, GenerationJob, Prompt


@pytest.fixture
def staff_owner(team_users):
    user = team_users.owner
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def both_teams(team_users):
    rows = {}
    for key, team in (("ours", team_users.team), ("theirs", team_users.other_team)):
        campaign = Campaign.objects.create(team=team, name=f"{key} campaign", destination="https://example.com")
        placement = Placement.objects.create(campaign=campaign, name=f"{key} poster")
        ScanEvent.objects.create(placement=placement, device_class="mobile")
        prompt = Prompt.remember(team_users.owner, f"{key} prompt", "", team=team)
        job = GenerationJob.objects.create(owner=team_users.owner, team=team, prompt=prompt, content="https://x.io")
        candidate = Candidate(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass", rank=1)
        candidate.image.save("c.png", ContentFile(b"\x89PNG"), save=True)
        rows[key] = (campaign, placement, prompt, job, candidate)
    return rows


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, index",
    [
        ("/admin/campaigns/campaign/", 0),
        ("/admin/campaigns/placement/", 1),
        ("/admin/generator/prompt/", 2),
        ("/admin/generator/generationjob/", 3),
    ],
)
def test_staff_see_only_their_teams_rows(client, staff_owner, both_teams, url, index):
    client.force_login(staff_owner)
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    ours, theirs = both_teams["ours"][index], both_teams["theirs"][index]
    assert f"/{ours.pk}/change/" in body
    assert f"/{theirs.pk}/change/" not in body
    assert client.get(f"{url}{theirs.pk}/change/").status_code in (302, 404)


@pytest.mark.django_db
def test_staff_see_only_their_teams_candidates_and_scans(client, staff_owner, both_teams):
    client.force_login(staff_owner)
    candidates = client.get("/admin/generator/candidate/").content.decode()
    assert f"/{both_teams['ours'][4].pk}/change/" in candidates
    assert f"/{both_teams['theirs'][4].pk}/change/" not in candidates
    scans = client.get("/admin/campaigns/scanevent/").content.decode()
    assert "ours poster" in scans and "theirs poster" not in scans


@pytest.mark.django_db
def test_scan_events_are_read_only(client, admin_user, both_teams):
    client.force_login(admin_user)
    event = ScanEvent.objects.first()
    assert client.get("/admin/campaigns/scanevent/add/").status_code == 403
    response = client.post(f"/admin/campaigns/scanevent/{event.pk}/change/", {"device_class": "desktop"})
    event.refresh_from_db()
    assert event.device_class == "mobile" and response.status_code in (200, 403)
