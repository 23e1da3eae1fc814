"""Dashboard pages: campaigns, placements, their scan charts, QR code downloads and CSV exports.

Access: every object comes through `.for_user(request.user)` and `get_for_user_or_404` (another team's
object answers 404), and every change goes through `require_editor` (a viewer's POST answers 403). Nothing is
deleted here: a campaign is archived and a placement switched off, and their printed codes keep working.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import stats
from campaigns.forms import CampaignForm, NewCampaignForm, PlacementForm
from campaigns.models import Campaign, Placement, ScanEvent
from generator.core.codes import downloads, qr
from qartsite.access import VIEWERS_CANNOT_CHANGE, can_edit, editable_teams, get_for_user_or_404, require_editor
from qartsite.models import Team
from qartsite.spreadsheets import csv_cell

CHART_SERIES = 6  # lines on the campaign chart; further placements are summed into one "other" line
TOP_PLACEMENTS = 5
CSV_COLUMNS = ("time", "placement", "slug", "device_class", "os", "browser", "country", "is_bot", "referer")


# Helpers -------------------------------------------------------------------------------------------------

def carries_short_link(content: str, placement: Placement) -> bool:
    """Whether an artwork's content is this placement's short link, on whatever host it was made."""
    return urlsplit(content).path == reverse("short_link", args=[placement.slug])


def bars(rows: list[tuple[str, int]]) -> list[dict]:
    """Rows of (label, count) with each bar's width in percent of the largest."""
    largest = max((count for _, count in rows), default=0) or 1
    return [{"label": label, "count": count, "width": round(100 * count / largest)} for label, count in rows]


def chart_data(daily: stats.DailyCounts, names: dict[int, str]) -> dict:
    """Chart.js line data: one series per placement, the busiest first; the rest summed into one line."""
    series = sorted(daily.counts.items(), key=lambda item: (-sum(item[1]), names[item[0]]))
    datasets = [{"label": names[pk], "data": counts} for pk, counts in series[:CHART_SERIES]]
    rest = [counts for _, counts in series[CHART_SERIES:]]
    if rest:
        other = [sum(day) for day in zip(*rest, strict=True)]
        datasets.append({"label": f"{len(rest)} other placements", "data": other})
    return {"labels": [f"{day.day} {day:%b}" for day in daily.days], "datasets": datasets}


def scan_summary(placements: QuerySet[Placement], names: dict[int, str]) -> dict:
    """Context shared by the campaign and placement pages: chart, 30-day total, device and OS breakdowns."""
    daily = stats.daily_counts(placements)
    return {
        "chart": chart_data(daily, names),
        "daily": list(zip(daily.days, daily.totals(), strict=True)),
        "month_scans": sum(daily.totals()),
        "devices": bars(stats.breakdown(placements, "device_class")),
        "systems": bars(stats.breakdown(placements, "os")),
        "chart_days": stats.CHART_DAYS,
    }


# Campaigns -----------------------------------------------------------------------------------------------

@login_required
@require_safe
def campaign_list(request: HttpRequest) -> HttpResponse:
    if not Team.for_user(request.user).exists():
        return render(request, "qartsite/no_team.html")
    mine = Campaign.objects.for_user(request.user)
    archived = request.GET.get("archived") == "1"
    campaigns = stats.campaigns_with_scan_counts(mine.filter(archived=archived).select_related("team"))
    teams = editable_teams(request.user)
    ctx = {
        "campaigns": campaigns,
        "archived": archived,
        "other_count": mine.filter(archived=not archived).count(),
        "form": NewCampaignForm(teams=teams, initial={"team": teams.first()}) if teams.exists() else None,
        "teams": Team.for_user(request.user),
    }
    return render(request, "campaigns/campaign_list.html", ctx)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    teams = editable_teams(request.user)
    if not teams.exists():
        raise PermissionDenied(VIEWERS_CANNOT_CHANGE)
    form = NewCampaignForm(request.POST or None, teams=teams)
    if request.method == "POST" and form.is_valid():
        campaign = form.save()
        messages.success(request, f"Campaign “{campaign.name}” created. Add a placement for each printed code.")
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": None},
                  status=400 if form.errors else 200)


