"""The generation pages: the form, a job's live status and candidates, downloads, and the team's jobs.

Access: every job and candidate is looked up through the user's teams (another team's answers 404), and
everything that changes something checks `require_editor` on the job's team (viewers get 403). The actions sent from
these pages (cancel, delete, use a candidate as a placement's artwork) are in `generator.action_views`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from campaigns.models import Placement
from generator import engine_status, jobs, placement_picker, reconcile, uploads, verifier_models
from generator.core.codes import downloads, images, qr
from generator.core.engines import ranking
from generator.durations import seconds_in_words, seconds_in_words_or_nothing
from generator.evals import report_views
from generator.forms import LOOKS, GenerationForm
from generator.models import Candidate, EvalSample, GenerationJob, Prompt
from qartsite import file_responses
from qartsite.access import (
    VIEWERS_CANNOT_CHANGE,
    asked_team,
    can_edit,
    editable_teams,
    get_for_user_or_404,
    require_editor,
)
from qartsite.models import Team
from qartsite.numbers import whole
from qartsite.responses import detail_response, plain_400, plain_503
from qartsite.site import site_root, unreachable_reason
from qartsite.storage import MediaUnavailable

GALLERY_SIZE = 12
EARLIER_PICTURES = 8  # the team's latest best candidates offered as the halftone engine's picture
TOP_CANDIDATES = 4
JOB_LIST_SIZE = 60  # jobs a page of the job list shows (`?page=`)
STAGES = {
    "loading": "Loading the model",
    "generating": "Drawing the candidates",
    "scoring": "Checking that they scan",
    "repairing": "Repairing near misses",
    "storing_again": "Waiting for the image storage, which did not answer",
    "retrying": "Retrying after the worker stopped",
    jobs.INTERRUPTED: "Waiting to run again: its worker was stopped",
    reconcile.REQUEUED: "Waiting to run again: the job queue or its worker had stopped",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
# Below this much progress the rate is mostly the model loading, not the steps: no ETA yet.
ETA_MIN_PROGRESS = 0.05


def visible_candidates(user) -> QuerySet[Candidate]:
    return Candidate.objects.for_user(user)


def pk_or_404(value: str | None) -> int:
    number = whole(value)
    if number is None:
        raise Http404("Not found")
    return number


@login_required
@require_http_methods(["GET", "HEAD", "POST"])  # HEAD: a link checker's look at the form was a 405
def generate(request: HttpRequest) -> HttpResponse:
    if not Team.for_user(request.user).exists():
        return render(request, "qartsite/no_team.html")
    if request.method == "POST" and not editable_teams(request.user).exists():
        raise PermissionDenied(VIEWERS_CANNOT_CHANGE)
    placement = not_editable = None
    if request.method != "POST" and "placement" in request.GET:
        placement = get_for_user_or_404(Placement.objects.for_user(request.user).select_related("campaign__team"),
                                        pk=pk_or_404(request.GET["placement"]))
        if not can_edit(request.user, placement.campaign.team):
            # A viewer of that team who edits another: the form would fill in a link it must then refuse
            not_editable, placement = placement, None

    def link_for(p: Placement) -> str:
        return p.short_url(request)

    data, files = (request.POST, request.FILES) if request.method == "POST" else (None, None)
    status = 200
    # A person in several teams who came from one team's pages makes the code for that team (`?team=`).
    asked = asked_team(editable_teams(request.user), request.GET.get("team")) if "team" in request.GET else None
    form = GenerationForm(request.user, data, files, link_for=link_for, placement=placement,
                          initial={"team": asked.pk} if asked else None)
    # The team's default preset (chosen from a sweep report) fills the form; what people type still wins.
    preset = report_views.default_preset(form.initial.get("team"))
    form.initial.update(report_views.preset_initial(preset, form.fields))
    if request.method == "POST" and form.is_valid():
        require_editor(request.user, form.cleaned_data["team"])
        if refusal := jobs.queue_refusal(request.user.is_superuser):  # nothing stored or counted: the form again
            form.add_error(None, refusal)
            status = 503
        # Counted only now that the job is accepted; clean() only asked whether the team had room.
        elif form.has_room(form.cleaned_data["team"], count=True):
            try:
                job = form.save()
            except OSError as exc:  # the picture could not be stored: the form again, with what was typed and why
                uploads.log_not_stored(exc)
                form.add_error("picture", uploads.NOT_STORED)
                status = 503
            else:
                jobs.enqueue_generation(job)
                return redirect("generator:job", pk=job.pk)
    dropped: list[str] = []
    if request.method == "POST":  # going back with an error: the picture and logo sent stay for the next try
        dropped = form.keep_uploads()  # sent but not kept: the page says to choose them again
        # Refused like every other form of the site: 400 with the fields' messages (a 503 or 429 says more).
        status = 400 if status == 200 else status

    # The pickers (earlier prompts, earlier codes) offer what the person can make codes with: the teams they edit,
    # none to a viewer. They offered a viewer's team's codes, to a viewer who cannot generate or to an editor of
    # another team, whose job then refused them.
    offered = Team.objects.none() if form.read_only else form.fields["team"].queryset
    ctx = {
        "form": form,
        "preset": preset,
        "viewer_note": VIEWERS_CANNOT_CHANGE,
        "gallery": Prompt.objects.in_teams(offered).select_related("team")[:GALLERY_SIZE],
        "engine": engine_status.page_status(request.user.is_superuser),
        "diffusion_estimate": diffusion_estimate(request.user),
        "halftone_estimate": halftone_estimate(request.user),
        "earlier": Candidate.objects.in_teams(offered).filter(rank=1, verdict=Candidate.Verdict.PASS)
        .select_related("job__team", "job__prompt", "job__placement").order_by("-job__created")[:EARLIER_PICTURES],
        "several_teams": offered.count() > 1,
        "dropped": dropped,
        "looks": list(zip(form["look"], LOOKS.values(), strict=True)),
        "speeds": list(zip(form["speed"], form.speeds.values(), strict=True)),
        "presets": {
            "look": {k: {"conditioning_scale": v["conditioning_scale"], "control_start": v["control_start"]}
                     for k, v in LOOKS.items()},
            "speed": {k: {"steps": v["steps"]} for k, v in form.speeds.items()},
        },
        "placement_links": {p.pk: placement_picker.as_json(p, link_for) for p in picker_placements(form)},
    }
    if form.searches_placements or ctx["placement_links"]:
        # Every placement's short link starts with the site root: one check covers the links the form fills in.
        ctx["unreachable"] = unreachable_reason(site_root(request))
    if request.method == "GET":
        ctx["room_note"] = form.room_note()
    if not_editable is not None:
        team = not_editable.campaign.team.name
        ctx["placement_note"] = (f"You can look at {not_editable.name} ({team}) but not make codes for it: you are a "
                                 "viewer there. Ask an owner of that team for editor access; codes for your other "
                                 "teams can be made here.")
    if form.rate_limited:
        # The form again, with what was typed and the message on top; Retry-After for scripts. A picture sent is not
        # decoded for a team without room, so it is not kept: the page says so (`dropped`).
        response = render(request, "generator/generate.html", ctx, status=429)
        response["Retry-After"] = str(max(1, round(form.retry_after or 0)))
        return response
    return render(request, "generator/generate.html", ctx, status=status)


def picker_placements(form: GenerationForm) -> QuerySet[Placement]:
    """The placements whose short links the page carries for generate.js: every one the select offers, or, where
    the page searches instead, only the one chosen (the search answers the others' with their matches)."""
    placements = form.fields["placement"].queryset
    if not form.searches_placements:
        return placements
    return placements.filter(pk=whole(form["placement"].value()) or 0)


@login_required
@require_safe
@never_cache
def placement_search(request: HttpRequest) -> HttpResponse:
    """The placement search of the generation page and of the job page's cards: `?q=` the text typed, `?team=` the
    form's team (the job's, on a card). At most `placement_picker.MATCHES` placements of the teams the person makes
    codes for, by campaign and name, each with its short link; `more` when others match too. Another team's
    placements are never found (its `team` finds nothing, like a team without a match)."""
    placements = placement_picker.offered(request.user, editable_teams(request.user))
    if request.GET.get("team"):
        team = whole(request.GET["team"])
        if team is None:
            return detail_response("The team must be a team's number.", 400)
        placements = placements.filter(campaign__team_id=team)
    found = placement_picker.matching(placements, request.GET.get("q", "")[:500])

    def link_for(p: Placement) -> str:
        return p.short_url(request)

    return JsonResponse({
        "placements": [{"id": p.pk, "name": p.name, "campaign": p.campaign.name, "slug": p.slug,
                        **placement_picker.as_json(p, link_for)} for p in found[:placement_picker.MATCHES]],
        "more": len(found) > placement_picker.MATCHES,
    })


def scan_reliability(candidate: Candidate) -> str:
    """The scan check in one word for the card ("excellent"); the probability itself is one click away. The same
    words the engine ranked by (`ranking.scan_band`), so the order and the labels agree."""
    return ranking.scan_band(candidate.verdict == Candidate.Verdict.PASS, candidate.scan_probability,
                             candidate.misread, bool(verifier_models.scan_reasons(candidate)))


def last_took(user, engine: str) -> str:
    """" The last one here took 14 s." for the user's teams' last finished job of `engine` (its own working time,
    `GenerationJob.working_seconds`), or ""."""
    last = (GenerationJob.objects.for_user(user)
            .filter(engine=engine, status=GenerationJob.Status.DONE, generation_seconds__isnull=False,
                    scoring_seconds__isnull=False)
            .order_by("-finished", "-pk").first())
    return f" The last one here took {seconds_in_words(last.working_seconds)}." if last else ""


def halftone_estimate(user) -> str:
    """The halftone engine's time, said before a job is submitted: about a second a candidate on a CPU core (each is
    verified against phone-like captures, and strengthened until it passes: bench/RESULTS.md), and the last such
    job of the user's teams."""
    measured = last_took(user, GenerationJob.Engine.HALFTONE)
    return f"About a second per candidate on the CPU; you can follow it live.{measured}"


def diffusion_estimate(user) -> str:
    """An honest time for a diffusion job, said before it is submitted: seconds on a ready GPU worker, minutes
    without one, with the last such job of the user's teams as the measure when there is one."""
    workers = engine_status.live_workers() or []
    measured = last_took(user, GenerationJob.Engine.DIFFUSION)
    if any(w.gpu and w.state == "ready" for w in workers):
        return f"Usually under a minute on the GPU worker; you can follow it live.{measured}"
    # A CPU-only server runs the diffusion steps on its cores: minutes, and noise with the tiny test model.
    return f"No GPU worker is ready: on the CPU this takes several minutes.{measured}"


def elapsed_and_eta(job: GenerationJob) -> tuple[float | None, float | None]:
    """Seconds since the job started, and the seconds left at the rate its steps have gone so far (progress is
    per step, so elapsed / progress is the measured time per unit of work); None where not known yet."""
    if job.is_finished or job.started is None:
        return None, None
    elapsed = max(0.0, (timezone.now() - job.started).total_seconds())
    if job.progress < ETA_MIN_PROGRESS or job.progress >= 1:
        return elapsed, None
    return elapsed, elapsed * (1 - job.progress) / job.progress


def busy_for() -> float | None:
    """Seconds until the soonest running job is expected to finish (at the rate its steps have gone), None when no
    running job has an estimate yet. What a waiting job waits for: a quick halftone job queued behind a diffusion job
    on a CPU worker waits its twenty minutes. Only a number: nothing of whose job it is."""
    running = GenerationJob.objects.filter(status=GenerationJob.Status.RUNNING, started__isnull=False).only(
        "status", "started", "progress", "rq_job_id")
    # A job whose worker went quiet keeps a growing estimate but will not finish: it says nothing (as in job_state).
    etas = [eta for job in running if (silence := reconcile.worker_silence(job)) is None
            or silence <= reconcile.SILENT_AFTER if (eta := elapsed_and_eta(job)[1]) is not None]
    return min(etas) if etas else None


def queue_words(position: int | None) -> str:
    """A waiting job's place in the queue, and how long the job running now has left, e.g. "· next in line, after a
    job with about 22 min left"; "" when the job is not waiting."""
    if not position:
        return ""
    place = "next in line" if position == 1 else f"{position} in the queue"
    left = busy_for()
    if left is None:
        return f"· {place}"
    if position == 1:
        return f"· {place}, after a job with about {seconds_in_words(left)} left"
    return f"· {place}; the job running now has about {seconds_in_words(left)} left"


def status_label(job: GenerationJob) -> str:
    """The badge: a job whose last step is done but whose row is not yet "done" is finishing, not running."""
    if not job.is_finished and (job.stage == "done" or job.progress >= 1):
        return "Finishing"
    return job.get_status_display()


def stage_label(job: GenerationJob, silence: float | None = None, lost: bool = False) -> str:
    """The stage in words; with `silence` (`reconcile.worker_silence`) past SILENT_AFTER, that the worker went quiet
    and what happens next, instead of a stage that will not move; the same for a waiting job Redis `lost`
    (`reconcile.lost`)."""
    if job.cancel_requested and not job.is_finished:
        return "Cancelling"
    if lost:
        # It said "Waiting in the queue" for the reconciler's grace, in no queue (a fault drill). The reconciler is
        # a worker's upkeep: with none running, nothing happens until one starts.
        when = "once a worker starts" if engine_status.live_workers() == [] else "within a few minutes"
        if reason := reconcile.why_not_requeued(job):
            return f"{reason} It is ended as failed {when}."
        return f"The job queue lost this job (Redis restarted or was emptied): it is queued again {when}"
    if silence is not None and silence > reconcile.SILENT_AFTER:
        quiet = f"The worker has not answered for {seconds_in_words(silence)}"
        # Re-queueing is a worker's upkeep: with none but the quiet one, nothing moves. The quiet worker's own report
        # may still be there (a hung one's thread refreshes it; a killed one's lived 90 s, past SILENT_AFTER): counted,
        # it promised a re-queue nobody would do (a fault drill).
        workers, quiet_one = engine_status.live_workers(), reconcile.job_worker(job)
        if workers is not None and all(w.worker == quiet_one for w in workers):
            return f"{quiet}, and no other worker is running: the job is re-queued once one starts"
        return f"{quiet}: if it stopped, the job is re-queued automatically within a few minutes"
    if job.stage == "done" and not job.is_finished:
        return "Storing the candidates"
    if job.stage:
        return STAGES.get(job.stage, job.stage.capitalize())
    return "Waiting in the queue" if job.status == GenerationJob.Status.QUEUED else "Starting"


def job_state(job: GenerationJob) -> dict:
    """What the status page needs while a job runs: the job's own fields, and of other jobs only how long the one
    running now has left (`queue_words`), a number with nothing of whose job it is."""
    elapsed, eta = elapsed_and_eta(job)
    position = jobs.queue_position(job)
    silence = reconcile.worker_silence(job)
    if silence is not None and silence > reconcile.SILENT_AFTER:
        eta = None  # a rate measured while the worker answered says nothing once it went quiet
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": status_label(job),
        "stage": job.stage,
        "stage_label": stage_label(job, silence, position is None and reconcile.lost(job)),
        "worker_silent": None if silence is None else round(silence, 1),
        "progress": round(job.progress, 4),
        "queue_position": position,
        "queue_words": queue_words(position),
        "finished": job.is_finished,
        "scannable": job.scannable,
        "result_message": job.result_message,
        "error": job.error,
        "elapsed": None if elapsed is None else round(elapsed, 1),
        "eta": None if eta is None else round(eta, 1),
        "seconds": {"queue": job.queue_seconds, "generation": job.generation_seconds,
                    "scoring": job.scoring_seconds, "total": job.total_seconds},
    }


