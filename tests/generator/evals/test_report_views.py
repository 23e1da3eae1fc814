"""The staff sweep pages: run list with progress, the report page and its plots, and "make this the default"."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from generator.models import GenerationPreset
from tests.conftest import staff
from tests.generator.factories import job_with_candidates
from tests.generator.sweep_data import key_of, make_run

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n"


def logged_in(user, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def sweep(team_users):
    staff(team_users.owner, team_users.teammate, team_users.viewer, team_users.outsider)
    return make_run(team_users.team, team_users.owner)


def page(sweep) -> str:
    return f"/evals/runs/{sweep.pk}/"


def test_it_lists_the_teams_runs_with_progress(sweep, team_users):
    make_run(team_users.other_team, name="rival sweep")
    html = logged_in(team_users.viewer).get("/evals/runs/").content.decode()
    assert "spring sweep" in html and "rival sweep" not in html
    assert "8 / 10" in html
    assert "8/10 done (80%), 1 queued, 1 failed; ETA" in html  # qart_sweep's progress line


def test_it_shows_the_report_to_a_viewer(sweep, team_users):
    response = logged_in(team_users.viewer).get(page(sweep))
    html = response.content.decode()
    assert response.status_code == 200
    assert "87.5%" in html and "52.9%–97.8%" in html  # 7 of 8 with its Wilson interval
    assert 'name="config_key"' not in html  # viewers look only: no "make default" forms
    for name in ("scan_rate", "batch", "aesthetic", "latency", "pareto", "toast"):
        assert f"/evals/runs/{sweep.pk}/plots/{name}.png" in html


@pytest.mark.parametrize("name", ["scan_rate", "batch", "aesthetic", "latency", "pareto", "toast"])
def test_it_draws_each_plot(sweep, team_users, name):
    response = logged_in(team_users.viewer).get(f"{page(sweep)}plots/{name}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG)
    # It had no Cache-Control: a shared cache could keep one team's plot, a browser an old drawing of a running sweep.
    assert response["Cache-Control"] == "private, no-cache"


def test_it_draws_the_toast_plot_for_the_chosen_prompt_and_axes(sweep, team_users):
    client = logged_in(team_users.viewer)
    good = client.get(f"{page(sweep)}plots/toast.png?prompt=1&rows=control_start&cols=conditioning_scale")
    assert good.content.startswith(PNG)
    bad = client.get(f"{page(sweep)}plots/toast.png?prompt=1&rows=steps")
    assert bad.status_code == 400 and "“steps” is not a swept parameter" in bad.content.decode()
    assert client.get(f"{page(sweep)}plots/toast.png?prompt=9").status_code == 400
    assert client.get(f"{page(sweep)}plots/nothing.png").status_code == 400
    assert "prompt must be a number" in client.get(page(sweep) + "?prompt=x").content.decode()


def test_it_quotes_a_bad_axis_as_every_message_does(sweep, team_users):
    # The query string's axis came back as repr writes it ("it's\n"), unlike every other message's quoting.
    bad = logged_in(team_users.viewer).get(f"{page(sweep)}plots/toast.png?rows=it%27s%0A")
    assert bad.status_code == 400
    assert bad.content.decode().startswith("“it's\\u000a” is not a swept parameter of this run")


def test_it_is_for_staff_only(sweep, team_users):
    team_users.teammate.is_staff = False
    team_users.teammate.save()
    client = logged_in(team_users.teammate)
    for url in ("/evals/runs/", page(sweep), f"{page(sweep)}plots/batch.png"):
        assert client.get(url).status_code == 403
    assert client.post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0)}).status_code == 403
    assert Client().get(page(sweep)).status_code == 302  # signed out: to the sign-in page
    assert not GenerationPreset.objects.exists()


def test_it_hides_another_teams_run(sweep, team_users):
    client = logged_in(team_users.outsider)
    for url in (page(sweep), f"{page(sweep)}plots/scan_rate.png"):
        assert client.get(url).status_code == 404
    assert client.post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0)}).status_code == 404
    assert not GenerationPreset.objects.exists()


def test_it_lets_only_editors_make_a_default(sweep, team_users):
    response = logged_in(team_users.viewer).post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0)})
    assert response.status_code == 403
    assert not GenerationPreset.objects.exists()


def test_it_needs_the_csrf_token(sweep, team_users):
    client = logged_in(team_users.teammate, csrf=True)
    assert client.post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0)}).status_code == 403
    assert not GenerationPreset.objects.exists()
    html = client.get(page(sweep)).content.decode()
    assert html.count('name="config_key"') == 4  # editors get a "make default" form per configuration
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = client.post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert GenerationPreset.objects.get(is_default=True).params["conditioning_scale"] == 1.5


def test_it_refuses_an_unknown_configuration(sweep, team_users):
    response = logged_in(team_users.teammate).post(f"{page(sweep)}default/", {"config_key": "cs=9"})
    assert response.status_code == 400 and b"no finished samples" in response.content


def test_it_replaces_the_default_and_the_generation_form_starts_from_it(sweep, team_users):
    client = logged_in(team_users.teammate)
    client.post(f"{page(sweep)}default/", {"config_key": key_of(1.0, 0.25)})
    client.post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0)})
    defaults = GenerationPreset.objects.filter(team=team_users.team, is_default=True)
    assert [p.name for p in defaults] == [f"spring sweep: {key_of(1.5, 0.0)}"]
    assert GenerationPreset.objects.filter(team=team_users.team).count() == 2

    html = logged_in(team_users.owner).get("/generate/").content.decode()
    assert re.search(r'name="conditioning_scale" value="1.5"', html)
    assert re.search(r'name="control_start" value="0.0"', html)
    assert re.search(r'name="steps" value="20"', html) and re.search(r'name="candidates_per_batch" value="4"', html)
    assert "chosen by the sweep “spring sweep”" in html
    assert re.search(r'name="seed"(?![^>]*value=)', html)  # the sweep's fixed seed is not a default


def test_it_leaves_another_teams_generation_form_alone(sweep, team_users):
    logged_in(team_users.teammate).post(f"{page(sweep)}default/", {"config_key": key_of(1.5, 0.0)})
    html = logged_in(team_users.outsider).get("/generate/").content.decode()
    assert "default preset" not in html and not re.search(r'name="conditioning_scale" value=', html)


def test_the_toast_opens_only_the_images_of_the_runs_own_candidates(sweep, team_users):
    # A sample's scores are copied data: a file name written into them (another team's upload) must open nothing.
    from generator.evals.report_views import image_loader

    ours = job_with_candidates(team_users.team, team_users.owner, count=1)
    theirs = job_with_candidates(team_users.other_team, team_users.outsider, count=1)
    sample = sweep.samples.filter(status="done").first()
    sample.job = ours
    sample.save(update_fields=["job"])
    load = image_loader(sweep)
    assert load(ours.candidates.get().image.name).size == (64, 64)
    assert load(theirs.candidates.get().image.name) is None
    assert load(sample.scores[0]["image"]) is None  # a stored file that no candidate of the run names
