"""The generation pages' actions (`generator.action_views`): cancel a job, delete a finished one or say what keeps
it, and use a candidate as a placement's artwork (restamped for another link, printed anyway with a reason)."""

from __future__ import annotations

import re
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import webhooks
from campaigns.models import Placement, WebhookEndpoint, WebhookOutbox
from generator.core.codes import decision
from generator.models import Candidate, GenerationJob
from tests.clients import logged_in
from tests.generator.factories import CONTENT, for_placement, job_with_candidates, many_placements, placement_of, qr_png

pytestmark = pytest.mark.django_db


def card_form(html: str, candidate: Candidate) -> dict[str, str]:
    """What the "Use this one" form of `candidate`'s card sends as the page gives it (its csrf token aside): each
    input's name and value, as a browser without JavaScript sends them."""
    card = html[html.index(f'id="candidate-{candidate.pk}"'):]
    form = card[card.index('class="use-form"'):card.index("</form>")]
    return {name: value for name, value in re.findall(r'<input[^>]*? name="([^"]+)"(?:[^>]*? value="([^"]*)")?', form)
            if name != "csrfmiddlewaretoken"}


@pytest.mark.django_db
def test_the_job_page_deletes_a_finished_job_or_says_what_keeps_it(team_users, done_job):
    url = f"/generate/jobs/{done_job.pk}/delete/"
    assert f'action="{url}"' in logged_in(team_users.teammate).get(f"/generate/jobs/{done_job.pk}/").content.decode()
    assert f'action="{url}"' not in logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
    assert logged_in(team_users.viewer).post(url).status_code == 403
    assert logged_in(team_users.outsider).post(url).status_code == 404
    assert logged_in(team_users.owner).get(url).status_code == 405
    placement = placement_of(team_users.team)
    placement.artwork = done_job.candidates.first()
    placement.save()
    # Said on the page before any click (the button asked "Delete this job?" and then refused), with no button
    page = logged_in(team_users.teammate).get(f"/generate/jobs/{done_job.pk}/").content.decode()
    assert re.search(r"data-kept-because>This job cannot be deleted now\. Its code is the artwork of “Station Poster”",
                     page)
    assert f'action="{url}"' not in page
    response = logged_in(team_users.teammate).post(url, follow=True)  # a page opened before: still refused
    assert "Its code is the artwork of “Station Poster”" in response.content.decode()
    assert GenerationJob.objects.filter(pk=done_job.pk).exists()
    placement.artwork = None
    placement.save()
    response = logged_in(team_users.teammate).post(url, follow=True)
    assert response.redirect_chain[-1][0] == "/generate/jobs/" and "Job deleted" in response.content.decode()
    assert not GenerationJob.objects.filter(pk=done_job.pk).exists()


@pytest.mark.django_db
def test_a_job_a_placement_chose_a_code_of_after_the_check_is_kept_not_a_500(team_users, done_job, monkeypatch):
    # The check passed, a placement chose one of its codes at the same moment, and the delete raised RestrictedError
    from rest_framework.test import APIClient

    from generator import jobs

    placement = placement_of(team_users.team)
    placement.artwork = done_job.candidates.first()
    placement.save()
    why_kept = jobs.why_kept
    checks = []

    def passed_before_the_choice(job):
        checks.append(job.pk)
        return "" if len(checks) % 2 else why_kept(job)  # each request's first check came before the choice

    monkeypatch.setattr(jobs, "why_kept", passed_before_the_choice)
    page = logged_in(team_users.teammate).post(f"/generate/jobs/{done_job.pk}/delete/", follow=True)
    assert page.status_code == 200 and "Its code is the artwork of “Station Poster”" in page.content.decode()
    api = APIClient()
    api.force_authenticate(team_users.teammate)
    answer = api.delete(f"/api/generations/{done_job.pk}/")
    assert answer.status_code == 409 and "Its code is the artwork of “Station Poster”" in answer.json()["detail"]
    assert GenerationJob.objects.filter(pk=done_job.pk).exists()


