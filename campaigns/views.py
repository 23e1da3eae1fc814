"""Dashboard pages: campaigns, placements, their scan charts, QR code downloads and CSV exports.

Access: every object comes through `.for_user(request.user)` and `get_for_user_or_404` (another team's
object answers 404), and every change goes through `require_editor` (a viewer's POST answers 403). Nothing is
deleted here: a campaign is archived and a placement switched off, and their printed codes keep working.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import tzinfo
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import (
    artwork,
    dashboard,
    history,
    names,
    print_builds,
    printfiles,
    retention,
    rollups,
    scan_backlog,
    stats,
)
from campaigns.forms import CampaignForm, NewCampaignForm, PlacementForm, prepare_artwork
from campaigns.models import (
    ARCHIVED_NO_PLACEMENTS,
    Campaign,
    DestinationChange,
    Placement,
    PlacementAlert,
    ScanEvent,
    locked_copy,
)
from generator.core.codes import downloads, print_specs, qr
from qartsite.access import (
    asked_team,
    can_edit,
    cannot_create,
    editable_teams,
    get_for_user_or_404,
    require_editor,
)
from qartsite.models import Team
from qartsite.responses import not_found
from qartsite.site import unreachable_reason
from qartsite.spreadsheets import csv_cell
from qartsite.storage import MediaUnavailable

TOP_PLACEMENTS = 5
DEFAULT_PRINT_WIDTH_CM = 20  # the print form's width for a placement without one
# Integrators parse these by position too: new columns go at the end. `local_time` is `time` in the team's zone,
# so a spreadsheet's days are the pages' days.
CSV_COLUMNS = ("time", "placement", "slug", "device_class", "os", "browser", "country", "language", "visitor",
               "is_bot", "referer", "rule", "is_repeat", "local_time")
EXPORT_NOTE_HEADER = "X-Qart-Export-Note"  # a header, not a comment line: CSV readers would take that for a row


# Helpers -------------------------------------------------------------------------------------------------

def chosen_range(request: HttpRequest, team: Team, scope: stats.Scope) -> tuple[stats.DateRange, dict]:
    """The date range the page asks for and the picker's context; a range that cannot be read falls back to the
    default one, with the reason shown above the figures (the page then answers 400)."""
    kept = {name: request.GET[name] for name in ("archived", "team") if request.GET.get(name)}
    try:
        days = dashboard.range_for(team, request.GET, scope)
    except stats.RangeError as exc:
        days = dashboard.range_for(team, {}, scope)
        return days, dashboard.picker(days, kept, str(exc), typed=request.GET)
    return days, dashboard.picker(days, kept)


# Campaigns -----------------------------------------------------------------------------------------------

@login_required
@require_safe
def campaign_list(request: HttpRequest) -> HttpResponse:
    teams = Team.for_user(request.user)
    if not teams.exists():
        return render(request, "qartsite/no_team.html")
    mine = Campaign.objects.for_user(request.user)
    archived = request.GET.get("archived") == "1"
    listed = list(mine.filter(archived=archived).select_related("team"))
    # The overview is of the first team's days; a person in several teams sees each campaign in its own team's.
    team = asked_team(teams, request.GET.get("team"))
    days, picker = chosen_range(request, team, stats.Campaigns(mine.filter(team=team)))
    figures = {}
    for one in {campaign.team for campaign in listed}:
        team_days = None if days.key == "lifetime" else stats.parse_range(days.query(), stats.local_today(one), None)
        figures.update(stats.campaign_figures(mine.filter(team=one, archived=archived), team_days))
    overview = stats.Campaigns(mine.filter(team=team, archived=archived))  # the campaigns listed above it
    editable = editable_teams(request.user)
    ctx = {
        "campaigns": [(campaign, figures.get(campaign.pk, stats.CampaignFigures())) for campaign in listed],
        "archived": archived,
        "other_count": mine.filter(archived=not archived).count(),
        # Archived ↔ active keeps the range and team chosen (the link had dropped both).
        "other_query": urlencode({**{k: v for k, v in picker["range_kept"].items() if k != "archived"},
                                  **days.query(), **({} if archived else {"archived": "1"})}),
        "form": (NewCampaignForm(teams=editable, initial={"team": asked_team(editable, team.pk)})
                 if editable.exists() else None),
        "teams": teams,
        "overview_team": team,
        "backlog_note": scan_backlog.backlog().note(team.zone),  # the overview's totals lag as the pages' do
        **picker,
        **dashboard.scan_cards(overview, days, team),
    }
    return render(request, "campaigns/campaign_list.html", ctx, status=400 if picker["range_error"] else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    teams = editable_teams(request.user)
    if not teams.exists():
        raise PermissionDenied(cannot_create(request.user))
    form = NewCampaignForm(request.POST or None, teams=teams,
                           initial={"team": asked_team(teams, request.GET.get("team"))})
    if request.method == "POST" and valid_and_saved(form):
        campaign = form.instance
        messages.success(request, f"Campaign “{campaign.name}” created. Add a placement for each printed code.")
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": None},
                  status=400 if form.errors else 200)


@login_required
@require_safe
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    placements = campaign.placements.all()
    whole = stats.Campaigns.one(campaign)
    days, picker = chosen_range(request, campaign.team, whole)
    listed = list(placements.select_related("artwork"))
    figures = stats.placement_figures(placements, days, trends=False)
    rows = dashboard.comparison(listed, figures, {placement.pk: placement.short_url(request) for placement in listed})
    shown = dashboard.comparison_page(rows, request.GET.get("page"))
    stats.add_trends(figures, placements.filter(pk__in=[row.placement.pk for row in shown["rows"]]), days)
    editor = can_edit(request.user, campaign.team)
    alerts = PlacementAlert.objects.filter(placement__campaign=campaign, dismissed_at__isnull=True)
    shown_alerts = list(alerts.select_related("placement")[:dashboard.ALERTS_SHOWN])
    ctx = {
        "campaign": campaign,
        **shown,
        "top": dashboard.bars([(row.placement.name, row.figures.scans) for row in rows if row.figures.scans]
                              [:TOP_PLACEMENTS]),
        "can_edit": editor,
        "placement_form": PlacementForm(team=campaign.team) if editor and not campaign.archived else None,
        "alerts": shown_alerts,
        "alerts_more": alerts.count() - len(shown_alerts) if len(shown_alerts) == dashboard.ALERTS_SHOWN else 0,
        "destination_changes": history.latest(campaign),
        "backlog_note": scan_backlog.backlog().note(campaign.team.zone),
        "export_note": retention.export_gap(campaign.team, placements, days),
        **picker,
        **dashboard.scan_cards(whole, days, campaign.team),
    }
    return render(request, "campaigns/campaign_detail.html", ctx, status=400 if picker["range_error"] else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    if request.method != "POST":
        form = CampaignForm(instance=campaign)
    else:
        with transaction.atomic():  # on the campaign as stored, locked: another's change meanwhile stays
            campaign = locked_copy(campaign) or not_found()
            form = CampaignForm(request.POST, instance=campaign)
            saved = valid_and_saved(form, request.user)
        if saved:
            messages.success(request, "Campaign saved.")
            return redirect("campaigns:detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": campaign},
                  status=400 if form.errors else 200)


def valid_and_saved(form: CampaignForm | PlacementForm, editor=None) -> bool:
    """Validate and save `form` in one transaction, so that its name check's lock (`campaigns.names`) holds until the
    row is saved; an edit (`editor`: who) records its destination changes (`history.recorded`). False: not valid."""
    with transaction.atomic():
        if not form.is_valid():
            return False
        if editor is None:
            form.save()
        else:
            with history.recorded(form.instance, editor):
                form.save()
    return True


def archive_requested(request: HttpRequest) -> bool:
    """The archive forms post archived=1 (archive, switch off) or archived=0 (bring back)."""
    return request.POST.get("archived", "1") != "0"


@login_required
@require_POST
def campaign_archive(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Archive a campaign or bring it back. Pages never delete one: its printed codes must keep working."""
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    archive = archive_requested(request)
    with transaction.atomic():  # the name check holds the team until the campaign is back (`campaigns.names`)
        if not archive and names.campaign_name_clash(campaign, campaign.team, campaign.name, archived=False):
            messages.error(request, f"Another active campaign is called “{campaign.name}”: rename this one (edit "
                                    "it) before bringing it back.")
            return redirect("campaigns:detail", campaign_id=campaign.pk)
        campaign.set_archived(archive)
    if campaign.archived:
        messages.success(request, f"Campaign “{campaign.name}” archived. Its printed codes still redirect, to "
                                  f"{campaign.fallback_destination}, and still count.")
    else:
        messages.success(request, f"Campaign “{campaign.name}” is back.")
    return redirect("campaigns:detail", campaign_id=campaign.pk)


