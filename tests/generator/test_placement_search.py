"""The generation page's placement search: its JSON (`views.placement_search`), and the page that offers it in
place of the select once a team has more placements than a select should carry."""

from __future__ import annotations

import re

import pytest

from campaigns.models import Campaign, Placement
from generator import placement_picker
from generator.models import GenerationJob
from tests.clients import logged_in
from tests.generator.factories import VALID, many_placements, placement_of

pytestmark = pytest.mark.django_db
URL = "/generate/placements.json"


@pytest.fixture
def past_the_select(team_users) -> Campaign:
    """Acme with one placement more than the select offers."""
    return many_placements(team_users.team, placement_picker.SELECT_MAX + 1)


@pytest.fixture(autouse=True)
def _fresh_rate_history():
    # The generation rate is counted in the cache, which outlives a test's database rollback.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


class TestPlacementSearchView:
    def test_it_requires_login(self, client, settings):
        response = client.get(URL, {"q": "Poster"})
        assert response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)

    def test_it_finds_by_name_campaign_and_slug_with_the_short_link(self, team_users):
        poster = placement_of(team_users.team, "Station Poster")  # campaign "Acme spring"
        placement_of(team_users.team, "Flyer")
        client = logged_in(team_users.teammate)
        for query in ("station", "acme SPRING / post", poster.slug):
            found = client.get(URL, {"q": query}).json()
            assert found == {"more": False, "placements": [{
                "id": poster.pk, "name": "Station Poster", "campaign": "Acme spring", "slug": poster.slug,
                "link": f"http://TESTSERVER/R/{poster.slug}", "team": team_users.team.pk}]}, query
        assert [p["name"] for p in client.get(URL, {"q": "acme spring"}).json()["placements"]] == [
            "Flyer", "Station Poster"]  # by campaign, then name
        assert client.get(URL, {"q": "  "}).json() == {"placements": [], "more": False}

    def test_it_answers_at_most_twenty_and_says_there_are_more(self, team_users):
        many_placements(team_users.team, 45)
        found = logged_in(team_users.owner).get(URL, {"q": "poster"}).json()
        assert len(found["placements"]) == placement_picker.MATCHES == 20 and found["more"] is True
        assert len(logged_in(team_users.owner).get(URL, {"q": "poster 4"}).json()["placements"]) == 6  # 4, 40-44

    def test_it_lists_the_placement_typed_in_full_first_then_the_names_it_begins(self, team_users):
        # By campaign alone, "Poster" of campaign Zulu came after Alpha's "Poster 0"... and with more than twenty of
        # those it was never listed: typing a placement's whole name did not find it.
        many_placements(team_users.team, 30, campaign="Alpha")
        zulu = many_placements(team_users.team, 0, campaign="Zulu")
        Placement.objects.create(campaign=zulu, name="Poster")
        Placement.objects.create(campaign=zulu, name="Big Poster 1")
        client = logged_in(team_users.owner)
        found = client.get(URL, {"q": "poster"}).json()["placements"]
        assert [(p["campaign"], p["name"]) for p in found[:3]] == [
            ("Zulu", "Poster"), ("Alpha", "Poster 0"), ("Alpha", "Poster 1")]
        found = client.get(URL, {"q": "poster 1"}).json()["placements"]
        assert [p["name"] for p in found] == ["Poster 1"] + [f"Poster {n}" for n in range(10, 20)] + ["Big Poster 1"]

    def test_it_never_finds_another_teams_placements(self, team_users):
        theirs = placement_of(team_users.other_team, "Station Poster")
        ours = placement_of(team_users.team, "Station Poster")
        client = logged_in(team_users.teammate)
        assert [p["id"] for p in client.get(URL, {"q": "station"}).json()["placements"]] == [ours.pk]
        assert client.get(URL, {"q": theirs.slug}).json()["placements"] == []
        # Asked for their team: found nothing, like a team without a match
        asked = client.get(URL, {"q": "station", "team": team_users.other_team.pk}).json()
        assert asked == {"placements": [], "more": False}
        assert [p["id"] for p in client.get(URL, {"q": "station", "team": team_users.team.pk}).json()[
            "placements"]] == [ours.pk]

    def test_it_offers_a_viewer_nothing(self, team_users):
        placement_of(team_users.team, "Station Poster")
        assert logged_in(team_users.viewer).get(URL, {"q": "station"}).json()["placements"] == []

    def test_it_leaves_out_archived_campaigns(self, team_users):
        placement = placement_of(team_users.team, "Station Poster")
        placement.campaign.set_archived(True)
        assert logged_in(team_users.owner).get(URL, {"q": "station"}).json()["placements"] == []

    def test_it_refuses_a_team_that_is_not_a_number(self, team_users):
        response = logged_in(team_users.owner).get(URL, {"q": "x", "team": "acme"})
        # Written as every other JSON refusal is (`qartsite.responses.detail_response`): compact, where Django's
        # JsonResponse spaced its separators and escaped every character past ASCII.
        assert response.status_code == 400 and response["Content-Type"] == "application/json"
        assert response.content == b'{"detail":"The team must be a team\'s number."}'