class TestCancel:
    def test_it_cancels_a_queued_job(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner)
        response = logged_in(team_users.teammate).post(f"/generate/jobs/{job.pk}/cancel/")
        assert response.status_code == 302
        job.refresh_from_db()
        assert job.status == "cancelled" and job.cancel_requested

    @pytest.mark.django_db(transaction=True)  # the cancel's webhook is queued once its transaction commits
    def test_it_cancels_at_once_while_redis_stalls_and_keeps_the_webhook_for_later(self, team_users, stalled_queues):
        # A stalled Redis (SIGSTOP, a fault drill) held each cancel the web timeout twice, the RQ job's look-up and
        # then its `generation.finished` webhook's queuing, and the next cancel as long again.
        endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/",
                                                  events=["generation.finished"], secret=webhooks.new_secret())
        queued = [job_with_candidates(team_users.team, team_users.owner, rq_job_id=f"qart-generation-{n}")
                  for n in range(2)]
        client, took = logged_in(team_users.teammate), []
        finished = job_with_candidates(team_users.team, team_users.owner, status="done")
        client.post(f"/generate/jobs/{finished.pk}/cancel/")  # the view's first run (imports), which asks no Redis
        for job in queued:
            started = time.monotonic()
            assert client.post(f"/generate/jobs/{job.pk}/cancel/").status_code == 302
            took.append(time.monotonic() - started)
        assert took[0] < 1.5 and took[1] < 0.3, took  # one wait of a second, then the breaker answers at once
        assert len(stalled_queues) == 1  # the webhook's queuing and the second cancel did not ask
        assert set(GenerationJob.objects.filter(pk__in=[job.pk for job in queued])
                   .values_list("status", flat=True)) == {"cancelled"}
        # Nothing lost: the drainer's flush queues them once Redis answers (`webhooks.flush_outbox`), from now on
        kept = WebhookOutbox.objects.filter(endpoint=endpoint)
        assert kept.count() == 2 and not kept.filter(next_try__gt=timezone.now()).exists()

    def test_it_refuses_viewers_and_gets(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner)
        client = logged_in(team_users.viewer)
        assert client.post(f"/generate/jobs/{job.pk}/cancel/").status_code == 403
        assert logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/cancel/").status_code == 405
        job.refresh_from_db()
        assert job.status == "queued" and not job.cancel_requested


