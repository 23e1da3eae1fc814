from __future__ import annotations

import pytest
from django.core.cache import cache

from campaigns import bulk_generation
from campaigns.models import Placement
from generator.models import GenerationJob, Prompt
from generator.throttles import TeamGenerationThrottle


@pytest.fixture(autouse=True)
def _fresh_generation_rate(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "3/hour"}}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def enqueued(monkeypatch) -> list[GenerationJob]:
    calls: list[GenerationJob] = []
    monkeypatch.setattr("generator.jobs.enqueue_generation", calls.append)
    return calls


@pytest.fixture
def placements(campaign) -> list[Placement]:
    return [Placement.objects.create(campaign=campaign, name=name) for name in ("A", "B", "C")]


def job_maker(owner, steps: int = 20):
    def make(placement: Placement) -> GenerationJob:
        return GenerationJob(owner=owner, team=placement.campaign.team, placement=placement,
                             prompt=Prompt(owner=owner, text="a koi pond"), steps=steps,
                             content=f"https://qart.example/r/{placement.slug}")
    return make


@pytest.mark.django_db
class TestStartJobs:
    def test_it_counts_each_started_job_against_the_team_rate(self, team_users, campaign, placements, enqueued):
        assert bulk_generation.room_for(campaign) == 3
        started = bulk_generation.start_jobs(placements[:2], job_maker(team_users.owner), team_users.owner)
        assert [job.placement.name for job in started] == ["A", "B"] == [job.placement.name for job in enqueued]
        assert all(job.pk for job in started)
        assert bulk_generation.room_for(campaign) == 1

    def test_it_starts_none_when_the_rate_has_room_for_fewer(self, team_users, campaign, placements, enqueued):
        TeamGenerationThrottle(campaign.team).allow_request(None, None)
        with pytest.raises(bulk_generation.NotStarted) as refused:
            bulk_generation.start_jobs(placements, job_maker(team_users.owner), team_users.owner)
        assert refused.value.status == 429 and refused.value.retry_after > 0
        assert refused.value.message.startswith("Only 2 of the 3 generations can start now: the team Acme may "
                                                "start 3 per hour. No generation was started: choose at most 2")
        assert GenerationJob.objects.count() == 0 and enqueued == []
        assert bulk_generation.room_for(campaign) == 2

    def test_it_says_when_the_rate_is_used_up(self, team_users, campaign, placements, enqueued):
        for _ in range(3):
            TeamGenerationThrottle(campaign.team).allow_request(None, None)
        with pytest.raises(bulk_generation.NotStarted, match="has used its 3 generations per hour"):
            bulk_generation.start_jobs(placements[:1], job_maker(team_users.owner), team_users.owner)

    def test_it_checks_every_job_before_starting_any(self, team_users, campaign, placements, enqueued):
        make = job_maker(team_users.owner)

        def bad_last(placement: Placement) -> GenerationJob:
            job = make(placement)
            job.steps = 0 if placement.name == "C" else job.steps
            return job

        with pytest.raises(bulk_generation.NotStarted, match=r"^C: Steps") as refused:
            bulk_generation.start_jobs(placements, bad_last, team_users.owner)
        assert refused.value.status == 400
        assert GenerationJob.objects.count() == 0 and bulk_generation.room_for(campaign) == 3

    def test_it_starts_those_counted_when_another_request_takes_the_last_room(self, team_users, campaign,
                                                                               placements, enqueued, monkeypatch):
        allow = TeamGenerationThrottle.allow_request
        calls = []

        def racing(self, request, view):
            calls.append(1)
            if len(calls) == 2:  # another request takes the last two while these start
                allow(self, None, None)
                allow(self, None, None)
            return allow(self, request, view)

        monkeypatch.setattr(TeamGenerationThrottle, "allow_request", racing)
        started = bulk_generation.start_jobs(placements, job_maker(team_users.owner), team_users.owner)
        assert [job.placement.name for job in started] == ["A"] and GenerationJob.objects.count() == 1

    def test_it_has_no_limit_without_a_rate(self, team_users, campaign, placements, enqueued, settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": None}}
        assert bulk_generation.room_for(campaign) is None
        assert len(bulk_generation.start_jobs(placements * 2, job_maker(team_users.owner), team_users.owner)) == 6

    def test_it_refuses_an_empty_choice(self, team_users, enqueued):
        with pytest.raises(bulk_generation.NotStarted, match="at least one"):
            bulk_generation.start_jobs([], job_maker(team_users.owner), team_users.owner)

    def test_it_offers_active_placements_by_name(self, campaign, placements):
        placements[0].set_active(False)
        assert [p.name for p in bulk_generation.placements_to_generate(campaign)] == ["B", "C"]
