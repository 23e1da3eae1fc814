"""campaigns.restamps: a candidate made for another link, copied to carry the placement's own."""

from __future__ import annotations

import re

import pytest

from campaigns import artwork, restamps
from campaigns.models import Placement
from generator import verifier_models
from generator.core.codes import images, scan
from generator.models import Candidate, GenerationJob
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
        # the job page's words: squares of the code, not modules
        assert re.search(r": \d+ squares? of the code changed\.$", copy.job.result_message), copy.job.result_message
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
        assert re.search(r"The link's \d+ characters do not fit in this picture's code, which holds at most \d+ "
                         "characters like these", str(refused.value)), str(refused.value)
        assert "version" not in str(refused.value)

    def test_a_copy_made_in_a_larger_version_than_its_link_needs_restamps_again(self, team_users, placements):
        # Art made for a link in byte mode (version 4), restamped with a link in capitals (alphanumeric: version 3
        # would do), keeps version 4; restamped again, its code was looked for in version 3 and the copy read nothing.
        poster, flyer = placements
        original = make_art(team_users.team, team_users.owner, "http://testserver/r/AbCdEfGh2x")
        copy = restamps.restamp_for(original, poster, f"HTTP://TESTSERVER/R/{poster.slug}")
        again = restamps.restamp_for(copy, flyer, f"HTTP://TESTSERVER/R/{flyer.slug}")
        with again.image.open("rb") as stored:
            result = scan.verify(images.open_image(stored.read()), f"HTTP://TESTSERVER/R/{flyer.slug}")
        assert result.decoded == [f"HTTP://TESTSERVER/R/{flyer.slug}"] and not result.misread
        assert again.scan_details["version"] == 4

    def test_it_uses_its_copy_again_while_the_model_that_judged_it_is_active(self, team_users, placements):
        # A double submit, or a form shown again for another field's error, made a copy each time.
        poster, flyer = placements
        original = make_art(team_users.team, team_users.owner, link(flyer))
        copy = restamps.restamp_for(original, poster, link(poster), user=team_users.owner)
        assert restamps.restamp_for(original, poster, link(poster), user=team_users.teammate) == copy
        assert GenerationJob.objects.filter(placement=poster).count() == 1
        # A copy judged by an older model may judge otherwise now: a new one, judged by the active model.
        Candidate.objects.filter(pk=copy.pk).update(verifier_model="logistic-v0-retired")
        again = restamps.restamp_for(original, poster, link(poster))
        assert again != copy and again.verifier_model == verifier_models.active_model().id
        assert restamps.restamp_for(original, poster, link(poster)) == again
        # Another link (the site's address changed), another placement: a copy of its own.
        moved = restamps.restamp_for(original, poster, f"http://qart.example/r/{poster.slug}")
        assert moved not in (copy, again) and moved.job.content == f"http://qart.example/r/{poster.slug}"
        assert restamps.restamp_for(original, flyer, link(flyer)).job.placement == flyer


@pytest.mark.django_db
class TestPrepare:
    """The slow part of `choose`, before an entry point's locks: `choose` then verifies nothing and restamps nothing,
    and still decides."""

    def test_it_makes_the_copy_choose_then_uses(self, team_users, placements, verifications):
        poster, flyer = placements
        original = make_art(team_users.team, team_users.owner, link(flyer))
        restamps.prepare(poster, original, short_url=link(poster), user=team_users.teammate, restamp=True)
        assert len(verifications) == 1  # the copy's
        chosen = restamps.choose(poster, original, short_url=link(poster), restamp=True)
        assert len(verifications) == 1 and chosen.scan_details["restamped_from"] == original.pk
        assert chosen.job.owner == team_users.teammate and GenerationJob.objects.filter(placement=poster).count() == 1

    def test_it_judges_again_with_the_active_model(self, team_users, placements, verifications):
        poster, _ = placements
        stale = make_art(team_users.team, team_users.owner, link(poster), verdict="fail", probability=0.1,
                         judged_by="logistic-v0-retired")
        restamps.prepare(poster, stale, short_url=link(poster))
        stale.refresh_from_db()
        assert len(verifications) == 1 and stale.verdict == "pass"
        assert restamps.choose(poster, stale, short_url=link(poster)) == stale and len(verifications) == 1

    def test_it_raises_nothing_and_leaves_the_refusal_to_choose(self, team_users, placements):
        poster, _ = placements
        original = make_art(team_users.team, team_users.owner, "https://qart.example/r/x")  # version 3 at level H
        too_long = "https://a-much-longer-host.example.com/r/" + poster.slug * 4
        restamps.prepare(poster, original, short_url=too_long, restamp=True)
        with pytest.raises(artwork.ArtworkRefused, match="cannot be restamped"):
            restamps.choose(poster, original, short_url=too_long, restamp=True)

    def test_it_does_nothing_for_another_teams_candidate_or_without_a_restamp(self, team_users, placements,
                                                                              verifications):
        poster, flyer = placements
        theirs = make_art(team_users.other_team, team_users.outsider, link(poster), judged_by="logistic-v0-retired")
        restamps.prepare(poster, theirs, short_url=link(poster), restamp=True)
        elsewhere = make_art(team_users.team, team_users.owner, link(flyer))
        restamps.prepare(poster, elsewhere, short_url=link(poster))
        assert verifications == [] and not GenerationJob.objects.filter(placement=poster).exists()


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