class TestGeneratePageWithManyPlacements:
    def test_it_stays_small_with_a_thousand_placements(self, team_users):
        # A year of one team (5,000 placements) made the page 647 KB, every one an option: 1,000 made 127 KB.
        many_placements(team_users.team, 1000)
        html = logged_in(team_users.teammate).get("/generate/").content.decode()
        assert len(html.encode()) < 40_000, len(html.encode())
        assert "<option" not in html.split('name="placement_name"')[0].rsplit("<fieldset>", 1)[-1]
        assert 'data-placement-search="/generate/placements.json"' in html and "placement-search.js" in html

    def test_it_keeps_the_select_up_to_its_limit_and_searches_past_it(self, team_users):
        campaign = many_placements(team_users.team, placement_picker.SELECT_MAX)
        html = logged_in(team_users.teammate).get("/generate/").content.decode()
        assert html.count('">Poster ') == placement_picker.SELECT_MAX  # each an option "Poster 7 (Spring)"
        assert "data-placement-search" not in html and "placement-search.js" not in html
        Placement.objects.create(campaign=campaign, name="Poster one too many")
        html = logged_in(team_users.teammate).get("/generate/").content.decode()
        assert '">Poster ' not in html and html.count("http://testserver/r/") == 0
        assert '<label for="id_placement_name">Placement</label>' in html

    def test_it_preselects_a_placement_in_the_search_box(self, team_users, past_the_select):
        poster = past_the_select.placements.get(name="Poster 7")
        html = logged_in(team_users.teammate).get(f"/generate/?placement={poster.pk}").content.decode()
        assert re.search(rf'<input type="hidden" name="placement" value="{poster.pk}"', html)
        assert 'value="Spring / Poster 7"' in html and f'value="http://testserver/r/{poster.slug}"' in html
        assert f'"{poster.pk}": {{"link": "http://testserver/r/{poster.slug}"' in html  # generate.js's, this one's
        assert html.count("http://testserver/r/") == 2

    def test_it_starts_a_job_for_a_placement_typed_without_javascript(self, team_users, past_the_select,
                                                                      monkeypatch):
        from generator import jobs

        monkeypatch.setattr(jobs, "enqueue_generation", lambda job: None)
        monkeypatch.setattr(jobs, "queue_refusal", lambda operator=False: None)
        poster = past_the_select.placements.get(name="Poster 7")
        response = logged_in(team_users.teammate).post("/generate/", {
            **VALID, "team": team_users.team.pk, "placement": "", "placement_name": "spring / poster 7",
            "content": ""})
        assert response.status_code == 302
        job = GenerationJob.objects.get(team=team_users.team)
        assert (job.placement, job.content) == (poster, f"http://testserver/r/{poster.slug}")

    def test_it_says_once_that_a_typed_placement_is_unknown(self, team_users, past_the_select):
        theirs = placement_of(team_users.other_team, "Rival poster")
        client = logged_in(team_users.teammate)
        answers = [client.post("/generate/", {**VALID, "team": team_users.team.pk, "placement_name": typed,
                                              "content": ""}) for typed in ("nope", theirs.slug)]
        for answer, typed in zip(answers, ("nope", theirs.slug), strict=True):
            assert answer.status_code == 400
            assert answer.context["form"].errors == {"placement_name": [
                f"No placement of Acme is “{typed}”: type its slug (the end of its short link) or its campaign and "
                "name as “Campaign / Placement”, or leave it empty."]}
        assert Placement.objects.filter(slug=theirs.slug).exists()