class TestUseThisOne:
    def test_it_makes_the_candidate_the_jobs_placements_artwork(self, team_users, done_job):
        placement = placement_of(team_users.team)
        for_placement(done_job, placement, own=True)
        candidate = done_job.candidates.get(rank=2)
        response = logged_in(team_users.teammate).post(f"/generate/candidates/{candidate.pk}/use/")
        assert response.status_code == 302 and response["Location"].endswith(f"#candidate-{candidate.pk}")
        placement.refresh_from_db()
        assert placement.artwork == candidate

    def test_it_uses_a_chosen_placement_of_the_same_team(self, team_users, done_job):
        placement = placement_of(team_users.team)
        for_placement(done_job, placement)
        candidate = done_job.candidates.get(rank=1)
        client = logged_in(team_users.owner)
        assert "Use this one" in client.get(f"/generate/jobs/{done_job.pk}/").content.decode()
        client.post(f"/generate/candidates/{candidate.pk}/use/", {"placement": placement.pk})
        placement.refresh_from_db()
        assert placement.artwork == candidate

    def test_past_the_selects_limit_the_cards_form_sent_without_javascript_finds_what_was_typed(self, team_users,
                                                                                                   done_job):
        # Without JavaScript the card's search box is a text box: its hidden id stays empty, and the slug or
        # "Campaign / Placement" typed is found when the form is sent.
        from generator import placement_picker

        many_placements(team_users.team, placement_picker.SELECT_MAX)
        placement = placement_of(team_users.team)
        for_placement(done_job, placement)
        candidate = done_job.candidates.get(rank=1)
        client = logged_in(team_users.owner)
        sent = card_form(client.get(f"/generate/jobs/{done_job.pk}/").content.decode(), candidate)
        assert sent == {"placement": "", "placement_name": ""}
        missing = client.post(f"/generate/candidates/{candidate.pk}/use/",
                              {**sent, "placement_name": "Acme / Nowhere"}, follow=True).content.decode()
        assert ("No placement of Acme is “Acme / Nowhere”: type its slug (the end of its short link) or its campaign "
                "and name as “Campaign / Placement”, or leave it empty.") in missing
        placement.refresh_from_db()
        assert placement.artwork is None
        for typed in (placement.slug, "  acme spring / station poster "):
            Placement.objects.filter(pk=placement.pk).update(artwork=None)
            used = client.post(f"/generate/candidates/{candidate.pk}/use/", {**sent, "placement_name": typed},
                               follow=True)
            assert "Candidate #1 is now the artwork of" in used.content.decode(), typed
            placement.refresh_from_db()
            assert placement.artwork == candidate, typed

    def test_past_the_selects_limit_the_text_decides_once_it_no_longer_names_the_id_sent(self, team_users, done_job):
        # A browser restoring a form may send an old hidden id beside text that names another placement: the text
        # shown is what the person chose, as on the generation page (`placement_picker.still_names`).
        from generator import placement_picker

        spring = many_placements(team_users.team, placement_picker.SELECT_MAX)
        old = spring.placements.get(name="Poster 7")
        placement = placement_of(team_users.team)
        for_placement(done_job, placement)
        candidate = done_job.candidates.get(rank=1)
        client = logged_in(team_users.owner)
        for typed in (placement.slug, "Acme spring / Station Poster"):
            Placement.objects.filter(pk=placement.pk).update(artwork=None)
            client.post(f"/generate/candidates/{candidate.pk}/use/", {"placement": str(old.pk),
                                                                      "placement_name": typed}, follow=True)
            placement.refresh_from_db()
            old.refresh_from_db()
            assert (placement.artwork, old.artwork) == (candidate, None), typed
        # The text naming the id's own placement keeps it (the search fills in both): a picture for another link,
        # so the restamp is offered for that placement.
        kept = client.post(f"/generate/candidates/{candidate.pk}/use/", {"placement": str(old.pk),
                                                                         "placement_name": "Spring / Poster 7"})
        assert kept.status_code == 200 and "Poster 7" in kept.content.decode()

    def test_past_the_selects_limit_the_text_costs_no_second_read_of_the_placement(self, team_users, done_job,
                                                                                  django_assert_num_queries):
        # The text's check read the placement the id names, then the view read it again for its own team: a query
        # more on every click. Now one read: the id alone and the id with the text naming it cost the same, and
        # text naming another placement costs only the search for it.
        from generator import placement_picker

        spring = many_placements(team_users.team, placement_picker.SELECT_MAX)
        old = spring.placements.get(name="Poster 7")
        placement = placement_of(team_users.team)
        for_placement(done_job, placement)
        candidate = done_job.candidates.get(rank=1)
        client = logged_in(team_users.owner)

        def use(sent: dict[str, str]) -> None:
            Placement.objects.filter(pk=placement.pk).update(artwork=None)
            response = client.post(f"/generate/candidates/{candidate.pk}/use/", sent)
            placement.refresh_from_db()
            assert response.status_code == 302 and placement.artwork == candidate, sent

        by_id = {"placement": str(placement.pk)}
        use(by_id)  # the first request of a client reads what later ones find cached
        with CaptureQueriesContext(connection) as alone:
            use(by_id)
        with django_assert_num_queries(len(alone)):
            use({**by_id, "placement_name": "Acme spring / Station Poster"})
        with django_assert_num_queries(len(alone) + 1):
            use({"placement": str(old.pk), "placement_name": placement.slug})

    def test_past_the_selects_limit_another_teams_placement_is_neither_offered_nor_accepted(self, team_users,
                                                                                            done_job):
        # The owner edits the other team too: the search of this job's cards still asks for this job's team only.
        from generator import placement_picker
        from qartsite.models import Membership

        Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
        many_placements(team_users.team, placement_picker.SELECT_MAX + 1)
        theirs = placement_of(team_users.other_team)  # "Rival spring / Station Poster"
        for_placement(done_job, theirs)
        candidate = done_job.candidates.get(rank=1)
        client = logged_in(team_users.owner)
        html = client.get(f"/generate/jobs/{done_job.pk}/").content.decode()
        team = re.search(r'data-placement-search="([^"]+)" data-placement-team="(\d+)"', html)
        assert team and team[2] == str(team_users.team.pk)
        for query in ("station", theirs.slug, "Rival spring / Station Poster"):
            assert client.get(team[1], {"q": query, "team": team[2]}).json() == {"placements": [], "more": False}
        for typed in (theirs.slug, "Rival spring / Station Poster"):
            refused = client.post(f"/generate/candidates/{candidate.pk}/use/",
                                  {"placement": "", "placement_name": typed}, follow=True).content.decode()
            assert f"No placement of Acme is “{typed}”" in refused, typed
        chosen = client.post(f"/generate/candidates/{candidate.pk}/use/", {"placement": theirs.pk})
        assert chosen.status_code == 404
        # Their id with the text a search box shows for it: the id is not of this team's, so the text decides.
        shown = client.post(f"/generate/candidates/{candidate.pk}/use/", {
            "placement": theirs.pk, "placement_name": "Rival spring / Station Poster"}, follow=True).content.decode()
        assert "No placement of Acme is “Rival spring / Station Poster”" in shown
        theirs.refresh_from_db()
        assert theirs.artwork is None

    def test_it_verifies_again_a_candidate_judged_by_another_model(self, team_users, done_job):
        placement = placement_of(team_users.team)
        for_placement(done_job, placement, own=True)
        candidate = done_job.candidates.get(rank=1)
        link = f"http://testserver/r/{placement.slug}"
        candidate.image.save("code.png", ContentFile(qr_png(link)), save=False)
        candidate.verifier_model, candidate.verdict = "logistic-v1-0ld0ld00", "fail"
        candidate.save()
        logged_in(team_users.owner).post(f"/generate/candidates/{candidate.pk}/use/")
        candidate.refresh_from_db()
        placement.refresh_from_db()
        assert placement.artwork == candidate
        assert candidate.verifier_model == decision.MODEL and candidate.verdict == "pass"
        assert candidate.scan_details["reasons"] == [] and candidate.decoded_text == link

    def test_it_checks_a_candidate_of_an_unrecorded_model_before_the_scan_check(self, team_users, done_job):
        placement = placement_of(team_users.team)
        for_placement(done_job, placement, own=True)
        candidate = done_job.candidates.get(rank=1)  # a plain coloured square, stored as passing by some model
        Candidate.objects.filter(pk=candidate.pk).update(verifier_model="")
        response = logged_in(team_users.owner).post(f"/generate/candidates/{candidate.pk}/use/")
        assert 'data-refused="scan"' in response.content.decode()
        candidate.refresh_from_db()
        placement.refresh_from_db()
        assert candidate.verdict == "fail" and candidate.verifier_model == decision.MODEL and placement.artwork is None

    def test_it_says_so_when_the_image_is_gone_and_changes_nothing(self, team_users, done_job):
        from django.core.files.storage import default_storage

        placement = placement_of(team_users.team)
        done_job.__class__.objects.filter(pk=done_job.pk).update(content=f"http://testserver/r/{placement.slug}")
        candidate = done_job.candidates.get(rank=1)
        Candidate.objects.filter(pk=candidate.pk).update(verifier_model="logistic-v1-0ld0ld00")
        default_storage.delete(candidate.image.name)
        response = logged_in(team_users.owner).post(f"/generate/candidates/{candidate.pk}/use/",
                                                    {"placement": placement.pk}, follow=True)
        assert response.status_code == 200 and "missing or unreadable" in response.content.decode()
        placement.refresh_from_db()
        assert placement.artwork is None

    @pytest.mark.parametrize(("who", "whose", "status"), [
        ("owner", "other_team", 404),  # a placement of another team: the picture carries this team's link
        ("viewer", "team", 403),
    ])
    def test_it_refuses(self, team_users, done_job, who, whose, status):
        placement = placement_of(getattr(team_users, whose))
        candidate = done_job.candidates.get(rank=1)
        response = logged_in(getattr(team_users, who)).post(f"/generate/candidates/{candidate.pk}/use/",
                                                            {"placement": placement.pk})
        assert response.status_code == status
        placement.refresh_from_db()
        assert placement.artwork is None

    def test_it_asks_before_using_a_failing_candidate_and_records_who_and_why(self, team_users, done_job):
        placement = placement_of(team_users.team)
        for_placement(done_job, placement, own=True)
        failing = done_job.candidates.get(rank=5)
        client = logged_in(team_users.teammate)
        page = client.get(f"/generate/jobs/{done_job.pk}/").content.decode()
        card = page[page.index(f'id="candidate-{failing.pk}"'):]
        card = card[:card.index("</article>")]
        assert "Use anyway…" in card and "Use this one" not in card
        assert "1024 px · 8.7 cm · 3.41 in" not in card and "do not print it" in card  # no print files for it
        passing = page[page.index(f'id="candidate-{done_job.candidates.get(rank=1).pk}"'):]
        # Print sizes in cm and inches on the card, not in a tooltip
        assert "1024 px · 8.7 cm · 3.41 in" in passing[:passing.index("</article>")]
        offer = client.post(f"/generate/candidates/{failing.pk}/use/")
        html = offer.content.decode()
        assert offer.status_code == 200 and 'data-refused="scan"' in html and "does not pass the scan check" in html
        placement.refresh_from_db()
        assert placement.artwork is None
        no_reason = client.post(f"/generate/candidates/{failing.pk}/use/", {"print_anyway": "1"})
        assert no_reason.status_code == 400
        placement.refresh_from_db()
        assert placement.artwork is None
        client.post(f"/generate/candidates/{failing.pk}/use/", {"print_anyway": "1",
                                                                "print_anyway_reason": "proof for the client"})
        placement.refresh_from_db()
        assert placement.artwork == failing and placement.print_anyway_by == team_users.teammate
        assert placement.print_anyway_reason == "proof for the client" and placement.print_anyway_at is not None

    def test_it_offers_to_restamp_a_candidate_made_for_another_link(self, team_users, done_job, monkeypatch):
        placement = placement_of(team_users.team)
        candidate = done_job.candidates.get(rank=1)
        client = logged_in(team_users.owner)
        offer = client.post(f"/generate/candidates/{candidate.pk}/use/", {"placement": placement.pk})
        html = offer.content.decode()
        assert offer.status_code == 200 and 'data-refused="link"' in html and "Restamp it for" in html
        assert CONTENT in html and "may not scan as a copy" in html  # said before, not found out after
        placement.refresh_from_db()
        assert placement.artwork is None

        def restamped(original, target, short_url, user=None):
            job = job_with_candidates(team_users.team, user, count=1, content=short_url, placement=target)
            copy = job.candidates.get()
            assert original == candidate and short_url == f"http://TESTSERVER/R/{placement.slug}"
            return copy

        monkeypatch.setattr("campaigns.restamps.restamp_for", restamped)
        response = client.post(f"/generate/candidates/{candidate.pk}/use/", {"placement": placement.pk,
                                                                                "restamp": "1"}, follow=True)
        placement.refresh_from_db()
        assert placement.artwork != candidate and placement.artwork.job.content.endswith(f"/R/{placement.slug}")
        # The placement's page, where the new artwork and its print files are, with the message on top: the job's
        # page does not show the restamped copy, and its anchor on the original left the message out of sight.
        assert response.redirect_chain == [(f"/campaigns/placements/{placement.pk}/", 302)]
        html = response.content.decode()
        assert f"(generation #{placement.artwork.job_id}) is now the artwork of {placement}" in html
        assert 'class="success"' in html and "printed anyway" not in html

    def test_a_restamped_copy_printed_anyway_is_announced_as_a_warning(self, team_users, done_job, monkeypatch):
        # It was a green "is now the artwork" with no word that it will not scan.
        placement = placement_of(team_users.team)
        candidate = done_job.candidates.get(rank=1)

        def restamped(original, target, short_url, user=None):
            job = job_with_candidates(team_users.team, user, count=1, content=short_url, placement=target)
            copy = job.candidates.get()
            copy.verdict, copy.scan_probability = "fail", 0.1  # the restamped copy fails the scan check
            copy.save(update_fields=["verdict", "scan_probability"])
            return copy

        monkeypatch.setattr("campaigns.restamps.restamp_for", restamped)
        response = logged_in(team_users.owner).post(
            f"/generate/candidates/{candidate.pk}/use/",
            {"placement": placement.pk, "restamp": "1", "print_anyway": "1", "print_anyway_reason": "a proof"},
            follow=True)
        placement.refresh_from_db()
        assert placement.artwork != candidate and placement.print_anyway_reason == "a proof"
        html = response.content.decode()
        assert re.search(r'class="warning"[^>]*>A copy of candidate #1 restamped with this placement(&#x27;|\')s '
                         r'link \(generation #\d+\) is now the artwork of .*, printed anyway: it will not scan', html)

    def test_a_restamped_copy_that_fails_offers_new_art_for_the_placement(self, team_users, done_job, monkeypatch):
        # "Print anyway" or "Choose another" only, though the picture was fine for its own link.
        placement = placement_of(team_users.team)
        candidate = done_job.candidates.get(rank=1)

        def restamped(original, target, short_url, user=None):
            job = job_with_candidates(team_users.team, user, count=1, content=short_url, placement=target)
            copy = job.candidates.get()
            copy.verdict, copy.scan_probability = "fail", 0.37
            copy.save(update_fields=["verdict", "scan_probability"])
            return copy

        monkeypatch.setattr("campaigns.restamps.restamp_for", restamped)
        response = logged_in(team_users.owner).post(f"/generate/candidates/{candidate.pk}/use/",
                                                    {"placement": placement.pk, "restamp": "1"})
        html = response.content.decode()
        assert 'data-refused="scan"' in html and "A copy restamped with this placement" in html
        assert f'href="/generate/?placement={placement.pk}" data-generate-for>Generate new art for' in html

    def test_it_restamps_before_it_locks_the_placement_and_once_for_a_double_submit(self, team_users,
                                                                                      verifications):
        # Restamping and verifying take a second: under the placement's lock they would hold the scan drainer (and,
        # on SQLite, every writer) meanwhile; each press made a copy.
        from tests.campaigns.conftest import make_art

        placement = placement_of(team_users.team)
        candidate = make_art(team_users.team, team_users.owner, CONTENT)
        client = logged_in(team_users.owner)
        for _ in range(2):
            response = client.post(f"/generate/candidates/{candidate.pk}/use/",
                                   {"placement": placement.pk, "restamp": "1"})
            assert response.status_code == 302 and response["Location"] == f"/campaigns/placements/{placement.pk}/"
        placement.refresh_from_db()
        assert placement.artwork.scan_details["restamped_from"] == candidate.pk
        assert verifications == [False] and GenerationJob.objects.filter(placement=placement).count() == 1

    def test_it_judges_again_before_it_locks_the_placement_and_refuses_as_before(self, team_users, verifications):
        from tests.campaigns.conftest import make_art, unreadable_to_the_active_model

        placement = placement_of(team_users.team)
        stale = unreadable_to_the_active_model(make_art(team_users.team, team_users.owner,
                                                        f"http://testserver/r/{placement.slug}"))
        offer = logged_in(team_users.owner).post(f"/generate/candidates/{stale.pk}/use/", {"placement": placement.pk})
        assert offer.status_code == 200 and 'data-refused="scan"' in offer.content.decode()
        assert "does not pass the scan check" in offer.content.decode() and verifications == [False]
        placement.refresh_from_db()
        assert placement.artwork is None


