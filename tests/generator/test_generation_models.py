"""What a generation makes: prompts, jobs and candidates (`generator.generation_models`)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from generator.core.engines import halftone
from generator.generation_models import Candidate, GenerationJob, Prompt
from tests.generator.factories import job_with_ranks


@pytest.mark.django_db
class TestPromptRemember:
    def test_it_shares_a_prompt_within_a_team_and_counts_uses(self, team_users):
        first = Prompt.remember(team_users.owner, "a koi pond", "blurry", team=team_users.team)
        again = Prompt.remember(team_users.teammate, "a koi pond", "blurry", team=team_users.team)
        assert again.pk == first.pk and again.times_used == 2 and again.owner == team_users.owner

    def test_it_keeps_teams_apart(self, team_users):
        ours = Prompt.remember(team_users.owner, "a koi pond", "", team=team_users.team)
        theirs = Prompt.remember(team_users.outsider, "a koi pond", "", team=team_users.other_team)
        assert ours.pk != theirs.pk and theirs.times_used == 1

    def test_without_a_team_it_is_the_owners_own(self, team_users):
        a = Prompt.remember(team_users.owner, "cli prompt", "")
        b = Prompt.remember(team_users.owner, "cli prompt", "")
        c = Prompt.remember(team_users.teammate, "cli prompt", "")
        assert a.pk == b.pk != c.pk and b.times_used == 2 and a.team is None


@pytest.mark.django_db
class TestGenerationJob:
    @pytest.mark.parametrize(("name", "value"), [
        ("guidance_scale", float("inf")), ("control_end", float("-inf")), ("conditioning_scale", float("nan")),
        ("strength", float("inf")),
    ])
    def test_the_database_refuses_parameters_that_are_not_finite(self, team_users, name, value):
        # Whatever skips validate_job (a script, the admin): a stored NaN or infinity broke the team's job list.
        prompt = Prompt.objects.create(owner=team_users.owner, text="a fox")
        with pytest.raises(IntegrityError), transaction.atomic():
            GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt, content="x",
                                         **{name: value})
        assert not GenerationJob.objects.exists()


@pytest.mark.django_db
class TestDeletingAUser:
    def test_it_leaves_the_teams_jobs_candidates_prompts_and_artwork_in_place(self, team_users):
        from campaigns.models import Campaign, Placement

        job = job_with_ranks(team_users.team, team_users.teammate, ranks=(1, 2))
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster", artwork=job.candidates.first())
        team_users.teammate.delete()
        job.refresh_from_db()
        placement.refresh_from_db()
        assert job.owner is None and job.prompt.owner is None and job.candidates.count() == 2
        assert placement.artwork == job.candidates.first()


@pytest.mark.django_db
class TestDeletingATeam:
    def test_it_takes_its_jobs_prompts_candidates_and_placements_with_it(self, team_users):
        from django.db.models import RestrictedError

        from campaigns.models import Campaign, Placement

        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
        Prompt.objects.filter(pk=job.prompt_id).update(team=team_users.team)  # the team's prompt, as the page saves it
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        Placement.objects.create(campaign=campaign, name="Poster", artwork=job.candidates.first())
        theirs = job_with_ranks(team_users.other_team, team_users.outsider, ranks=(1,))
        with pytest.raises(RestrictedError):  # a prompt in use cannot go on its own
            job.prompt.delete()
        team_users.team.delete()  # was a ProtectedError: the jobs' prompts were PROTECTed
        assert list(GenerationJob.objects.all()) == [theirs]
        assert list(Prompt.objects.all()) == [theirs.prompt]
        assert not Placement.objects.exists()


class TestResultWarns:
    @pytest.mark.parametrize(("scannable", "picture_fights", "warns"), [
        (True, False, False),
        (False, False, True),
        (None, False, True),
        # Every code scans, but keeps little of the picture: a warning, not the green box it was shown in.
        (True, True, True),
    ])
    def test_it_tells_a_warning_from_good_news(self, scannable, picture_fights, warns):
        assert GenerationJob(scannable=scannable, picture_fights=picture_fights).result_warns is warns

    def test_noise_from_the_tiny_model_is_a_warning_even_where_it_scans(self):
        assert GenerationJob(scannable=True, tiny_model=True).result_warns

    def test_it_reads_the_engines_flag_not_the_message(self):
        # The words are the engine's to change: the page once decided by finding them in the message.
        said = (f"8 of 8 variants scan. {halftone.PICTURE_FIGHTS}: the code that scans and keeps the most of it has a "
                "likeness of 3 % to your picture; below 40 % the picture is hard to make out.")
        assert not GenerationJob(scannable=True, result_message=said).result_warns
        assert GenerationJob(scannable=True, result_message="8 of 8 variants scan.", picture_fights=True).result_warns


class TestWorkingSeconds:
    def test_it_counts_drawing_and_checking_not_the_wait_in_the_queue(self):
        job = GenerationJob(queue_seconds=71.0, generation_seconds=9.5, scoring_seconds=2.5, total_seconds=83.0)
        assert job.working_seconds == 12.0

    @pytest.mark.parametrize(("generation", "scoring"), [(None, None), (9.5, None), (None, 2.5)])
    def test_it_is_unknown_until_the_job_has_done_both(self, generation, scoring):
        assert GenerationJob(generation_seconds=generation, scoring_seconds=scoring).working_seconds is None


class TestCandidate:
    @pytest.mark.parametrize("score, shown", [(None, None), (-0.2, 0.0), (6.4, 6.4), (10.3, 10.0)])
    def test_its_looks_are_shown_within_zero_to_ten(self, score, shown):
        # The predictor's regression strays past its scale; "-0.2 / 10" on a page reads as a fault.
        assert Candidate(aesthetic_score=score).looks_out_of_ten == shown


@pytest.mark.django_db
def test_jobs_and_candidates_are_named_as_the_pages_name_them():
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="namer")
    drawn = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "a koi pond at dawn", ""),
                                         content="https://qart.example/r/x")
    halftone = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "", ""),
                                            content="https://qart.example/r/x", engine=GenerationJob.Engine.HALFTONE)
    assert str(drawn) == f"#{drawn.pk} “a koi pond at dawn” (queued)"
    # The admin's titles and messages show this name: repr quoted a prompt with an apostrophe in double quotes.
    quoted = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "the koi's pond", ""),
                                          content="https://qart.example/r/x")
    assert str(quoted) == f"#{quoted.pk} “the koi's pond” (queued)"
    assert str(halftone) == f"#{halftone.pk} halftone engine (queued)"
    ranked = Candidate(job=drawn, index=3, rank=1, verdict="pass")
    assert str(ranked) == f"Generation #{drawn.pk}, candidate #1 (pass)"  # the pages' number, not the index
    unranked = Candidate(job=drawn, index=3, verdict="fail")
    assert str(unranked) == f"Generation #{drawn.pk}, candidate 3 (not ranked yet) (fail)"