# Placements ----------------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def placement_new(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    if request.method != "POST" and campaign.archived:
        # The whole form, to be refused only once filled in: the campaign's page says why instead.
        messages.info(request, ARCHIVED_NO_PLACEMENTS)
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    form = PlacementForm(request.POST or None, instance=Placement(campaign=campaign), team=campaign.team)
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
    total_scans, backlog = stats.scans_ever(just_this), scan_backlog.backlog()
    ctx = {
        "placement": placement,
        "campaign": placement.campaign,
        "short_url": short_url,
        "unreachable": unreachable_reason(short_url),
        "artwork_elsewhere": art is not None and not artwork.carries_short_link(art.job.content, placement),
        "will_not_scan": artwork.will_not_scan(placement),
        "total_scans": total_scans,
        # Never scanned (and no scan waiting to be stored): one line instead of screens of empty charts
        "nothing_scanned": not total_scans and not backlog.waiting,
        "recent_scans": recent["7d"].scans,
        "month_scans": recent["30d"].scans,
        "chart_days": 30,
        "can_edit": can_edit(request.user, placement.campaign.team),
        "destination_changes": history.latest(placement.campaign, placement),
        "print_widths": print_widths(placement, preflight if placement.printed_width_cm
                                     else sizing_preflight(placement, short_url)),
        "print_formats": print_specs.FORMATS if art is None else [f for f in print_specs.FORMATS if f != "svg"],
        "preflight": preflight,
        # The plain code's PNG is a proof at a fixed size (print files come at the placement's own width).
        "proof_pixels": downloads.PRINT_SIZES[1], "proof_dpi": downloads.PRINT_DPI,
        "proof_size": print_specs.describe_length(downloads.PRINT_SIZES[1] / downloads.PRINT_DPI
                                                 * print_specs.MM_PER_INCH),
        "print_options": print_options(placement, request.GET if refusal or cautions else {}),
        "print_cautions": cautions or [],
        "print_confirm_url": confirm_url,
        "print_error": refusal.message if refusal and not making else "",
        "print_making": refusal.message if making else "",
        "refresh_seconds": print_builds.RETRY_SECONDS if making else None,
        # Served at the print URL too (a refusal): the date range must lead back to the page, not to a download.
        "range_path": reverse("campaigns:placement", args=[placement.pk]),
        "backlog_note": backlog.note(team.zone),
        "export_note": retention.export_gap(team, just_this, days),
        **picker,
        "picker_in_scans": True,  # the placement page's own template stays the print panels' (another change's)
        **dashboard.scan_cards(just_this, days, team),
        # One placement: its unique visitors need no word on adding placements up.
        "unique_counted": stats.UNIQUE_COUNTED_ONE, "unique_explained": stats.UNIQUE_EXPLAINED_ONE,
    }
    status = 202 if making else refusal.status if refusal else 400 if picker["range_error"] else 200
    return render(request, "campaigns/placement_detail.html", ctx, status=status)