@login_required
@require_safe
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    placements = stats.with_scan_counts(campaign.placements.select_related("artwork"))
    rows = [(placement, placement.short_url(request)) for placement in placements]
    names = {placement.pk: placement.name for placement, _ in rows}
    editor = can_edit(request.user, campaign.team)
    ctx = {
        "campaign": campaign,
        "rows": rows,
        "total_scans": sum(p.total_scans for p, _ in rows),
        "recent_scans": sum(p.recent_scans for p, _ in rows),
        "top": bars([(p.name, p.total_scans) for p, _ in sorted(rows, key=lambda r: -r[0].total_scans)
                     if p.total_scans][:TOP_PLACEMENTS]),
        "can_edit": editor,
        "placement_form": PlacementForm(team=campaign.team) if editor else None,
        **scan_summary(campaign.placements.all(), names),
    }
    return render(request, "campaigns/campaign_detail.html", ctx)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    form = CampaignForm(request.POST or None, instance=campaign)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Campaign saved.")
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": campaign},
                  status=400 if form.errors else 200)


def archive_requested(request: HttpRequest) -> bool:
    """The archive forms post archived=1 (archive, switch off) or archived=0 (bring back)."""
    return request.POST.get("archived", "1") != "0"


@login_required
@require_POST
def campaign_archive(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Archive a campaign or bring it back. Pages never delete one: its printed codes must keep working."""
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    campaign.set_archived(archive_requested(request))
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
    form = PlacementForm(request.POST or None, instance=Placement(campaign=campaign), team=campaign.team)
    if request.method == "POST" and form.is_valid():
        placement = form.save()
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
    just_this = Placement.objects.filter(pk=placement.pk)
    counted = stats.with_scan_counts(just_this).get()
    ctx = {
        "placement": placement,
        "campaign": placement.campaign,
        "short_url": placement.short_url(request),
        "artwork_elsewhere": placement.artwork is not None and not carries_short_link(placement.artwork.job.content,
                                                                                       placement),
        "total_scans": counted.total_scans,
        "recent_scans": counted.recent_scans,
        "can_edit": can_edit(request.user, placement.campaign.team),
        "print_sizes": [(size, downloads.print_centimetres(size)) for size in downloads.PRINT_SIZES],
        **scan_summary(just_this, {placement.pk: placement.name}),
    }
    return render(request, "campaigns/placement_detail.html", ctx)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def placement_edit(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    require_editor(request.user, placement.campaign.team)
    form = PlacementForm(request.POST or None, instance=placement, team=placement.campaign.team)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Placement saved.")
        return redirect("campaigns:placement", placement_id=placement.pk)
    ctx = {"form": form, "campaign": placement.campaign, "placement": placement}
    return render(request, "campaigns/placement_form.html", ctx, status=400 if form.errors else 200)


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


# CSV export ----------------------------------------------------------------------------------------------

class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def scan_rows(scans: QuerySet[ScanEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # values_list names exactly what leaves: never the client hash, the language or anything else.
    rows = scans.order_by("time", "pk").values_list(
        "time", "placement__name", "placement__slug", "device_class", "os", "browser", "country", "is_bot", "referer"
    )
    for time, name, slug, device, os_family, browser, country, is_bot, referer in rows.iterator(chunk_size=2000):
        yield writer.writerow([time.isoformat(), *map(csv_cell, (name, slug, device, os_family, browser, country)),
                               "true" if is_bot else "false", csv_cell(referer)])


def csv_response(scans: QuerySet[ScanEvent], name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(scan_rows(scans), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slugify(name) or "scans"}-scans.csv"'
    return response


@login_required
@require_safe
def campaign_scans_csv(request: HttpRequest, campaign_id: int) -> StreamingHttpResponse:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user), pk=campaign_id)
    return csv_response(ScanEvent.objects.filter(placement__campaign=campaign), campaign.name)


@login_required
@require_safe
def placement_scans_csv(request: HttpRequest, placement_id: int) -> StreamingHttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    return csv_response(placement.scans.all(), f"{placement.campaign.name}-{placement.name}")