@login_required
@require_safe
@never_cache  # Back after deleting the job showed it again from the browser's cache, its Delete button answering 404
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    jobs_seen = GenerationJob.objects.for_user(request.user)
    job = get_for_user_or_404(jobs_seen.select_related("prompt", "team", "owner", "placement__campaign"), pk=pk)
    team_placements = Placement.objects.filter(campaign__team=job.team).select_related("campaign")
    candidates = list(
        job.candidates.order_by("rank", "index").prefetch_related(Prefetch("placements", queryset=team_placements))
    )
    for candidate in candidates:
        candidate.scan_words = verifier_models.scan_verdict(candidate)
        candidate.reliability = scan_reliability(candidate)
        likeness = ranking.likeness(candidate.fidelity_ssim, candidate.color_error)
        candidate.likeness = None if likeness is None else max(0.0, likeness)  # a share: never below nothing
    editor = can_edit(request.user, job.team)
    # What "Use this one" offers: a select of the team's placements, or past its limit a search per card
    # (placements.json), for which no placement is read here.
    chooses = editor and not job.placement_id  # a job made for a placement is used for that one
    placements = placement_picker.offered(request.user, [job.team])
    searches = chooses and placement_picker.searches(placements)
    offered = list(placements) if chooses and not searches else []
    ctx = {
        "job": job,
        # The job's content is the placement's short link: warn before anyone prints a code phones cannot open.
        "unreachable": unreachable_reason(job.content) if job.placement_id else None,
        "state": job_state(job),
        "top": candidates[:TOP_CANDIDATES],
        "rest": candidates[TOP_CANDIDATES:],
        "candidate_count": len(candidates),
        # "12 s": the job's own work, without its wait in the queue (`GenerationJob.working_seconds`); "" until known.
        "took": seconds_in_words_or_nothing(job.working_seconds),
        "can_edit": editor,
        # Said before any click: the delete asked "Delete this job?" and then refused it
        "kept_because": jobs.why_kept(job) if job.is_finished else "",
        "team_placements": offered,
        # Past the generation page's select limit, each card's select repeated every placement (8 cards x 5,000
        # placements: megabytes of options), then a datalist listed them once (263 KB): each card searches instead.
        "searches_placements": searches,
        "print_sizes": [(size, downloads.print_centimetres(size), downloads.print_inches(size))
                        for size in downloads.PRINT_SIZES],
    }
    return render(request, "generator/job.html", ctx)


