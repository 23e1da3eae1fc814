"""Human scan labeling pages: the team's sessions, the full-screen labeling page, and the phone's one-time link.

Access: the staff pages need a signed-in staff member of the session's team (another team's session answers
404, `Team.for_user`); viewers may look, labeling and creating sessions need an editor (`require_editor`).
The one-time link `/l/<token>` needs nobody: a phone camera has no session, and the token is the secret.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from generator.evals import sessions
from generator.evals.forms import LabelingSessionForm
from generator.models import HumanScanResult, LabelingItem, LabelingSession
from qartsite.access import (
    can_edit,
    cannot_create,
    editable_teams,
    get_for_user_or_404,
    require_editor,
    staff_required,
)
from qartsite.models import Team
from qartsite.numbers import plainly_written, whole
from qartsite.plurals import counted
from qartsite.responses import plain_400
from qartsite.site import site_root, unreachable_reason
from qartsite.storage import MediaUnavailable

log = logging.getLogger(__name__)
VOTES = {"up": 1, "down": -1}
MAX_SECONDS = 24 * 3600.0


def team_sessions(user) -> QuerySet[LabelingSession]:
    """Sessions of the user's teams: the one place these pages decide which sessions a user may see."""
    return LabelingSession.objects.for_user(user)


def session_or_404(request: HttpRequest, pk: int, edit: bool = False) -> LabelingSession:
    session = get_for_user_or_404(team_sessions(request.user).select_related("team", "created_by"), pk=pk)
    if edit:
        require_editor(request.user, session.team)
    return session


def item_or_404(session: LabelingSession, item_pk: int) -> LabelingItem:
    item = session.items.select_related("candidate__job", "result").filter(pk=item_pk).first()
    if item is None:
        raise Http404("Not found")
    return item


# Staff pages ---------------------------------------------------------------------------------------------

