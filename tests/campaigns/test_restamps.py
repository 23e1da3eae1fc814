"""campaigns.restamps: a candidate made for another link, copied to carry the placement's own."""

from __future__ import annotations

import pytest

from campaigns import artwork, restamps
from campaigns.models import Placement
from generator.core.codes import images, scan
from tests.campaigns.conftest import make_art


@pytest.fixture
def placements(campaign) -> tuple[Placement, Placement]:
    return (Placement.objects.create(campaign=campaign, name="Poster"),
            Placement.objects.create(campaign=campaign, name="Flyer"))


def link(placement: Placement) -> str:
    return f"http://testserver/r/{placement.slug}"


@pytest.mark.django_db
class TestRestampFor:
    def test_it_makes_a_verified_copy_that_carries_the_placements_link(self, team_users, placements):
        poster, flyer = placements
        original = make_art(team_users.team, team_users.owner, link(flyer))
        copy = restamps.restamp_for(original, poster, link(poster), user=team_users.teammate)
        assert copy.job.content == link(poster) and copy.job.placement == poster and copy.job.team == team_users.team
        assert copy.job.owner == team_users.teammate and f"generation #{original.job_id}" in copy.job.result_message
        with copy.image.open("rb") as stored:
            result = scan.verify(images.open_image(stored.read()), link(poster))
        assert result.decoded == [link(poster)] and not result.misread
        assert copy.verdict == "pass" and copy.scan_details["restamped_from"] == original.pk
        assert artwork.problem(poster, copy) is None

    def test_it_refuses_with_the_reason_when_the_link_does_not_fit(self, team_users, placements):
        poster, flyer = placements
        original = make_art(team_users.team, team_users.owner, "https://qart.example/r/x")  # version 3 at level H
        with pytest.raises(artwork.ArtworkRefused, match="cannot be restamped") as refused:
            restamps.restamp_for(original, poster, "https://a-much-longer-host.example.com/r/" + poster.slug * 4)
        assert refused.value.code == artwork.LINK


@pytest.mark.django_db
class TestChoose:
    def test_it_restamps_only_when_asked(self, team_users, placements):
        poster, flyer = placements
        original = make_art(team_users.team, team_users.owner, link(flyer))
        with pytest.raises(artwork.ArtworkRefused) as refused:
            restamps.choose(poster, original, short_url=link(poster))
        assert refused.value.code == artwork.LINK
        chosen = restamps.choose(poster, original, short_url=link(poster), restamp=True)
        assert chosen != original and chosen.job.content == link(poster)

    def test_a_passing_candidate_for_this_link_is_used_as_it_is(self, team_users, placements):
        poster, _ = placements
        art = make_art(team_users.team, team_users.owner, link(poster))
        assert restamps.choose(poster, art, short_url=link(poster), restamp=True) == art
