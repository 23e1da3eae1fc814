"""Dashboard pages of campaigns: the list with the team's overview, a campaign's page, its forms and archiving, and
reverting a destination change; and what the other dashboard pages share (`chosen_range`, `valid_and_saved`,
`archive_requested`). A placement's pages are `placement_views`, its code and print files `print_views`, the scans'
CSV exports `scan_export_views`.

Access: every object comes through `.for_user(request.user)` and `get_for_user_or_404` (another team's
object answers 404), and every change goes through `require_editor` (a viewer's POST answers 403). Nothing is
deleted here: a campaign is archived and a placement switched off, and their printed codes keep working.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import dashboard, history, names, retention, scan_backlog, stats
from campaigns.forms import CampaignForm, NewCampaignForm, PlacementForm
from campaigns.models import Campaign, DestinationChange, PlacementAlert, locked_copy
from qartsite.access import asked_team, can_edit, cannot_create, editable_teams, get_for_user_or_404, require_editor
from qartsite.models import Team
from qartsite.responses import not_found

TOP_PLACEMENTS = 5


# Helpers -------------------------------------------------------------------------------------------------

def chosen_range(request: HttpRequest, team: Team, scope: stats.Scope,
                 keep: tuple[str, ...] = ("archived", "team")) -> tuple[stats.DateRange, dict]:
    """The date range the page asks for and the picker's context, whose links keep the page's parameters named in
    `keep`; a range that cannot be read falls back to the default one, with the reason shown above the figures (the
    page then answers 400)."""
    kept = {name: request.GET[name] for name in keep if request.GET.get(name)}
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
    # Read from the team's own rows: asked_team is one of the user's teams, whose campaigns are all theirs.
    days, picker = chosen_range(request, team, stats.TeamCampaigns.of(team))
    figures = {}
    for one in {campaign.team for campaign in listed}:
        team_days = None if days.key == "lifetime" else stats.parse_range(days.query(), stats.local_today(one), None)
        figures.update(stats.campaign_figures(mine.filter(team=one, archived=archived), team_days))
    overview = stats.TeamCampaigns.of(team, archived)  # the campaigns listed above it
    editable = editable_teams(request.user)
    backlog = scan_backlog.backlog()
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
        "backlog_note": backlog.note(team.counted_zone),  # the overview's totals lag as the pages' do
        # Never scanned: one line saying what to do next instead of empty charts (the tiles stay)
        "nothing_scanned": dashboard.never_scanned(stats.scans_ever(overview), backlog),
        "overview_listed": any(campaign.team_id == team.pk for campaign in listed),
        "can_edit": can_edit(request.user, team),
        **picker,
        **dashboard.scan_cards(overview, days, team),
    }
    if len({campaign.team.counted_time_zone for campaign in listed} | {team.counted_time_zone}) > 1:
        # Each row counts its days in its own team's zone: the range's label named the overview team's alone.
        ctx["time_zone"] = f"each team's own time zone ({team.name}: {team.counted_time_zone})"
    return render(request, "campaigns/campaign_list.html", ctx, status=400 if picker["range_error"] else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    teams = editable_teams(request.user)
    if not teams.exists():
        raise PermissionDenied(cannot_create(request.user))
    # Bound on every POST: an empty one (a script's JSON body, which fills no request.POST) was the blank form, 200
    form = NewCampaignForm(request.POST if request.method == "POST" else None, teams=teams,
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
    days, picker = chosen_range(request, campaign.team, whole, keep=("q",))  # the placements found stay found
    listed = list(placements.select_related("artwork"))
    figures = stats.placement_figures(placements, days, trends=False)
    rows = dashboard.comparison(listed, figures, {placement.pk: placement.short_url(request) for placement in listed})
    asked = request.GET.get("q", "").strip()
    shown = dashboard.comparison_page(dashboard.matching(rows, asked), request.GET.get("page"))
    stats.add_trends(figures, placements.filter(pk__in=[row.placement.pk for row in shown["rows"]]), days)
    editor = can_edit(request.user, campaign.team)
    alerts = PlacementAlert.objects.filter(placement__campaign=campaign, dismissed_at__isnull=True)
    shown_alerts = list(alerts.select_related("placement")[:dashboard.ALERTS_SHOWN])
    backlog = scan_backlog.backlog()
    ctx = {
        "campaign": campaign,
        **shown,
        "placements_total": len(rows),
        # A campaign of 200 placements showed them 25 a page, most scanned first: finding one by name took paging.
        "placement_query": asked,
        "placement_search": asked or len(rows) > dashboard.COMPARISON_PAGE,
        "range_only_query": urlencode(days.query()),
        "top": dashboard.bars([(row.placement.name, row.figures.scans) for row in rows if row.figures.scans]
                              [:TOP_PLACEMENTS]),
        "can_edit": editor,
        "placement_form": PlacementForm(team=campaign.team) if editor and not campaign.archived else None,
        "alerts": shown_alerts,
        "alerts_more": alerts.count() - len(shown_alerts) if len(shown_alerts) == dashboard.ALERTS_SHOWN else 0,
        "destination_changes": history.latest(campaign),
        "backlog_note": backlog.note(campaign.team.counted_zone),
        "export_note": retention.export_gap(campaign.team, placements, days),
        "nothing_scanned": dashboard.never_scanned(stats.scans_ever(whole), backlog),
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
