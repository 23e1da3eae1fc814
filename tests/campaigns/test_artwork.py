"""campaigns.artwork: the one rule for what may become a placement's artwork."""

from __future__ import annotations

import pytest

from campaigns import artwork
from campaigns.models import Placement
from tests.campaigns.conftest import make_art


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station poster")


def link(placement: Placement) -> str:
    return f"http://testserver/r/{placement.slug}"


@pytest.mark.django_db
class TestPrintVerdict:
    def test_it_passes_a_passing_candidate(self, team_users, placement):
        verdict = artwork.print_verdict(make_art(team_users.team, team_users.owner, link(placement)))
        assert verdict.passed and verdict.reason == ""

    def test_it_fails_a_failing_or_misread_candidate_with_the_reason(self, team_users, placement):
        failing = make_art(team_users.team, team_users.owner, link(placement), verdict="fail", probability=0.03)
        verdict = artwork.print_verdict(failing)
        assert not verdict.passed and "does not pass the scan check (scan probability 3%)" in verdict.reason
        misread = make_art(team_users.team, team_users.owner, link(placement))
        misread.misread = True
        assert "could read another text" in artwork.print_verdict(misread).reason


@pytest.mark.django_db
class TestProblem:
    def test_it_accepts_a_passing_candidate_carrying_the_placements_link_on_any_host(self, team_users, placement):
        art = make_art(team_users.team, team_users.owner, f"http://127.0.0.1:8140/r/{placement.slug}")
        assert artwork.problem(placement, art) is None

    @pytest.mark.parametrize("host", ["http://staging.old-host.example", "https://testserver.evil.example",
                                      "ftp://testserver", "http://testserver:notaport"])
    def test_it_refuses_the_placements_path_on_a_host_of_another_site(self, team_users, placement, host):
        # Art made on a staging or old host carries a link whose scans this site never sees.
        art = make_art(team_users.team, team_users.owner, f"{host}/r/{placement.slug}")
        refused = artwork.problem(placement, art)
        assert refused.code == artwork.LINK and "Restamp it for this placement" in refused.message
        assert "short link on another site's address" in refused.message  # not "not this link (/r/<the same>)"

    def test_with_site_root_only_its_host_carries_the_link_by_either_scheme(self, team_users, placement, settings):
        # Behind a TLS proxy art may have been made over http: the same site. A port other than the default is not.
        settings.SITE_ROOT = "https://qart.example"
        for ours in (f"https://QART.example/r/{placement.slug}", f"http://qart.example/r/{placement.slug}",
                     f"https://qart.example:443/r/{placement.slug}"):
            assert artwork.problem(placement, make_art(team_users.team, team_users.owner, ours)) is None, ours
        for other in (f"https://qart.example:8443/r/{placement.slug}", f"http://testserver/r/{placement.slug}",
                      f"https://qart.example.evil/r/{placement.slug}"):
            assert artwork.problem(placement, make_art(team_users.team, team_users.owner, other)).code == artwork.LINK

    def test_a_content_that_is_no_url_is_refused_not_a_500(self, team_users, placement):
        broken = make_art(team_users.team, team_users.owner, "http://[::1/r/x", verdict="pass")
        assert not artwork.carries_short_link(broken.job.content, placement)

    def test_it_refuses_another_teams_candidate(self, team_users, placement):
        theirs = make_art(team_users.other_team, team_users.outsider, link(placement))
        assert artwork.problem(placement, theirs).code == artwork.TEAM

    def test_it_refuses_a_candidate_for_another_link_offering_a_restamp(self, team_users, placement):
        other = Placement.objects.create(campaign=placement.campaign, name="Flyer")
        refused = artwork.problem(placement, make_art(team_users.team, team_users.owner, link(other)))
        assert refused.code == artwork.LINK and f"/r/{other.slug}" in refused.message
        assert "Restamp it for this placement" in refused.message

    def test_a_failing_candidate_needs_a_reason(self, team_users, placement):
        failing = make_art(team_users.team, team_users.owner, link(placement), verdict="fail", probability=0.0)
        assert artwork.problem(placement, failing).code == artwork.SCAN
        assert artwork.problem(placement, failing, print_anyway_reason="   ").code == artwork.SCAN
        assert artwork.problem(placement, failing, print_anyway_reason="client proof") is None

    def test_a_candidate_an_older_verifier_model_judged_is_judged_again_when_chosen(self, team_users, placement):
        # Stored as failing by a model no longer active; its image is a clean code, so the active model passes it.
        stale = make_art(team_users.team, team_users.owner, link(placement), verdict="fail", probability=0.1,
                         judged_by="logistic-v0-retired")
        assert not artwork.print_verdict(stale).passed  # pages show what is stored
        assert artwork.problem(placement, stale) is None  # choosing it verifies it again first
        stale.refresh_from_db()
        assert stale.verdict == "pass" and stale.verifier_model != "logistic-v0-retired"

    def test_a_candidate_whose_image_is_gone_cannot_be_judged_again_and_says_so(self, team_users, placement):
        stale = make_art(team_users.team, team_users.owner, link(placement), judged_by="logistic-v0-retired")
        stale.image.storage.delete(stale.image.name)
        refused = artwork.problem(placement, stale)
        assert refused.code == artwork.SCAN and "missing or unreadable" in refused.message


@pytest.mark.django_db
class TestApply:
    def test_it_records_who_when_and_why_for_failing_artwork_and_clears_it_for_passing(self, team_users, placement):
        failing = make_art(team_users.team, team_users.owner, link(placement), verdict="fail", probability=0.1)
        artwork.apply(placement, failing, user=team_users.teammate, print_anyway_reason=" a test print ")
        placement.save()
        placement.refresh_from_db()
        assert placement.print_anyway_by == team_users.teammate and placement.print_anyway_at is not None
        assert placement.print_anyway_reason == "a test print"
        assert "does not pass" in artwork.will_not_scan(placement)
        artwork.apply(placement, make_art(team_users.team, team_users.owner, link(placement)), user=team_users.owner)
        placement.save()
        placement.refresh_from_db()
        assert placement.print_anyway_by is None and placement.print_anyway_reason == ""
        assert artwork.will_not_scan(placement) == ""
