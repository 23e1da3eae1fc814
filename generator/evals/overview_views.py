"""The staff index of the evals, at /evals/: what there is to look at, with the latest of each.

Counts and lists cover the user's teams only (`for_user`), like every eval page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from generator.models import EvalRun, HumanScanResult, LabelingSession
from qartsite.access import staff_required

LATEST = 5


@staff_required
@require_safe
def overview(request: HttpRequest) -> HttpResponse:
    sessions = LabelingSession.objects.for_user(request.user)
    results = HumanScanResult.objects.for_user(request.user)
    runs = EvalRun.objects.for_user(request.user)
    return render(request, "generator/evals/overview.html", {
        "session_count": sessions.count(),
        "sessions": sessions.select_related("team").order_by("-created")[:LATEST],
        "result_count": results.count(),
        "scanned_count": results.filter(scanned=True).count(),
        "run_count": runs.count(),
        "runs": runs.select_related("team").order_by("-created")[:LATEST],
    })
