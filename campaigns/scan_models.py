"""What is stored of scans: each scan event (`ScanEvent`) and the daily rollups every dashboard figure is summed
from (`ScanRollup` per placement, `CampaignRollup` per campaign, `TeamRollup` per team).

Models of the campaigns app, kept apart from campaigns and placements by subject: other modules import them from
`campaigns.models`, which is where Django loads the app's models from. Their placement and campaign are named by
label ("campaigns.Placement") so that this module need not import `campaigns.models`, which imports it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from qartsite.models import TeamOwnedQuerySet


class ScanEvent(models.Model):
    """One request to a placement's short link. Nothing here identifies a person.

    Written by the drainer (`campaigns.drainer`), not by the request: `time` is the request's time and `event_id`
    the id the request gave the event, so an event delivered twice is stored once.
    """

    team_paths = ('placement__campaign__team',)  # see TeamOwnedQuerySet
    str_related = ("placement",)  # what __str__ reads (qartsite.models.named)
    objects = TeamOwnedQuerySet.as_manager()

    placement = models.ForeignKey("campaigns.Placement", on_delete=models.CASCADE, related_name="scans")
    event_id = models.UUIDField(unique=True, null=True, blank=True, editable=False,
                                help_text="Made by the request; empty for scans stored before the buffer")
    time = models.DateTimeField(default=timezone.now, db_index=True)
    browser = models.CharField(max_length=60, blank=True)
    os = models.CharField(max_length=60, blank=True)
    device_class = models.CharField(max_length=10, blank=True)
    referer = models.CharField(max_length=500, blank=True)
    accept_language = models.CharField(max_length=100, blank=True)
    # Old scans only: a hash of the address under one fixed key followed a visitor across days. New scans carry
    # visitor_key instead and leave this empty.
    client_hash = models.CharField(max_length=16, blank=True, help_text="Old scans only: keyed hash of the address")
    visitor_key = models.CharField(max_length=32, blank=True,
                                   help_text="Keyed hash of address and user agent under a key that changes daily")
    country = models.CharField(max_length=2, blank=True)
    is_bot = models.BooleanField(default=False)
    is_repeat = models.BooleanField(default=False,
                                    help_text="More than 10 scans of this placement by one visitor in a minute")
    rule = models.CharField(max_length=16, blank=True, help_text=(
        'The destination rule that sent it (campaigns.rules): "ios", "android", "other", "before_start", '
        '"after_end", "ab:<12 hex digits of the split destination\'s SHA-256>" (`rules.variant_rule`; older scans: '
        '"ab:0", ... by position); empty: the destination (or the fallback of a code switched off)'))

    class Meta:
        ordering = ["-time"]
        # The second serves the drainer's repeat check (campaigns.repeats.flag_repeats).
        indexes = [models.Index(fields=["placement", "time"]),
                   models.Index(fields=["placement", "visitor_key", "time"])]

    def __str__(self) -> str:
        return f"{self.placement.slug} at {self.time:%Y-%m-%d %H:%M}"


class DailyCounts(models.Model):
    """What the rollup tables share: one day's scans and visitors, in all or for one value of one dimension. Each
    table adds whose counts they are (a placement's, a campaign's, a team's set)."""

    class Dimension(models.TextChoices):
        TOTAL = "", "all scans"
        HOUR = "hour", "hour of the day (00-23)"
        DEVICE = "device", "device class"
        OS = "os", "operating system"
        BROWSER = "browser", "browser"
        COUNTRY = "country", "country"
        LANGUAGE = "language", "language"
        RULE = "rule", "destination rule"

    day = models.DateField()
    dimension = models.CharField(max_length=8, choices=Dimension.choices, blank=True)
    value = models.CharField(max_length=60, blank=True)
    scans = models.PositiveIntegerField(default=0)
    visitors = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.owner_label()} {self.day} {self.dimension or 'total'}={self.value}: {self.scans}"

    def owner_label(self) -> str:
        raise NotImplementedError


