"""One generation job per placement of a campaign, from one shared prompt or picture.

Each job is built by what builds a single one (the generation page's form, the API's serializer: `make_job`), with
the placement's short link as its content; here it is only repeated per placement, checked
(`job_parameters.validate_job`), counted against the team's generation rate (`generator.throttles`), stored
(`uploads.save_new_job`) and queued (`jobs.enqueue_generation`) in the placements' order.

All or none: when the team has room for fewer jobs than placements, none starts, and the message says how many could
start now, so the person can pick that many and start them, or wait. Starting some silently would leave them
guessing which placements still need artwork.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import transaction
from django.db.models import QuerySet

from campaigns.models import Campaign, Placement
from generator import job_parameters, jobs, uploads
from generator.core.codes import qr
from generator.models import GenerationJob
from generator.throttles import BUSY, PERIODS, TeamGenerationThrottle
from qartsite.rates import retry_in


class NotStarted(Exception):
    """No job was started; `message` says why, `status` is the HTTP answer (400; 429 for the rate, 503 for a job
    queue that does not answer)."""

    def __init__(self, message: str, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.retry_after = message, status, retry_after


def placements_to_generate(campaign: Campaign) -> QuerySet[Placement]:
    """The placements offered: the campaign's active ones, in the order their jobs are queued."""
    return campaign.placements.filter(active=True).order_by("name", "pk")


def room_for(campaign: Campaign) -> int | None:
    """How many generations the campaign's team may start now; None: no limit is set."""
    return TeamGenerationThrottle(campaign.team).room()


def start_jobs(placements: Sequence[Placement], make_job: Callable[[Placement], GenerationJob], user,
               picture=None) -> list[GenerationJob]:
    """Start one generation job per placement, queued in the order given.

    Args:
        placements (`Sequence[Placement]`): of one team, not empty.
        make_job (`Callable[[Placement], GenerationJob]`): the unsaved job for a placement (content: its short link).
        user: who starts them (the jobs' owner).
        picture (`PIL.Image.Image`, *optional*): the halftone engine's checked picture, shared by every job.

    Returns:
        The started jobs, in queue order.

    Raises:
        NotStarted: a job failed its checks, the team's generation rate has no room for all of them, or the job
            queue does not answer (status 503); nothing was counted or stored. Its `retry_after`: seconds until
            there is room for all of them, or to wait for the queue (None: never).
        OSError: the picture could not be stored (`uploads.NOT_STORED`); nothing was stored, nothing stays counted.
    """
    if not placements:
        raise NotStarted("Choose at least one placement.")
    # 0. No room for all of them: said before the checks below (a QR code encoded per job: seconds for a thousand),
    #    which an editor could otherwise make the server repeat as often as they like. Step 3 takes the room.
    throttle = TeamGenerationThrottle(placements[0].campaign.team)
    room = throttle.room()
    if room is not None and room < len(placements):
        raise NotStarted(rate_message(throttle, room, len(placements)), status=429,
                         retry_after=throttle.wait_for(len(placements)))
    # 1. Check every job before anything is counted or stored.
    built = []
    for placement in placements:
        job = make_job(placement)
        try:
            job_parameters.validate_job(job)
        except (ValueError, qr.ContentError) as exc:
            raise NotStarted(f"{placement.name}: {exc} No generation was started.") from None
        built.append(job)
    # 2. A queue that cannot take them: none is made (each would be made and failed at once), nothing is counted.
    if refusal := jobs.queue_refusal(user.is_superuser):
        raise NotStarted(f"{refusal} No generation was started.", status=503,
                         retry_after=60 if refusal == jobs.QUEUE_UNAVAILABLE else None)  # no wait mends a password
    # 3. Room for all of them, or none starts: counted at once, atomically, so concurrent requests cannot both take
    #    the last room.
    if not throttle.take(len(built)):
        room = max(0, throttle.num_requests - len(throttle.history))
        raise NotStarted(rate_message(throttle, room, len(built)), status=429,
                         retry_after=throttle.wait_for(len(built)))
    # 4. Store and queue in order. Counted before storing (storing outside the lock keeps the lock short); when
    #    storing fails nothing is stored (one transaction), so the count is given back.
    try:
        with transaction.atomic():
            for job in built:
                uploads.save_new_job(job, user, picture)
                jobs.enqueue_generation(job)  # sends once the transaction commits, in this order
    except BaseException:
        throttle.give_back()
        raise
    return built


def rate_message(throttle: TeamGenerationThrottle, room: int, wanted: int) -> str:
    """Why none started: how many could start now, and when the team has room for all of them."""
    if throttle.busy:  # the counting lock stayed busy: nothing is known about the budget
        return f"{BUSY} No generation was started."
    wait = throttle.wait_for(wanted)  # None: more than one period's budget, waiting never helps
    if room == 0:
        later = f" Try again in {retry_in(wait)}." if wait else ""
        return f"{throttle.used_up(retry=False)}{later} No generation was started."
    later = f" or try again in {retry_in(wait)}" if wait else ""
    period = PERIODS.get(throttle.duration, f"{throttle.duration} seconds")
    return (f"Only {room} of the {wanted} generations can start now: the team {throttle.team.name} may start "
            f"{throttle.num_requests} per {period}. No generation was started: choose at most {room} "
            f"placement{'s' if room != 1 else ''}{later}.")
