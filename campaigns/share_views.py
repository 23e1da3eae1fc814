"""Share links of a campaign's report: editors make and revoke them; anyone with a live link reads the report."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from campaigns import dashboard, scan_backlog, shares, stats
from campaigns.models import Campaign, ReportShare
from campaigns.views import chosen_range
from qartsite import form_fields
from qartsite.access import get_for_user_or_404, require_editor
from qartsite.rates import retry_in
from qartsite.site import absolute_url


class ShareForm(forms.Form):
    label = forms.CharField(max_length=100, required=False, help_text="Who it is for (only your team sees this).")
    # Plain sentences, not Django's "Ensure this value is greater than or equal to 1.".
    days = form_fields.IntegerField(
        min_value=1, max_value=shares.MAX_DAYS, initial=shares.DEFAULT_DAYS, label="Valid for (days)",
        error_messages={"min_value": "A share link lasts at least 1 day.",
                        "max_value": f"A share link lasts at most {shares.MAX_DAYS} days."})


def private(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: keep the page out of caches, search engines and other sites' Referer headers.
    # Not no-referrer: under it browsers send "Origin: null" with the page's forms (Sign out, Revoke) and CSRF
    # refuses them; same-origin sends a Referer only to this site, whose access log has the URL already.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "same-origin"
    return response


@login_required
@require_POST
def share_new(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    form = ShareForm(request.POST)
    if not form.is_valid():
        # The page again with the errors at their fields and what was typed, as the campaign forms answer.
        return share_page(request, campaign, form=form, status=400)
    share, token = shares.create(campaign, request.user, form.cleaned_data["days"], form.cleaned_data["label"])
    # Shown once, by the page this redirects to: answered here, a reload sent the form again and made a second link.
    request.session[new_link_key(campaign)] = absolute_url(request, reverse("campaigns:shared_report", args=[token]))
    return redirect("campaigns:shares", campaign_id=campaign.pk)


def new_link_key(campaign: Campaign) -> str:
    """The session key under which `share_new` leaves a campaign's new link for the next page to show, once."""
    return f"qart:new-share-link:{campaign.pk}"


def share_page(request: HttpRequest, campaign: Campaign, new_link: str = "", status: int = 200,
               form: ShareForm | None = None) -> HttpResponse:
    return render(request, "campaigns/shares.html", {
        "campaign": campaign, "shares": ReportShare.objects.filter(campaign=campaign), "form": form or ShareForm(),
        "new_link": new_link, "now": timezone.now(),
    }, status=status)


@login_required
@require_safe
def share_list(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    # Popped by a GET only: a HEAD (a link prefetcher, a monitor) must not use up the one showing of the link.
    new_link = request.session.pop(new_link_key(campaign), "") if request.method == "GET" else ""
    return private(share_page(request, campaign, new_link=new_link)) if new_link else share_page(request, campaign)


@login_required
@require_POST
def share_revoke(request: HttpRequest, share_id: int) -> HttpResponse:
    share = get_for_user_or_404(ReportShare.objects.for_user(request.user).select_related("campaign__team"),
                                pk=share_id)
    require_editor(request.user, share.campaign.team)
    shares.revoke(share)
    messages.success(request, "Share link revoked: it opens nothing from now on.")
    return redirect("campaigns:shares", campaign_id=share.campaign_id)


@csrf_exempt  # read-only: POST and the rest are 405 (require_safe), not a CSRF failure page
@require_safe
def shared_report(request: HttpRequest, token: str) -> HttpResponse:
    """The campaign's report, read-only and without login, for a live share link.

    A token that names no share answers 404, a revoked or expired one 410, both with a page that names no campaign;
    too many opens from one address answer 429 with Retry-After (`shares.SharedReportThrottle`).
    """
    throttle = shares.SharedReportThrottle()
    if not throttle.allow_request(request, None):
        wait = throttle.retry_after()
        response = render(request, "campaigns/share_busy.html", {"retry_in": retry_in(wait)}, status=429)
        response["Retry-After"] = str(wait)
        return private(response)
    share = shares.find(token)
    if share is None or not shares.is_live(share):
        return private(render(request, "campaigns/share_gone.html", {"gone": share is not None},
                              status=404 if share is None else 410))
    campaign = share.campaign
    placements = campaign.placements.all()
    whole = stats.Campaigns.one(campaign)
    days, picker = chosen_range(request, campaign.team, whole)
    listed = list(placements)
    figures = stats.placement_figures(placements, days, trends=False)  # the shared report draws no sparklines
    rows = [(placement, figures[placement.pk]) for placement in listed]
    rows.sort(key=lambda row: (-row[1].scans, row[0].name))
    ctx = {"campaign": campaign, "share": share, **dashboard.comparison_page(rows, request.GET.get("page")), **picker,
           # Never scanned: a plain "No scans yet" line instead of empty charts (its reader cannot act on a next step)
           "nothing_scanned": dashboard.never_scanned(stats.scans_ever(whole), scan_backlog.backlog()),
           **dashboard.scan_cards(whole, days, campaign.team, shared=True)}
    return private(render(request, "campaigns/shared_report.html", ctx,
                          status=400 if picker["range_error"] else 200))
