"""The generation pages' actions on a job and its candidates: cancel a job, delete a finished one, and use a
candidate as a placement's artwork. Each a POST by an editor of the job's team (`require_editor`; viewers get 403),
the job or candidate looked up through the user's teams (another team's answers 404), answered with a redirect and a
message.

The pages they are sent from (the form, a job's status and candidates, downloads, the team's jobs) are in
`generator.views`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from campaigns import artwork, restamps
from campaigns.models import Placement, locked_copy
from generator import jobs, placement_picker
from generator.models import GenerationJob
from generator.views import pk_or_404, visible_candidates
from qartsite.access import get_for_user_or_404, require_editor
from qartsite.models import Team
from qartsite.numbers import whole
from qartsite.responses import not_found


@login_required
@require_POST
def cancel_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_for_user_or_404(GenerationJob.objects.for_user(request.user), pk=pk)
    require_editor(request.user, job.team)
    if job.is_finished:
        messages.info(request, f"This job had already finished ({job.get_status_display().lower()}).")
    else:
        jobs.request_cancel(job)
        messages.success(request, "Cancelling: a queued job stops at once, a running one after its current step.")
    return redirect("generator:job", pk=job.pk)


@login_required
@require_POST
def delete_job(request: HttpRequest, pk: int) -> HttpResponse:
    """An editor deletes a finished job of their team, with its images and uploads, unless something keeps it
    (`jobs.why_kept`: printed artwork, people's labels)."""
    job = get_for_user_or_404(GenerationJob.objects.for_user(request.user), pk=pk)
    require_editor(request.user, job.team)
    kept = jobs.delete(job)
    if kept:
        messages.error(request, kept)
        return redirect("generator:job", pk=job.pk)
    messages.success(request, "Job deleted, with its codes, its picture and its logo; their files are removed within "
                              "a day.")
    return redirect("generator:jobs")


def typed_placement(offered: QuerySet[Placement], chosen: str | None, typed: str, team: Team) -> Placement:
    """The placement the search box chose: the one whose id `chosen` came with its text `typed` while the text still
    names it, else the one the text names (a browser restoring a form may keep an old hidden id), as on the
    generation page.

    Args:
        offered: the placements the box offers (`placement_picker.offered`), whole rows: the one found is used.
        chosen: the hidden id sent with the text, if any.
        typed: the box's text, not empty.
        team: the job's team.

    Returns:
        the placement, read once.

    Raises:
        ValidationError: the text names none of `team`'s placements, or several (`placement_picker.named`).
    """
    pk = whole(chosen)
    placement = None if pk is None else offered.filter(pk=pk).first()
    if placement is not None and placement_picker.still_names(placement, typed):
        return placement
    return placement_picker.named(offered, typed, team)


@login_required
@require_POST
def use_candidate(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a candidate the artwork of the job's placement, or of a placement of the same team, by the rules of
    `campaigns.artwork`: a picture for another link is restamped when asked (`restamp=1`), one that fails the scan
    check is used only with `print_anyway=1` and a reason. Otherwise a page says why and offers those choices."""
    candidate = get_for_user_or_404(visible_candidates(request.user).select_related("job__team"), pk=pk)
    job = candidate.job
    require_editor(request.user, job.team)
    chosen = job.placement_id or request.POST.get("placement")
    typed = request.POST.get("placement_name", "").strip()
    # Only a placement of the job's own team: the picture carries that team's link.
    if not job.placement_id and typed:
        # The search box of a team past the select's limit (`job_detail`). Whole rows: the placement it finds is the
        # one used, not read again (a query more on every click).
        offered = placement_picker.offered(request.user, [job.team]).defer(None)
        try:
            placement = typed_placement(offered, chosen, typed, job.team)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect("generator:job", pk=job.pk)
    elif not chosen:
        messages.error(request, "Choose the placement this picture is for.")
        return redirect("generator:job", pk=job.pk)
    else:
        placement = get_for_user_or_404(  # its team too: its setting writes the link (`Placement.short_url`)
            Placement.objects.filter(campaign__team=job.team).select_related("campaign__team"),
            pk=pk_or_404(str(chosen)))
    asked_restamp = request.POST.get("restamp") == "1"
    asked_anyway = request.POST.get("print_anyway") == "1"
    reason = request.POST.get("print_anyway_reason", "")[:1000] if asked_anyway else ""
    short_url = placement.short_url(request)
    # Verifying and restamping take a second: done before the lock, judged again (quickly) under it.
    restamps.prepare(placement, candidate, short_url=short_url, user=request.user, restamp=asked_restamp)
    refused = None
    with transaction.atomic():  # on the placement as stored, locked: another's change meanwhile stays
        placement = locked_copy(placement) or not_found()
        try:
            used = restamps.choose(placement, candidate, short_url=short_url, user=request.user,
                                   restamp=asked_restamp, print_anyway_reason=reason)
        except artwork.ArtworkRefused as exc:
            refused = exc  # answered once the lock is let go; a copy made meanwhile is kept
        else:
            artwork.apply(placement, used, user=request.user, print_anyway_reason=reason)
            placement.save(update_fields=artwork.APPLIED_FIELDS)
    if refused is not None:
        # A first click is an offer (200); a choice made that still cannot be met is a bad request. A restamped copy
        # that fails is offered "print anyway" itself, so asking again does not restamp again.
        judged = refused.candidate or candidate
        ctx = {"candidate": judged, "placement": placement, "job": job, "refused": refused,
               "restamped": judged != candidate}
        return render(request, "generator/use_candidate.html", ctx,
                      status=400 if asked_anyway or (asked_restamp and judged == candidate) else 200)
    what = (f"A copy of candidate #{candidate.rank} restamped with this placement's link (generation #{used.job_id})"
            if used != candidate else f"Candidate #{candidate.rank}")
    # `apply` keeps a reason only for artwork that fails the scan check: then the news is a warning, restamped or not.
    if placement.print_anyway_reason:
        messages.warning(request, f"{what} is now the artwork of {placement}, printed anyway: it will not scan. Its "
                                  "print downloads stay off.")
    else:
        messages.success(request, f"{what} is now the artwork of {placement}.")
    if used != candidate:
        # The copy is another job's: this job's page does not show it. The placement's page does, with its print
        # files, and the message on top.
        return redirect("campaigns:placement", placement_id=placement.pk)
    return redirect(reverse("generator:job", kwargs={"pk": job.pk}) + f"#candidate-{candidate.pk}")
