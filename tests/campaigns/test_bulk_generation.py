from __future__ import annotations

import contextlib
import threading
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from campaigns import bulk_generation
from campaigns.models import Placement
from generator import uploads
from generator.models import GenerationJob, Prompt
from generator.throttles import TeamGenerationThrottle
from tests.conftest import SlowCache


@pytest.fixture(autouse=True)
def _fresh_generation_rate(settings, fresh_cache):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "3/hour"}}


@pytest.fixture
def placements(campaign) -> list[Placement]:
    return [Placement.objects.create(campaign=campaign, name=name) for name in ("A", "B", "C")]


def job_maker(owner, steps: int = 20):
    def make(placement: Placement) -> GenerationJob:
        return GenerationJob(owner=owner, team=placement.campaign.team, placement=placement,
                             prompt=Prompt(owner=owner, text="a koi pond"), steps=steps,
                             content=f"http://testserver/r/{placement.slug}")
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

    def test_it_refuses_before_checking_any_job_when_there_is_no_room(self, team_users, campaign, placements,
                                                                      enqueued, monkeypatch):
        # The checks encode a QR code per job: a thousand placements took 15 s of CPU before the 429.
        TeamGenerationThrottle(campaign.team).allow_request(None, None)
        monkeypatch.setattr(bulk_generation.job_parameters, "validate_job", lambda job: pytest.fail("checked a job"))
        with pytest.raises(bulk_generation.NotStarted) as refused:
            bulk_generation.start_jobs(placements, job_maker(team_users.owner), team_users.owner)
        assert refused.value.status == 429 and refused.value.message.startswith("Only 2 of the 3")

    def test_it_starts_none_and_counts_none_while_the_queue_does_not_answer(self, team_users, campaign, placements,
                                                                             queue_away):
        with pytest.raises(bulk_generation.NotStarted) as refused:
            bulk_generation.start_jobs(placements, job_maker(team_users.owner), team_users.owner)
        assert refused.value.status == 503 and refused.value.retry_after == 60
        assert refused.value.message == ("The job queue is unavailable right now; please try again. No generation "
                                         "was started.")
        assert GenerationJob.objects.count() == 0 and Prompt.objects.count() == 0
        assert bulk_generation.room_for(campaign) == 3

    def test_it_says_when_the_rate_is_used_up(self, team_users, campaign, placements, enqueued):
        for _ in range(3):
            TeamGenerationThrottle(campaign.team).allow_request(None, None)
        with pytest.raises(bulk_generation.NotStarted, match="has used its 3 generations per hour"):
            bulk_generation.start_jobs(placements[:1], job_maker(team_users.owner), team_users.owner)

    def test_it_says_when_the_rate_could_not_be_checked(self, team_users, campaign, placements, enqueued,
                                                          monkeypatch):
        from generator import throttles

        monkeypatch.setattr("qartsite.rates.LOCK_WAIT", 0.05)
        lock = f"{TeamGenerationThrottle(campaign.team).get_cache_key(None, None)}:lock"
        assert cache.add(lock, "someone else", 60)
        with pytest.raises(bulk_generation.NotStarted) as refused:
            bulk_generation.start_jobs(placements[:2], job_maker(team_users.owner), team_users.owner)
        assert refused.value.message == f"{throttles.BUSY} No generation was started."
        assert GenerationJob.objects.count() == 0 and enqueued == []
        cache.delete(lock)
        assert bulk_generation.room_for(campaign) == 3

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

    def test_it_starts_none_when_another_request_takes_the_room_meanwhile(self, team_users, campaign, placements,
                                                                         enqueued):
        make = job_maker(team_users.owner)

        def racing(placement: Placement) -> GenerationJob:
            if placement.name == "C":  # another request counts two while these are being checked
                assert TeamGenerationThrottle(campaign.team).allow_request(None, None)
                assert TeamGenerationThrottle(campaign.team).allow_request(None, None)
            return make(placement)

        with pytest.raises(bulk_generation.NotStarted, match="^Only 1 of the 3") as refused:
            bulk_generation.start_jobs(placements, racing, team_users.owner)
        assert refused.value.status == 429
        assert GenerationJob.objects.count() == 0 and enqueued == [] and bulk_generation.room_for(campaign) == 1

    def test_it_starts_all_or_none_under_concurrent_requests(self, team_users, campaign, placements, enqueued,
                                                              settings, monkeypatch):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "50/hour"}}
        # Only the counting is concurrent here: storing is recorded, without a transaction (SQLite takes one writer).
        stored: list[GenerationJob] = []
        monkeypatch.setattr("generator.uploads.save_new_job", lambda job, user, picture: stored.append(job))
        monkeypatch.setattr(bulk_generation, "transaction", SimpleNamespace(atomic=contextlib.nullcontext))
        monkeypatch.setattr(TeamGenerationThrottle, "cache", SlowCache(cache))
        chosen, barrier = (placements * 7)[:20], threading.Barrier(8)
        outcomes: list[str] = []

        def request() -> None:
            barrier.wait()
            try:
                bulk_generation.start_jobs(chosen, job_maker(team_users.owner), team_users.owner)
                outcomes.append("started")
            except bulk_generation.NotStarted as exc:
                outcomes.append(str(exc.status))

        threads = [threading.Thread(target=request) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["429"] * 6 + ["started"] * 2
        assert len(stored) == 40 and bulk_generation.room_for(campaign) == 10

    def test_it_gives_the_rate_back_when_storing_fails(self, team_users, campaign, placements, enqueued,
                                                       monkeypatch):
        save = uploads.save_new_job

        def failing(job: GenerationJob, user, picture) -> GenerationJob:
            if job.placement.name == "B":
                raise OSError("the storage is away")
            return save(job, user, picture)

        monkeypatch.setattr("generator.uploads.save_new_job", failing)
        with pytest.raises(OSError):
            bulk_generation.start_jobs(placements, job_maker(team_users.owner), team_users.owner)
        assert GenerationJob.objects.count() == 0 and bulk_generation.room_for(campaign) == 3

    def test_it_says_to_retry_when_enough_room_frees(self, team_users, campaign, placements, enqueued,
                                                     monkeypatch):
        clock = [1000.0]
        monkeypatch.setattr(TeamGenerationThrottle, "timer", lambda self: clock[0])
        for now in (1000.0, 1100.0):
            clock[0] = now
            assert TeamGenerationThrottle(campaign.team).allow_request(None, None)
        clock[0] = 1200.0
        # Room for 1: two placements wait for the oldest count to expire, three for the two oldest.
        for chosen, retry_after, said in ((placements[:2], 3400.0, "57 minutes"), (placements, 3500.0, "58 minutes")):
            with pytest.raises(bulk_generation.NotStarted) as refused:
                bulk_generation.start_jobs(chosen, job_maker(team_users.owner), team_users.owner)
            assert refused.value.retry_after == retry_after
            assert refused.value.message.endswith(f"or try again in about {said}.")

    def test_it_never_offers_a_retry_for_more_than_the_rate(self, team_users, campaign, enqueued):
        many = [Placement.objects.create(campaign=campaign, name=f"P{n}") for n in range(4)]
        with pytest.raises(bulk_generation.NotStarted, match=r"choose at most 3 placements\.$") as refused:
            bulk_generation.start_jobs(many, job_maker(team_users.owner), team_users.owner)
        assert refused.value.retry_after is None

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