@pytest.mark.django_db(transaction=True)  # two requests at once, each with a connection of its own
def test_two_uses_at_once_are_made_one_after_the_other(team_users, done_job, monkeypatch):
    # It chose and saved on the placement as its request had read it, unlocked: the first, paused after its
    # check, then overwrote the second's choice.
    from campaigns import restamps
    from tests.conftest import at_once

    placement = placement_of(team_users.team)
    for_placement(done_job, placement, own=True)
    first, second = done_job.candidates.get(rank=1), done_job.candidates.get(rank=2)

    def use(candidate: Candidate):
        return lambda: logged_in(team_users.owner).post(f"/generate/candidates/{candidate.pk}/use/").status_code

    assert at_once(monkeypatch, (restamps, "choose"), use(first), use(second)) == [302, 302]
    placement.refresh_from_db()
    assert placement.artwork == second


@pytest.mark.django_db(transaction=True)
def test_a_restamp_for_a_placement_deleted_meanwhile_is_no_error(team_users, monkeypatch):
    # The copy is made before the placement is locked (`restamps.prepare`): deleted in that second, the copy's row
    # cannot be stored (PostgreSQL: at its commit), which was a 500; the locked step then finds the placement gone.
    # SQLite runs one writer at a time: there the delete waits for the use, which is done first.
    from tests.campaigns.conftest import make_art
    from tests.conftest import at_once

    placement = placement_of(team_users.team)
    candidate = make_art(team_users.team, team_users.owner, CONTENT)

    def use() -> int:
        client = logged_in(team_users.owner)
        client.raise_request_exception = False
        return client.post(f"/generate/candidates/{candidate.pk}/use/",
                           {"placement": placement.pk, "restamp": "1"}).status_code

    def delete() -> int:
        Placement.objects.filter(pk=placement.pk).delete()
        return 204

    codes = at_once(monkeypatch, (GenerationJob, "save"), use, delete, before=True)
    assert codes in ([404, 204], [302, 204]) and not Placement.objects.filter(pk=placement.pk).exists()