@staff_required
@require_http_methods(["GET", "HEAD", "POST"])  # HEAD: what GET answers, without the page (it was a 405)
def session_list(request: HttpRequest) -> HttpResponse:
    can_create = editable_teams(request.user).exists()
    if request.method == "POST" and not can_create:
        raise PermissionDenied(cannot_create(request.user))
    form = LabelingSessionForm(request.user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        require_editor(request.user, data["team"])
        session = sessions.create_session(data["team"], request.user, data["name"], data["candidates"],
                                          data["display_size_px"], data["notes"])
        messages.success(request, f"Session “{session.name}” has {counted(session.items.count(), 'code')} to scan.")
        return redirect("evals:labeling_run", pk=session.pk)
    listed = team_sessions(request.user).select_related("team", "created_by").annotate(
        item_count=Count("items", distinct=True),
        labelled=Count("items", filter=Q(items__result__isnull=False), distinct=True),
    )
    ctx = {"sessions": listed, "form": form, "can_create": can_create,
           "several_teams": Team.for_user(request.user).count() > 1}
    return render(request, "generator/labeling/session_list.html", ctx, status=400 if form.errors else 200)


@staff_required
@require_safe
def session_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One item, full screen: `?position=N` for a given item (back), `?after=N` for the next unlabelled one."""
    session = session_or_404(request, pk, edit=True)
    total = session.items.count()
    position, after = whole(request.GET.get("position")), whole(request.GET.get("after"))
    if position is not None:
        item = session.items.select_related("candidate__job", "result").filter(position=position).first()
    else:
        item = sessions.next_item(session, after)
    if item is None:
        return redirect("evals:labeling_done", pk=session.pk)
    root = site_root(request)
    try:
        sessions.render_item(item, root)
        mode = sessions.scan_mode(item)
    except MediaUnavailable as exc:
        # Nothing to scan until the storage is back: shown like a hidden code, and the item's clock is not started.
        log.warning("Labeling item %s not shown: %s", item.pk, exc)
        mode = "unavailable"
    image = {"link": item.image, "text": item.image, "original": item.candidate.image}.get(mode)
    ctx = {
        "session": session,
        "item": item,
        "mode": mode,
        "scannable": mode not in ("hidden", "unavailable"),
        "link": sessions.link_prefix(root) + item.token,
        "text": sessions.scan_text(item),
        "image_url": image.url if image else "",
        "size": session.display_size_px or 400,
        "number": session.items.filter(position__lt=item.position).count() + 1,
        "total": total,
        "labelled": sessions.labelled_count(session),
        "previous": session.items.filter(position__lt=item.position).order_by("-position").first(),
        "following": session.items.filter(position__gt=item.position).order_by("position").first(),
        # A one-time link on 127.0.0.1 or a bare machine name: no phone opens it, and the page would wait for ever.
        "unreachable": unreachable_reason(root, same_network=True) if mode == "link" else None,
    }
    return render(request, "generator/labeling/run.html", ctx)


def item_state(session: LabelingSession, item: LabelingItem) -> dict:
    """What the labeling page polls for: whether the item has its result yet, and where to go next."""
    result = item.result
    return {
        "item": item.pk,
        "done": result is not None,
        "scanned": result.scanned if result else None,
        "by_phone": item.hit_at is not None,
        "device": result.device if result else "",
        "app": result.app if result else "",
        "seconds": result.seconds if result else None,
        "next": reverse("evals:labeling_run", kwargs={"pk": session.pk}) + f"?after={item.position}",
    }


@staff_required
@require_safe
@never_cache
def item_status(request: HttpRequest, pk: int, item_pk: int) -> JsonResponse:
    session = session_or_404(request, pk)
    return JsonResponse(item_state(session, item_or_404(session, item_pk)))


@staff_required
@require_POST
def item_shown(request: HttpRequest, pk: int, item_pk: int) -> JsonResponse:
    session = session_or_404(request, pk, edit=True)
    item = item_or_404(session, item_pk)
    sessions.show(item, request.user)
    return JsonResponse(item_state(session, item))


def parse_label(post) -> tuple[bool | None, float | None, int | None, str, str]:
    """(scanned, seconds, vote, notes, device) from the labeling page's POST; ValueError with a message otherwise."""
    outcome = post.get("outcome", "")
    if outcome not in ("scanned", "failed", ""):
        raise ValueError("outcome must be “scanned”, “failed” or empty")
    seconds = None
    if post.get("seconds", ""):
        try:
            if not plainly_written(post["seconds"]):  # float() read "٣" (Arabic-Indic) as 3 and "1_0" as 10
                raise ValueError
            seconds = float(post["seconds"])
        except ValueError:
            raise ValueError("seconds must be a number") from None
        if not 0 <= seconds <= MAX_SECONDS:  # also refuses NaN
            raise ValueError("seconds must be between 0 and 86400")
    vote = post.get("vote", "")
    if vote not in ("", *VOTES):
        raise ValueError("vote must be “up”, “down” or empty")
    notes = post.get("notes", "").strip()[:2000]
    scanned = {"scanned": True, "failed": False}.get(outcome)
    if scanned is None and not vote and not notes:
        raise ValueError("nothing to record: press scanned, could not scan, a thumb, or write a note")
    return scanned, seconds, VOTES.get(vote), notes, post.get("device", "").strip()[:80]


@staff_required
@require_POST
def item_label(request: HttpRequest, pk: int, item_pk: int) -> JsonResponse | HttpResponse:
    session = session_or_404(request, pk, edit=True)
    item = item_or_404(session, item_pk)
    if sessions.scan_mode(item) == "hidden":  # nobody could have scanned or seen it: a label would be made up
        return plain_400("This code is not shown (a scan would count in its campaign): skip it.")
    try:
        scanned, seconds, vote, notes, device = parse_label(request.POST)
        sessions.record_label(item, request.user, scanned, seconds, vote, notes, device)
        item.refresh_from_db()
    except ValueError as exc:
        return plain_400(str(exc))
    except LabelingItem.DoesNotExist:
        raise Http404("This labeling session was deleted a moment ago.") from None
    return JsonResponse(item_state(session, item))


@staff_required
@require_safe
def session_done(request: HttpRequest, pk: int) -> HttpResponse:
    session = session_or_404(request, pk)
    total, labelled = session.items.count(), sessions.labelled_count(session)
    ctx = {
        "session": session,
        "total": total,
        "labelled": labelled,
        "remaining": total - labelled,
        # Through the session's items, as `labelled` counts: a label added in the admin beside them is not one of
        # this sitting's answers (it made "8 scanned" of "14 labelled" read as more than were).
        "scanned": session.items.filter(result__scanned=True).count(),
        "by_phone": session.items.filter(hit_at__isnull=False).count(),
        # Offered only to those who may label: a viewer's button answered 403.
        "first_unlabelled": sessions.next_item(session) if can_edit(request.user, session.team) else None,
    }
    return render(request, "generator/labeling/done.html", ctx)


# The phone's one-time link -------------------------------------------------------------------------------

def recorded(item: LabelingItem, agent: str) -> bool:
    """Whether the phone's visit was recorded as the item's scan (`sessions.record_hit`); a 404 when its session was
    deleted meanwhile."""
    try:
        return sessions.record_hit(item, agent) is not None
    except LabelingItem.DoesNotExist:
        raise Http404("Not found") from None


@require_safe
@never_cache
def hit(request: HttpRequest, token: str) -> HttpResponse:
    """A phone opened an item's link: the first real visit after the item was shown records a scan.

    Never a redirect: the phone shows a one-line page, and the labeler looks back at the screen. HEAD requests
    and link-preview bots record nothing (they are not a person's phone reading the code).
    """
    item = LabelingItem.objects.select_related("session__created_by", "candidate").filter(token=token).first()
    if item is None:
        raise Http404("Not found")
    if request.method == "HEAD":
        return HttpResponse(content_type="text/html; charset=utf-8")
    agent = request.headers.get("User-Agent", "")[:1000]
    if sessions.phone_of(agent)[2]:
        state = "preview"
    elif item.shown_at is None:
        state = "not_shown"
    elif recorded(item, agent):
        state = "recorded"
    elif item.result_id and not HumanScanResult.objects.filter(pk=item.result_id, scanned=True).exists():
        state = "marked_failed"  # "Could not scan" was pressed a while ago: the phone's read is not counted
    else:
        state = "already"
    return render(request, "generator/labeling/hit.html", {"state": state})
