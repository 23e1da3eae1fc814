"""The scans' CSV exports, of a campaign and of a placement: streamed, of the date range the page shows, in the
team's time zone; the API's export is the same (`campaigns.bulk_api`). Every team member may download them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, tzinfo

from django.contrib.auth.decorators import login_required
from django.db.models import Min, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from campaigns import dashboard, retention, rollups, stats
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.placement_views import placements_for
from qartsite.access import get_for_user_or_404
from qartsite.models import Team
from qartsite.responses import csv_download, plain_400
from qartsite.spreadsheets import csv_cell

# Integrators parse these by position too: new columns go at the end. `local_time` is `time` in the team's zone,
# so a spreadsheet's days are the pages' days.
CSV_COLUMNS = ("time", "placement", "slug", "device_class", "os", "browser", "country", "language", "visitor",
               "is_bot", "referer", "rule", "is_repeat", "local_time")
EXPORT_NOTE_HEADER = "X-Qart-Export-Note"  # a header, not a comment line: CSV readers would take that for a row


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
        return plain_400(str(exc))
    if days.key == "lifetime" and (first := first_stored_day(placements, team.counted_zone)) and first < days.start:
        # The pages' lifetime starts on the first day people scanned (the rollups count no bot); every stored scan
        # includes the link previews before it, and those of a placement only bots ever fetched.
        days = stats.DateRange(first, days.end, "lifetime")
    zone = team.counted_zone  # the days of the pages' figures, the old zone's while a change of zone is recounted
    start, end = rollups.day_bounds(days.start, zone)[0], rollups.day_bounds(days.end, zone)[1]
    # The name's first 60 characters (`csv_download`): long campaign and placement names made names of ~220.
    response = csv_download(request, scan_rows(scans.filter(time__gte=start, time__lt=end), zone), name,
                            f"scans-{days.start}-to-{days.end}.csv")
    if note := retention.export_gap(team, placements, days):
        response[EXPORT_NOTE_HEADER] = note
    return response


def first_stored_day(placements: QuerySet[Placement], zone: tzinfo) -> date | None:
    """The local day of the first stored scan of `placements`, bots' included (None when there is none): one index
    lookup per placement ((placement, time)), not a pass over the campaign's scans."""
    firsts = placements.annotate(first=Subquery(
        ScanEvent.objects.filter(placement=OuterRef("pk")).order_by("time").values("time")[:1]))
    first = firsts.aggregate(earliest=Min("first"))["earliest"]
    return first.astimezone(zone).date() if first else None


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