def print_options(placement: Placement, typed) -> dict:
    """The print form's values: as typed where a request gave them, else the defaults (the placement's width)."""
    width = f"{placement.printed_width_cm or DEFAULT_PRINT_WIDTH_CM:g}cm"
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
    widths = [smallest] if smallest and (own or 5) < smallest else []
    widths += [own] if own else []
    widths += [cm for cm in (5, 10, 20, 50) if cm not in widths and (smallest is None or cm >= smallest)]
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
        return "No preflight right now: the image storage is unavailable. Reload in a minute."
    except (OSError, ValueError) as exc:  # a missing or unreadable image, a code that cannot be encoded
        return f"No preflight: {exc}"
    report["width_label"] = print_specs.describe_length(placement.printed_width_cm * 10)
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
        return PlacementForm(request.POST or None, instance=placement, team=team, user=request.user,
                             short_url=placement.short_url(request))

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


@login_required
@require_POST
def destination_revert(request: HttpRequest, change_id: int) -> HttpResponse:
    """Set a destination back to what it was before `change_id` (editors), recorded as a change itself."""
    change = get_for_user_or_404(DestinationChange.objects.for_user(request.user)
                                 .select_related("campaign__team", "placement__campaign"), pk=change_id)
    require_editor(request.user, change.campaign.team)
    try:
        made = history.revert(change, request.user)
    except history.RevertRefused as exc:
        messages.error(request, str(exc))
    else:
        label = change.get_field_display()
        before = f"“{change.before_shown}”" if change.before_shown else "empty"
        if made is None:
            messages.info(request, f"Nothing to revert: the {label} is already {before}.")
        else:
            messages.success(request, f"Reverted: the {label} is {before} again.")
    if change.placement_id and request.POST.get("back") != "campaign":
        return redirect("campaigns:placement", placement_id=change.placement_id)
    return redirect("campaigns:detail", campaign_id=change.campaign_id)


# QR code downloads ---------------------------------------------------------------------------------------

def plain_code(request: HttpRequest, placement: Placement) -> qr.QRCode:
    # A plain code has no art to make room for, so any version is fine; short links stay small anyway.
    return qr.encode(placement.short_url(request), ecc=settings.QART["DEFAULT_ECC"], max_version=40)