@login_required
@require_safe
@never_cache
def job_status(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_for_user_or_404(GenerationJob.objects.for_user(request.user), pk=pk)
    return JsonResponse(job_state(job))


@login_required
@require_safe
def candidate_png(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = get_for_user_or_404(visible_candidates(request.user), pk=pk)
    try:
        size = downloads.parse_size(request.GET.get("size"))
    except ValueError as exc:
        return plain_400(str(exc))
    try:
        with candidate.image.open("rb") as stored:
            image = images.open_image(stored.read())
    except MediaUnavailable:
        return plain_503("The image storage is unavailable right now; try the download again in a minute.")
    except (OSError, images.ImageError):
        raise Http404("This candidate's image is missing.") from None
    filename = f"qart-{candidate.job_id}-rank{candidate.rank}-{size}px.png"
    return file_responses.send(request, downloads.png_at_size(image, size), "image/png", filename)


@login_required
@require_safe
def code_svg(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_for_user_or_404(GenerationJob.objects.for_user(request.user), pk=pk)
    try:
        # The smallest version that fits, and no art limit: the plain code has no picture (a restamped copy's art
        # may keep a larger version, `Candidate.art_code`, but larger squares scan better in a plain code).
        code = qr.encode(job.content, ecc=job.ecc, max_version=40)
    except ValueError as exc:
        return plain_400(str(exc))
    return file_responses.send(request, downloads.code_svg(code).encode(), "image/svg+xml", f"qart-{job.pk}-code.svg")


@login_required
@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    """The team's latest jobs, newest first, optionally of one placement and one status; a sweep's jobs (hundreds
    at a time) only with `?sweep=1`, so they don't bury the ones people made."""
    show_sweeps = request.GET.get("sweep") == "1"
    best = Candidate.objects.filter(job=OuterRef("pk")).order_by("rank", "index").values("image")[:1]
    in_sweep = Exists(EvalSample.objects.filter(job=OuterRef("pk")))
    seen = GenerationJob.objects.for_user(request.user).annotate(in_sweep=in_sweep)
    shown = seen if show_sweeps else seen.filter(in_sweep=False)
    placements = Placement.objects.for_user(request.user).filter(generations__isnull=False).distinct() \
        .select_related("campaign").order_by("campaign__name", "name")
    status, placement = request.GET.get("status", ""), request.GET.get("placement", "")
    # A filter the list does not offer (an old or edited link) is dropped with one message, on the page with what
    # the other filter still shows: a bare 400 lost the site around it.
    problems = []
    if status and status not in GenerationJob.Status.values:
        problems.append(f"Unknown status “{status[:40]}”: pick one from the list.")
        status = ""
    if status:
        shown = shown.filter(status=status)
    placement_id = whole(placement) if placement else None
    # Another team's placement reads as unknown, like a missing one.
    if placement and (placement_id is None or not placements.filter(pk=placement_id).exists()):
        problems.append("Unknown placement: pick one from the list.")
        placement = ""
    if placement:
        shown = shown.filter(placement_id=placement_id)
    # A page at a time: the list showed the newest 60 and no way to reach a team's older ones (2,000 after a year).
    # A page number that cannot be read shows the first page, one past the end the last (as the campaign page's).
    page = Paginator(
        shown.select_related("prompt", "team", "placement__campaign")
        .annotate(thumbnail=Subquery(best), candidate_count=Count("candidates"))
        # Explicit: the aggregate's GROUP BY must not leave the order to the database.
        .order_by("-created", "-pk"), JOB_LIST_SIZE,
    ).get_page(whole(request.GET.get("page")) or 1)
    recent = list(page.object_list)
    for job in recent:
        job.thumbnail_url = default_storage.url(job.thumbnail) if job.thumbnail else ""
        job.status_text = status_label(job)  # the job page's badge, word for word
    ctx = {
        "jobs": recent,
        "show_sweeps": show_sweeps,
        "sweep_jobs": seen.filter(in_sweep=True).count(),
        "jobs_page": page if page.paginator.num_pages > 1 else None,
        # The pager's links keep the filters shown.
        "page_query": urlencode({key: value for key, value in (("sweep", "1" if show_sweeps else ""),
                                                               ("placement", placement), ("status", status)) if value}),
        "several_teams": Team.for_user(request.user).count() > 1,
        "can_generate": editable_teams(request.user).exists(),
        "statuses": GenerationJob.Status.choices,
        "placements": placements,
        "chosen": {"status": status, "placement": placement},
        "filtered": bool(status or placement),
        "filter_problem": " ".join(problems),
    }
    return render(request, "generator/job_list.html", ctx, status=400 if problems else 200)
