"""A placement's pages: adding one, its page (figures, short link, artwork, the print form and its preflight),
editing it (the artwork picker) and switching it off or on. Access as on every dashboard page (`campaigns.views`):
through `for_user`, changes by editors only; a placement is never deleted here.
"""

from __future__ import annotations

import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import artwork, dashboard, history, print_builds, printfiles, retention, scan_backlog, stats
from campaigns.forms import PlacementForm, prepare_artwork
from campaigns.models import ARCHIVED_NO_PLACEMENTS, Campaign, Placement, locked_copy
from campaigns.views import archive_requested, chosen_range, valid_and_saved
from generator.core.codes import downloads, print_specs
from generator.core.codes.preflight import PHONE
from qartsite.access import can_edit, get_for_user_or_404, require_editor
from qartsite.responses import not_found
from qartsite.site import unreachable_reason
from qartsite.storage import MediaUnavailable

COMMON_PRINT_WIDTHS_CM = (5, 10, 20, 50)  # the print form's presets, after the placement's own width
DEFAULT_PRINT_WIDTH_CM = 20  # the print form's width for a placement without one


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def placement_new(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    if request.method != "POST" and campaign.archived:
        # The whole form, to be refused only once filled in: the campaign's page says why instead.
        messages.info(request, ARCHIVED_NO_PLACEMENTS)
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    # Bound on every POST: an empty one (a script's JSON body) was the blank form, 200, with nothing saved
    form = PlacementForm(request.POST if request.method == "POST" else None, instance=Placement(campaign=campaign),
                         team=campaign.team)
    if request.method == "POST" and valid_and_saved(form):
        placement = form.instance
        messages.success(request, f"Placement “{placement.name}” added: its short link is ready to print.")
        return redirect("campaigns:placement", placement_id=placement.pk)
    ctx = {"form": form, "campaign": campaign, "placement": None}
    return render(request, "campaigns/placement_form.html", ctx, status=400 if form.errors else 200)


def placements_for(request: HttpRequest) -> QuerySet[Placement]:
    return Placement.objects.for_user(request.user).select_related("campaign__team", "artwork__job")


@login_required
@require_safe
def placement_detail(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    return placement_page(request, placement)


def placement_page(request: HttpRequest, placement: Placement,
                   refusal: printfiles.Refused | print_builds.Making | None = None,
                   cautions: list[str] | None = None, confirm_url: str = "") -> HttpResponse:
    """The placement page; with a `refusal`, the print file it could not make, its reason at the print form, the
    options as typed (the request's query) and the refusal's status; with `Making`, 202 and the page asks for the
    file again every few seconds; with `cautions`, what to know before printing the file asked for, and
    `confirm_url` to download it all the same."""
    making = isinstance(refusal, print_builds.Making)
    just_this = Placement.objects.filter(pk=placement.pk)
    team = placement.campaign.team
    days, picker = chosen_range(request, team, just_this)
    today = stats.local_today(team)
    recent = {key: stats.placement_figures(just_this, stats.parse_range({"range": key}, today, None))[placement.pk]
              for key in ("7d", "30d")}
    short_url = placement.short_url(request)
    art = placement.artwork
    preflight = preflight_or_message(placement, short_url)
    widths = print_widths(placement, preflight if placement.printed_width_cm
                          else sizing_preflight(placement, short_url))
    total_scans, backlog = stats.scans_ever(just_this), scan_backlog.backlog()
    ctx = {
        "placement": placement,
        "campaign": placement.campaign,
        "short_url": short_url,
        "unreachable": unreachable_reason(short_url),
        "artwork_elsewhere": art is not None and not artwork.carries_short_link(art.job.content, placement),
        "will_not_scan": artwork.will_not_scan(placement),
        "total_scans": total_scans,
        # Never scanned: one line instead of screens of empty charts
        "nothing_scanned": dashboard.never_scanned(total_scans, backlog),
        "recent_scans": recent["7d"].scans,
        "month_scans": recent["30d"].scans,
        "chart_days": 30,
        "can_edit": can_edit(request.user, placement.campaign.team),
        "destination_changes": history.latest(placement.campaign, placement),
        "print_widths": widths,
        "print_formats": print_specs.FORMATS if art is None else [f for f in print_specs.FORMATS if f != "svg"],
        "preflight": preflight,
        # The plain code's PNG is a proof at a fixed size (print files come at the placement's own width).
        "proof_pixels": downloads.PRINT_SIZES[1], "proof_dpi": downloads.PRINT_DPI,
        "proof_size": print_specs.describe_length(downloads.PRINT_SIZES[1] / downloads.PRINT_DPI
                                                 * print_specs.MM_PER_INCH),
        "print_options": print_options(placement, request.GET if refusal or cautions else {}, widths),
        "print_cautions": cautions or [],
        "print_confirm_url": confirm_url,
        "print_error": refusal.message if refusal and not making else "",
        "print_making": refusal.message if making else "",
        "refresh_seconds": print_builds.RETRY_SECONDS if making else None,
        # Served at the print URL too (a refusal): the date range must lead back to the page, not to a download.
        "range_path": reverse("campaigns:placement", args=[placement.pk]),
        "backlog_note": backlog.note(team.counted_zone),
        "export_note": retention.export_gap(team, just_this, days),
        **picker,
        "picker_in_scans": True,  # the placement page's own template stays the print panels' (another change's)
        **dashboard.scan_cards(just_this, days, team),
        # One placement: its unique visitors need no word on adding placements up.
        "unique_counted": stats.UNIQUE_COUNTED_ONE, "unique_explained": stats.UNIQUE_EXPLAINED_ONE,
    }
    status = 202 if making else refusal.status if refusal else 400 if picker["range_error"] else 200
    return render(request, "campaigns/placement_detail.html", ctx, status=status)


def print_options(placement: Placement, typed, widths: list[dict]) -> dict:
    """The print form's values: as typed where a request gave them, else the defaults: the placement's width, or for
    one without a width DEFAULT_PRINT_WIDTH_CM, or the first of `widths` (`print_widths`) where that is larger: the
    smallest that scans from its distance (a billboard's form said 20 cm, which does not scan from 10 m, beside a
    single preset of 59 cm)."""
    default = placement.printed_width_cm or max(DEFAULT_PRINT_WIDTH_CM, widths[0]["cm"] if widths else 0)
    width = f"{default:g}cm"
    return {"width": typed.get("width", width), "dpi": typed.get("dpi", "300"), "bleed": typed.get("bleed", "3mm"),
            "format": str(typed.get("format") or "pdf").lower(),
            **{box: str(typed.get(box, "")).lower() in printfiles.TRUE_VALUES for box in ("crop_marks", "cmyk")}}


def print_widths(placement: Placement, preflight: dict | str | None = None) -> list[dict]:
    """Offered print widths in cm and inches: the placement's own width first, then common sizes. Where its preflight
    says that width is too small for its scanning distance, the smallest that scans (whole cm, rounded up) comes first
    instead, the placement's own next; no common size smaller than it is offered, and without a width of its own it
    comes first where it is larger than the first common size."""
    own = placement.printed_width_cm
    smallest = None
    if isinstance(preflight, dict) and preflight.get("min_width_m"):
        smallest = math.ceil(round(preflight["min_width_m"] * 100, 6))
        if smallest * 10 > print_specs.MAX_WIDTH_MM:  # wider than any print file is made: no such preset
            smallest = None
    widths = [smallest] if smallest and (own or COMMON_PRINT_WIDTHS_CM[0]) < smallest else []
    widths += [own] if own else []
    widths += [cm for cm in COMMON_PRINT_WIDTHS_CM if cm not in widths and (smallest is None or cm >= smallest)]
    return [{"cm": cm, "label": print_specs.describe_length(cm * 10)} for cm in widths]


def sizing_preflight(placement: Placement, short_url: str) -> dict | None:
    """A placement without a printed width measured at the print form's default width, for the smallest width that
    scans from its distance (which does not depend on the width measured at): a billboard's presets were 5 to 50 cm,
    the filled one 5 cm, and every one of them was too small to scan from 10 m. None when it cannot be measured."""
    try:
        return printfiles.placement_preflight(placement, short_url, DEFAULT_PRINT_WIDTH_CM)
    except (OSError, ValueError):  # MediaUnavailable is an OSError; the panel says why
        return None


def preflight_or_message(placement: Placement, short_url: str) -> dict | str:
    """The placement's preflight, or why there is none (no width yet, or art that cannot be read)."""
    if not placement.printed_width_cm:
        return "Set the printed width (edit the placement) to see from how far it will scan."
    try:
        report = dict(printfiles.placement_preflight(placement, short_url))
    except MediaUnavailable:
        return "Where it scans cannot be worked out right now: the image storage is unavailable. Reload in a minute."
    except (OSError, ValueError) as exc:  # a missing or unreadable image, a code that cannot be encoded
        return f"Where it scans cannot be worked out: {exc}"  # "preflight" is a printer's word
    report["width_label"] = print_specs.describe_length(placement.printed_width_cm * 10)
    report["camera_words"] = PHONE.in_plain_words()  # the report's `assumptions` stay the API's
    if report["min_width_m"]:
        report["min_width_label"] = print_specs.describe_length(report["min_width_m"] * 1000)
    return report


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def placement_edit(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    team = placement.campaign.team
    require_editor(request.user, team)

    def bound(placement: Placement) -> PlacementForm:
        # Bound on every POST: an empty one (a script's JSON body) was the page again, 200, with nothing saved
        return PlacementForm(request.POST if request.method == "POST" else None, instance=placement, team=team,
                             user=request.user, short_url=placement.short_url(request))

    if request.method != "POST":
        form = bound(placement)
    else:
        # Verifying and restamping take a second: done before the lock, judged again (quickly) under it.
        prepare_artwork(bound(placement), short_url=placement.short_url(request), user=request.user)
        with transaction.atomic():  # on the placement as stored, locked: another's change meanwhile stays
            placement = locked_copy(placement) or not_found()
            form = bound(placement)
            saved = valid_and_saved(form, request.user)
        if saved:
            if placement.print_anyway_reason:  # kept only for artwork that fails the scan check (`artwork.apply`)
                messages.warning(request, "Placement saved. Its artwork will not scan: it is printed anyway, and "
                                          "its print downloads stay off.")
            else:
                messages.success(request, "Placement saved.")
            return redirect("campaigns:placement", placement_id=placement.pk)
    ctx = {"form": form, "campaign": placement.campaign, "placement": placement,
           "choices": artwork_cards(form, placement)}
    return render(request, "campaigns/placement_form.html", ctx, status=400 if form.errors else 200)


def artwork_cards(form: PlacementForm, placement: Placement) -> list[dict]:
    """The thumbnail picker's cards: each candidate with its verdict and whether it carries this placement's link."""
    chosen = str(form["artwork"].value() or "")
    return [{"candidate": c, "checked": str(c.pk) == chosen, "passes": artwork.print_verdict(c).passed,
             "elsewhere": not artwork.carries_short_link(c.job.content, placement)} for c in form.choices]


@login_required
@require_POST
def placement_archive(request: HttpRequest, placement_id: int) -> HttpResponse:
    """Switch a placement off (what deleting it means) or on again; its printed code keeps redirecting either way."""
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    require_editor(request.user, placement.campaign.team)
    placement.set_active(not archive_requested(request))
    if placement.active:
        messages.success(request, f"Placement “{placement.name}” is on again.")
    else:
        messages.success(request, f"Placement “{placement.name}” switched off. Its printed code still redirects, to "
                                  f"{placement.destination}, and still counts.")
    return redirect("campaigns:placement", placement_id=placement.pk)