@login_required
@require_safe
def placement_code_svg(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    response = HttpResponse(downloads.code_svg(plain_code(request, placement)), content_type="image/svg+xml")
    if "download" in request.GET:
        response["Content-Disposition"] = f'attachment; filename="qart-{placement.slug}.svg"'
    return response


@login_required
@require_safe
def placement_code_png(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    size = downloads.PRINT_SIZES[1]  # 2048 px: 17 cm at 300 dpi, crisp since modules are drawn at that size
    image = qr.render_control_image(plain_code(request, placement), size=size)
    response = HttpResponse(downloads.png_at_size(image, size), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="qart-{placement.slug}.png"'
    return response


@login_required
@require_safe
def placement_print(request: HttpRequest, placement_id: int) -> HttpResponse:
    """A print file at physical size (query: width=20cm, dpi, bleed, crop_marks, format, cmyk), read back and
    verified before it is sent; the artwork's, else the plain code's."""
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    try:
        made = print_builds.requested_file(placement, placement.short_url(request), request.GET, request.user.pk,
                                           start=request.method != "HEAD")
        cautions = printfiles.cautions(made.report, placement) if request.GET.get("confirm") != "1" else []
        if cautions and request.method != "HEAD":
            # The API sends these in its report header; a person gets them before the file, with the same file
            # one click away.
            confirmed = request.GET.copy()
            confirmed["confirm"] = "1"
            return placement_page(request, placement, cautions=cautions,
                                  confirm_url=f"{request.path}?{confirmed.urlencode()}")
        response = print_builds.download(made, print_builds.file_name(placement, made),
                                         head=request.method == "HEAD")
        if cautions:  # a HEAD (the waiting page's script): the GET that follows shows them, not the file
            response["X-Qart-Print-Cautions"] = str(len(cautions))
        return response
    except (printfiles.Refused, print_builds.Making) as exc:
        if request.method == "HEAD" and isinstance(exc, print_builds.Making):
            return HttpResponse(status=202)  # the waiting page's script asking: no page to draw for it
        # A person at the print form: answer with the page, the reason (or that a worker is making the file, the
        # page asking again by itself) next to the form and the options as typed.
        return placement_page(request, placement, refusal=exc)


def plain_text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, content_type="text/plain; charset=utf-8", status=status)


# CSV export ----------------------------------------------------------------------------------------------

class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def scan_rows(scans: QuerySet[ScanEvent], zone: tzinfo) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # values_list names exactly what leaves: never the old fixed-key client hash. The visitor key changes daily, so
    # it tells visitors apart within a day and follows nobody across days.
    rows = scans.order_by("time", "pk").values_list(
        "time", "placement__name", "placement__slug", "device_class", "os", "browser", "country", "accept_language",
        "visitor_key", "is_bot", "referer", "rule", "is_repeat",
    )
    for time, *texts, is_bot, referer, rule, is_repeat in rows.iterator(chunk_size=2000):
        yield writer.writerow([time.isoformat(), *map(csv_cell, texts), "true" if is_bot else "false",
                               csv_cell(referer), csv_cell(rule), "true" if is_repeat else "false",
                               time.astimezone(zone).isoformat()])


def csv_response(request: HttpRequest, team: Team, scans: QuerySet[ScanEvent], placements: QuerySet[Placement],
                 name: str) -> HttpResponse:
    """The scans of the range the query asks for (the dashboard's), as a streamed CSV; a bad range is a 400."""
    # Without a range, an export is of every stored scan, as before ranges existed.
    asked = request.GET if {"range", "from", "to"} & set(request.GET) else {"range": "lifetime"}
    try:
        days = dashboard.range_for(team, asked, placements)
    except stats.RangeError as exc:
        return plain_text(str(exc), 400)
    start, end = rollups.day_bounds(days.start, team.zone)[0], rollups.day_bounds(days.end, team.zone)[1]
    response = StreamingHttpResponse(scan_rows(scans.filter(time__gte=start, time__lt=end), team.zone),
                                     content_type="text/csv; charset=utf-8")
    # The name's first 60 characters: long campaign and placement names made names of ~220 characters.
    filename = f"{slugify(name)[:60].strip('-') or 'scans'}-scans-{days.start}-to-{days.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if note := retention.export_gap(team, placements, days):
        response[EXPORT_NOTE_HEADER] = note
    return response


@login_required
@require_safe
def campaign_scans_csv(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    return csv_response(request, campaign.team, ScanEvent.objects.filter(placement__campaign=campaign),
                        campaign.placements.all(), campaign.name)


@login_required
@require_safe
def placement_scans_csv(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    return csv_response(request, placement.campaign.team, placement.scans.all(),
                        Placement.objects.filter(pk=placement.pk), f"{placement.campaign.name}-{placement.name}")
