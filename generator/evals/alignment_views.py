"""The staff alignment page: how well the scan verifier agrees with the team's human scan labels.

The same figures as `qart_alignment --session` (pairs from `label_csv.alignment_pairs`, statistics from
`generator.core.evals.alignment`), over every labelled candidate of the user's teams or one session
(`?session=ID`), with the calibration and ROC plots as PNGs. `?format=json` gives the report as JSON. The page
also says which verifier model judges now (`generator.verifier_models`), who activated it and its figures.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from generator import verifier_models
from generator.core.codes import decision
from generator.core.evals import alignment, calibration, plots
from generator.evals import label_csv
from generator.evals.labeling_views import team_sessions
from generator.models import HumanScanResult, LabelingSession, VerifierModel
from qartsite.access import get_for_user_or_404, staff_required
from qartsite.numbers import whole

PLOTS = ("calibration", "roc")


def team_results(user) -> QuerySet[HumanScanResult]:
    """Results of the user's teams: through their session, or (imported from a sheet) their candidate's job."""
    return HumanScanResult.objects.for_user(user)


def chosen(request: HttpRequest) -> tuple[LabelingSession | None, list[dict]]:
    """The session named by `?session=ID` (404 unless it is the user's team's) and the pairs to align."""
    results = team_results(request.user)
    session = None
    raw = request.GET.get("session", "")
    if raw:
        session_id = whole(raw)
        if session_id is None:
            raise Http404("Not found")
        session = get_for_user_or_404(team_sessions(request.user), pk=session_id)
        results = results.filter(session=session)
    return session, label_csv.alignment_pairs(results.distinct())


def report_of(pairs: list[dict]) -> alignment.AlignmentReport | None:
    if not pairs:
        return None
    return alignment.align([p["scan_probability"] for p in pairs], [p["scanned"] for p in pairs],
                           [p["group"] for p in pairs], threshold=settings.QART["SCAN_THRESHOLD"])


def enough_labels(count: int, scanned: int) -> bool:
    """Whether labels are enough to judge the verifier by: at least `calibration.MIN_PER_CLASS` of each class, the
    least `qart_calibrate` fits a model to. Below it an AUC or a best threshold is mostly noise (three labels gave
    AUC 0.250 and "best threshold 0.991")."""
    return min(scanned, count - scanned) >= calibration.MIN_PER_CLASS


def verifier_summary(row: VerifierModel | None) -> dict:
    """The model that judges now, for the page and its JSON: its id, who activated it and when, and its figures
    (none for the shipped default, which was fitted to synthetic labels, not people's)."""
    if row is None:
        return {"model": decision.MODEL, "shipped": True, "activated_by": None, "activated_at": None, "labels": None,
                "figures": None}
    return {"model": row.model_id, "shipped": False, "stored": row.pk,
            "activated_by": row.activated_by.get_username() if row.activated_by else None,
            "activated_at": row.activated_at.isoformat() if row.activated_at else None,
            "labels": row.label_count, "figures": row.figures}


@staff_required
@require_safe
def alignment_page(request: HttpRequest) -> HttpResponse:
    session, pairs = chosen(request)
    report = report_of(pairs)
    active = verifier_models.active_row()
    enough = report is not None and enough_labels(report.count, report.scanned)
    if request.GET.get("format") == "json":
        # The figures whatever their count (a script may pool sessions), with whether they are enough to judge by.
        return JsonResponse({"session": session.pk if session else None, "count": len(pairs),
                             "enough": enough, "min_per_class": calibration.MIN_PER_CLASS,
                             "report": report.to_dict() if report else None, "verifier": verifier_summary(active)})
    ctx = {
        "verifier": verifier_summary(active),
        "active_model": active,
        "session": session,
        "sessions": team_sessions(request.user).order_by("-created")[:50],
        "report": report,
        "query": f"?session={session.pk}" if session else "",
        "enough": enough,
        "judged_groups": {g.group for g in report.groups if enough_labels(g.count, g.scanned)} if report else set(),
        "not_scanned": report.count - report.scanned if report else 0,
        "min_per_class": calibration.MIN_PER_CLASS,
    }
    return render(request, "generator/labeling/alignment.html", ctx)


@staff_required
@require_safe
def alignment_plot(request: HttpRequest, name: str) -> HttpResponse:
    if name not in PLOTS:
        raise Http404("Not found")
    _, pairs = chosen(request)
    report = report_of(pairs)
    if report is None:
        raise Http404("No labels yet")
    if name == "calibration":
        fig = plots.calibration_figure(report.calibration)
    else:
        fig = plots.roc_figure([p["scan_probability"] for p in pairs], [p["scanned"] for p in pairs],
                               report.roc_auc)
    response = HttpResponse(plots.to_png(fig), content_type="image/png")
    response["Cache-Control"] = "private, no-cache"  # new labels change it
    return response