class ScanRollup(DailyCounts):
    """Scans by people of one placement on one day, in all or for one value of one dimension: what every
    dashboard figure is summed from, so a page costs O(placements x days), never O(scans).

    `day` is a day of the zone the team's figures count in (`Team.counted_time_zone`). Kept up to date by the
    drainer as it stores scans (`campaigns.rollups.add`) and kept when retention deletes the scans themselves
    (`campaigns.retention`); rebuilt from the stored scans by `manage.py qart_rollups`. Bots are not counted.

    `visitors` counts the day's distinct visitor keys (which change daily, so a range's unique visitors are the sum
    of its days'); a visitor is counted under the dimension values of their first scan of the day. Hours have no
    visitors column worth reading (0). Destination rules (`ScanEvent.rule`) have rows only for scans a rule sent: the
    main destination's share is the total's less theirs. The key changes at midnight in the team's time zone
    (`campaigns.redirects.visit_of`), so keys and rows share one day; on the day a team changes its time zone, a
    visitor scanning on both sides of the change may count twice.
    """

    team_paths = ('placement__campaign__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    placement = models.ForeignKey("campaigns.Placement", on_delete=models.CASCADE, related_name="rollups")
    first_scan = models.DateTimeField()
    last_scan = models.DateTimeField()

    class Meta:
        # Also an index for one placement's dimension over a range of days (the placement page).
        constraints = [models.UniqueConstraint(fields=["placement", "dimension", "day", "value"],
                                               name="one_rollup_per_placement_dimension_day_value")]
        # The dashboards' index: one dimension over a range of days for a campaign's or a team's thousands of
        # placements, read from the index alone on PostgreSQL (INCLUDE). Without it PostgreSQL read the whole table
        # for every card: 4-8 s for a team's overview at 5.9 M rollups, 0.4 s with it (bench/RESULTS.md).
        indexes = [models.Index(fields=["dimension", "day", "placement"],
                                include=["value", "scans", "visitors", "first_scan", "last_scan"],
                                name="rollups_by_dimension_and_day")]

    def owner_label(self) -> str:
        return str(self.placement_id)


class CampaignRollup(DailyCounts):
    """What a campaign's placements' `ScanRollup` rows add up to, per day, dimension and value: a campaign's or a
    team's figures over a long range read hundreds of rows instead of hundreds of thousands (a lifetime page of a
    campaign with thousands of placements summed 300,000-700,000 placement rows per card: bench/RESULTS.md).

    Kept by the same code as the placements' rows (`campaigns.rollups`): the drainer adds each batch to both, and
    anything that recounts placement rows (a rebuild, a placement moved in the admin) recounts its campaign's rows
    from them (`rollups.refresh_campaigns`); a deleted placement's rows are taken out (`rollups.placement_deleting`).
    Visitors add up as they do on the pages: per placement and day. No first and last scan: those are read per
    placement.
    """

    team_paths = ('campaign__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="rollups")

    class Meta:
        # Also the index for a campaign's dimension over a range of days (every card of a campaign's page).
        constraints = [models.UniqueConstraint(fields=["campaign", "dimension", "day", "value"],
                                               name="one_rollup_per_campaign_dimension_day_value")]
        # A team's overview (the campaign list): one dimension over a range of days for all its campaigns, read from
        # the index alone on PostgreSQL. With only the key above, each card read the whole table: the list took
        # 0.6 s (30 days) and 1.6 s (lifetime) for 300 campaigns with a year of scans (bench/RESULTS.md).
        indexes = [models.Index(fields=["dimension", "day", "campaign"], include=["value", "scans", "visitors"],
                                name="campaign_rollups_by_dim_day")]

    def owner_label(self) -> str:
        return f"campaign {self.campaign_id}"


class TeamRollup(DailyCounts):
    """What a team's campaigns' `CampaignRollup` rows add up to, per day, dimension and value, its archived
    campaigns' apart from the others' (the campaign list shows one or the other): the list's overview sums a few
    hundred of them per card, where a lifetime of 300 campaigns summed every campaign's every day (bench/RESULTS.md).

    Kept with the campaigns' rows (`campaigns.team_rollups`): whatever adds to, recounts or takes out a campaign's
    rows does the same to its team's in the same transaction, and archiving a campaign (or moving it to another
    team) moves its rows between the sets. Visitors add up as they do everywhere: per placement and day.
    """

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, related_name="rollups")
    archived = models.BooleanField(default=False, help_text="The team's archived campaigns' sum, else the others'")

    class Meta:
        # Also the index for the overview's cards: one team's set, one dimension, a range of days.
        constraints = [models.UniqueConstraint(fields=["team", "archived", "dimension", "day", "value"],
                                               name="one_rollup_per_team_dimension_day_value")]

    def owner_label(self) -> str:
        return f"team {self.team_id}"
