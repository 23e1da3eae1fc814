"""Campaigns, their placements (each printed code, with its own short link), and every model of the app.

Printed codes cannot be re-printed, so nothing here is deleted in the ordinary way: a campaign is archived and a
placement switched off (pages, API and admin alike; only a superuser's explicit admin delete removes one), and
their codes keep redirecting and counting. Where a code leads: `Placement.destination`, and per scan its rules
(`campaigns.rules`: device, schedule, A/B split).

Django loads the app's models from here, and other modules import every one of them from here; those of scans
(`scan_models`: scan events, daily rollups) and of webhooks (`webhook_models`) are defined in their own modules.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from campaigns import links
from campaigns import rules as destination_rules
from generator.core.codes.echoes import echo
from qartsite.models import OneLine, Team, TeamOwnedQuerySet
from qartsite.site import absolute_url
from qartsite.sql import lock_rows

RULES_HELP = ('A JSON object, any of: "ios", "android", "other" (URLs), "starts_at", "ends_at" (ISO 8601 times; '
              'without an offset, UTC), "split" ([{"url": ..., "weight": 1-1000}, ...], 2 to 10). Precedence: '
              'campaigns.rules.')


# A placement's figures, each with one message whatever limit a value breaks: the model's validators say it to the
# admin, and `limit_errors` gives the same words to the page's form (and so the CSV import) and to the API, whose
# fields would otherwise speak first with their own ("Ensure this value is less than or equal to 90.").
LATITUDE_RANGE = "Latitude must be between -90 and 90 degrees."
LONGITUDE_RANGE = "Longitude must be between -180 and 180 degrees."
MAX_PRINTED_QUANTITY = 100_000_000  # beyond any real print run; SQLite bounds nothing, so the model must
PRINTED_QUANTITY_RANGE = (f"The printed quantity must be a whole number from 0 to {MAX_PRINTED_QUANTITY:,} "
                          "(one hundred million printed pieces).")
LIMITED_FIELDS = {"latitude": LATITUDE_RANGE, "longitude": LONGITUDE_RANGE,
                  "printed_quantity": PRINTED_QUANTITY_RANGE}


def within(low: float, high: float, message: str) -> list:
    """Validators refusing values outside [low, high], both with `message`."""
    return [MinValueValidator(low, message), MaxValueValidator(high, message)]


def limit_errors(name: str) -> dict[str, str]:
    """Error messages for a form or serializer field of `LIMITED_FIELDS`: its one message for every way a number
    can be out of range (below, above, or more whole digits than the column holds, which is above too)."""
    message = LIMITED_FIELDS[name]
    return {"min_value": message, "max_value": message, "max_whole_digits": message}


def clean_rules_of(instance) -> dict:
    """Checked on every save, like destinations: the stored form of `instance.rules` (ValidationError under rules)."""
    try:
        return destination_rules.clean_rules(instance.rules)
    except ValidationError as exc:
        raise ValidationError({"rules": exc.messages}) from None


ENDS_BEFORE_START = "The campaign can't end before it starts."
ARCHIVED_NO_PLACEMENTS = "This campaign is archived: bring it back before adding placements to it."


class Campaign(models.Model):
    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200, validators=[OneLine("A campaign's name")])
    destination = models.URLField(max_length=2000, validators=[links.validate_destination],
                                  help_text="Where the codes lead unless a placement overrides it.")
    starts_on = models.DateField(null=True, blank=True, validators=[destination_rules.validate_day],
                                 help_text="Its first day, in the team's time zone.")
    ends_on = models.DateField(null=True, blank=True, validators=[destination_rules.validate_day],
                               help_text="Its last day, in the team's time zone.")
    dates_route = models.BooleanField(
        "Route by its dates", default=True,
        help_text="On: before its first day and after its last, its codes lead to the fallback address (unless its "
                  "destination rules set dates of their own). Off: its dates do not change where its codes lead.")
    utm_source = models.CharField(max_length=100, default="qr", blank=True, validators=[OneLine("A UTM value")])
    utm_medium = models.CharField(max_length=100, default="print", blank=True, validators=[OneLine("A UTM value")])
    utm_campaign = models.CharField(max_length=100, blank=True, validators=[OneLine("A UTM value")],
                                    help_text="Defaults to the campaign's name.")
    fallback_url = models.URLField(
        max_length=2000, blank=True, validators=[links.validate_destination],
        help_text="Where the codes lead once the campaign is archived or a placement is switched off; "
                  "empty: the destination. Printed codes never answer 404.",
    )
    archived = models.BooleanField(default=False, help_text="Hidden from the campaign list; its codes still "
                                                            "redirect (to the fallback) and still count.")
    rules = models.JSONField(default=dict, blank=True, validators=[destination_rules.validate_rules],
                             help_text=f"Its placements' rules, where they set none of a kind. {RULES_HELP}")
    created = models.DateTimeField(auto_now_add=True)


    class Meta:
        ordering = ["archived", "-created"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Checked on every save, not only in forms: the API, the admin and scripts all go through here.
        links.validate_destination(self.destination)
        if self.fallback_url:
            try:
                links.validate_destination(self.fallback_url)
            except ValidationError as exc:
                raise ValidationError({"fallback_url": exc.messages}) from None
        self.rules = clean_rules_of(self)
        if not self.utm_campaign:
            self.utm_campaign = slugify(self.name)[:100]
        # One transaction: archiving moves its rows between its team's sets (`team_rollups.campaign_saving`, on
        # pre_save), which must commit with the new state or not at all.
        with transaction.atomic():
            super().save(*args, **kwargs)

    @property
    def rules_in_words(self) -> str:
        return destination_rules.describe(self.rules)

    @property
    def routing_days(self) -> tuple[date | None, date | None]:
        """Its first and last days where they decide where its codes lead: when it routes by its dates, each day
        whose end of the schedule its rules leave open (None otherwise)."""
        if not self.dates_route:
            return None, None
        rules = self.rules or {}
        return (None if "starts_at" in rules else self.starts_on), (None if "ends_at" in rules else self.ends_on)

    @property
    def effective_rules(self) -> dict:
        """Its rules, with its routing days filling the ends of the schedule they leave open
        (`campaigns.rules.with_dates`)."""
        return destination_rules.with_dates(self.rules, *self.routing_days, self.team.zone)

    @property
    def routed_by_dates(self) -> bool:
        """Whether one of its dates decides where its codes lead (`routing_days`)."""
        return any(day is not None for day in self.routing_days)

    @property
    def dates_now(self) -> str:
        """Where today (in its team's time zone) falls against its routing days: "before" the first, "after" the
        last, else ""."""
        first, last = self.routing_days
        today = timezone.localdate(timezone=self.team.zone)
        if first is not None and today < first:
            return "before"
        if last is not None and today > last:
            return "after"
        return ""

    def clean(self) -> None:
        super().clean()
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": ENDS_BEFORE_START})

    @property
    def fallback_destination(self) -> str:
        """Where its codes lead once archived, and those of its placements switched off."""
        return self.fallback_url or self.destination

    def set_archived(self, archived: bool) -> None:
        """Archive the campaign (what deleting it does everywhere but a superuser's admin), or bring it back."""
        self.archived = archived
        self.save(update_fields=["archived"])


class Placement(models.Model):
    team_paths = ('campaign__team',)  # see TeamOwnedQuerySet
    str_related = ("campaign",)  # what __str__ reads (qartsite.models.named)
    objects = TeamOwnedQuerySet.as_manager()

    class Kind(models.TextChoices):
        POSTER = "poster"
        FLYER = "flyer"
        PACKAGING = "packaging"
        BILLBOARD = "billboard"
        SCREEN = "screen"
        OTHER = "other"

    # Where people typically stand to scan each kind, in metres: hand-held print is read at arm's length, a poster
    # from across a platform, a billboard from the pavement. The preflight's default when none is set.
    SCAN_DISTANCES = {Kind.FLYER: 0.3, Kind.PACKAGING: 0.3, Kind.POSTER: 1.5, Kind.SCREEN: 2.0, Kind.BILLBOARD: 10.0,
                      Kind.OTHER: 1.0}

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="placements")
    name = models.CharField(max_length=200, validators=[OneLine("A placement's name")])
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.POSTER)
    location = models.CharField(max_length=300, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True,
                                   validators=within(-90, 90, LATITUDE_RANGE))
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True,
                                    validators=within(-180, 180, LONGITUDE_RANGE))
    printed_quantity = models.PositiveIntegerField(null=True, blank=True,
                                                   validators=within(0, MAX_PRINTED_QUANTITY, PRINTED_QUANTITY_RANGE))
    # The years a campaign's dates take (`rules.YEARS`), on the page, in the API and in the admin: any year from 1 to
    # 9999 was stored, and "0026-05-01" typed for 2026 put the poster up in the year 26.
    deployed_on = models.DateField(null=True, blank=True, validators=[destination_rules.validate_day],
                                   help_text=f"The day it went up (a year from {destination_rules.YEARS[0]} to "
                                             f"{destination_rules.YEARS[1]}).")
    notes = models.TextField(blank=True, max_length=10_000)  # forms and the API refuse more
    active = models.BooleanField(default=True, help_text="Off: the code leads to the campaign's fallback and still "
                                                          "counts (what deleting a placement does).")
    slug = models.CharField(max_length=16, unique=True, editable=False)
    destination_override = models.URLField(max_length=2000, blank=True, validators=[links.validate_destination])
    rules = models.JSONField(default=dict, blank=True, validators=[destination_rules.validate_rules],
                             help_text=RULES_HELP)
    # The artwork is printed: deleting its candidate or job is refused (the admin names the placements). RESTRICT,
    # not PROTECT: deleting a whole team, whose placements go in the same operation, still works.
    artwork = models.ForeignKey("generator.Candidate", on_delete=models.RESTRICT, null=True, blank=True,
                                related_name="placements")
    # Artwork that fails the scan check is printed only on someone's word: who, when and why (`campaigns.artwork`).
    # Cleared when the artwork changes to one that passes.
    print_anyway_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+", help_text="Who chose artwork that fails the scan check")
    print_anyway_at = models.DateTimeField(null=True, blank=True)
    print_anyway_reason = models.TextField(blank=True, max_length=1000,
                                           help_text="Why artwork that fails the scan check is printed anyway")
    scan_distance_m = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.05), MaxValueValidator(100.0)],
        verbose_name="scanning distance (m)", help_text="How far people stand when they scan it; empty: the kind's "
        "usual distance (flyer and packaging 0.3 m, poster 1.5 m, screen 2 m, billboard 10 m, other 1 m).")
    printed_width_cm = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(500.0)],
        verbose_name="printed width (cm)", help_text="The code's printed side, quiet zone included.")
    created = models.DateTimeField(auto_now_add=True)


    class Meta:
        ordering = ["campaign", "name"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.name}"

    @property
    def scanning_distance(self) -> float:
        """Metres people scan from: the placement's own, else its kind's usual distance."""
        return self.scan_distance_m or self.SCAN_DISTANCES.get(self.kind, self.SCAN_DISTANCES[self.Kind.OTHER])

    @property
    def is_live(self) -> bool:
        return self.active and not self.campaign.archived

    @property
    def destination(self) -> str:
        """Where the code leads (before UTM tagging); a code that exists never answers 404.

        A live placement: its override, else the campaign's destination. An archived campaign's placement or one
        switched off: the campaign's fallback, else its destination (not the override: a placement's own offer is
        what ended).
        """
        campaign = self.campaign
        if self.is_live:
            return self.destination_override or campaign.destination
        return campaign.fallback_destination

    def short_url(self, request) -> str:
        """The absolute short link the printed code carries (`qartsite.site`: SITE_ROOT, else this request's host),
        in capitals where QR's alphanumeric mode holds it (`links.code_link`, its scheme as the team chose): what
        codes are made of and checked against, and what the pages, API and exports show as this placement's link."""
        return links.code_link(absolute_url(request, reverse("short_link", args=[self.slug])),
                               self.campaign.team.capital_scheme)

    def tagged(self, url: str) -> str:
        """`url` with this placement's UTM parameters."""
        campaign = self.campaign
        return links.with_utm(url, {
            "utm_source": campaign.utm_source,
            "utm_medium": campaign.utm_medium,
            "utm_campaign": campaign.utm_campaign,
            "utm_content": slugify(self.name)[:100],
        })

    def redirect_url(self) -> str:
        """The stored destination with this placement's UTM parameters."""
        return self.tagged(self.destination)

    @property
    def effective_rules(self) -> dict:
        """Its rules, with its campaign's (its dates included) for each kind it does not set
        (`campaigns.rules.effective`)."""
        return destination_rules.effective(self.campaign.effective_rules, self.rules)

    @property
    def rules_in_words(self) -> str:
        """The rules its scans follow, in words ("" for none)."""
        return destination_rules.describe(self.effective_rules)

    def link_rules(self) -> destination_rules.LinkRules | None:
        """The compiled rules the redirect chooses from (`campaigns.rules`); None for a placement that is not live
        (it leads to the fallback whatever the rules) or has none."""
        if not self.is_live:
            return None
        fallback = self.tagged(self.campaign.fallback_destination)
        return destination_rules.compile_rules(self.effective_rules, self.tagged, fallback)

    def set_active(self, active: bool) -> None:
        """Switch the placement off (what deleting it does everywhere but a superuser's admin), or on again."""
        self.active = active
        self.save(update_fields=["active"])

    def clean(self) -> None:
        super().clean()
        if self.refused_as_new():
            raise ValidationError(ARCHIVED_NO_PLACEMENTS)

    def refused_as_new(self) -> bool:
        """A new placement of an archived campaign: refused everywhere (pages, API, CSV import, admin, scripts)."""
        return self._state.adding and self.campaign_id is not None and self.campaign.archived

    def save(self, *args, **kwargs) -> None:
        if self.refused_as_new():
            raise ValidationError({"campaign": [ARCHIVED_NO_PLACEMENTS]})
        if self.destination_override:
            links.validate_destination(self.destination_override)
        self.rules = clean_rules_of(self)
        if self.slug:
            return super().save(*args, **kwargs)
        # A fresh random slug; on the (astronomically rare) collision, draw again.
        for _ in range(5):
            self.slug = links.new_slug()
            try:
                with transaction.atomic():
                    return super().save(*args, **kwargs)
            except IntegrityError:
                if Placement.objects.filter(slug=self.slug).exists():
                    continue
                raise
        raise IntegrityError("could not draw a unique slug")


def locked_copy(instance: models.Model, moving_to: int | None = None) -> models.Model | None:
    """`instance` read again as stored, its row locked until the caller's transaction ends, so that two changes of
    it at once are made one after the other, each on the other's result; None when it was deleted meanwhile. A save
    writes back every column as the request read it: two edits at once lost one of them, and an edit beside an
    archive brought the campaign back.

    Locks are taken in one order everywhere: a campaign's team, then campaigns by id (a placement's, and the one it
    is `moving_to` (an id), whose name check locks it too: `campaigns.names`), then the row, so two changes never
    wait for each other in a circle. FOR NO KEY UPDATE: inserts that only point at a row are not held up, though the
    drainer, which locks a batch's placements, waits for an edit of one of them to commit. SQLite's write
    transactions run one at a time anyway.
    """
    if isinstance(instance, Campaign):
        lock_rows(Team, [instance.team_id])
    elif isinstance(instance, Placement):
        lock_rows(Campaign, [instance.campaign_id, moving_to])
    return type(instance).objects.select_for_update(no_key=True).filter(pk=instance.pk).first()


# The models of scans and of webhooks, defined by subject in their own modules: Django registers the app's models as
# it imports this one, and every caller imports them from here. Imported here, between Placement and PlacementAlert,
# so that they register in the order they always had: a model's reverse relations, and so the order of a cascade's
# deletes, follow it.
from campaigns.scan_models import CampaignRollup, ScanEvent, ScanRollup, TeamRollup  # noqa: E402, F401
from campaigns.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookOutbox  # noqa: E402, F401


class PlacementAlert(models.Model):
    """A placement whose scans stopped or fell sharply against its own baseline (`campaigns.alerts`), open until an
    editor dismisses it."""

    team_paths = ('placement__campaign__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    class Kind(models.TextChoices):
        STOPPED = "stopped", "scans stopped"
        DROPPED = "dropped", "scans fell sharply"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    day = models.DateField(help_text="The team's day the check ran for")
    message = models.CharField(max_length=300)
    created = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.placement_id} {self.kind} on {self.day}"


class ReportShare(models.Model):
    """A read-only link to a campaign's report for people without an account: revocable and expiring. Only the
    token's SHA-256 is stored; the link is shown once."""

    team_paths = ('campaign__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="shares")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    label = models.CharField(max_length=100, blank=True)
    expires = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"share of {self.campaign_id} until {self.expires:%Y-%m-%d}"


class DestinationChange(models.Model):
    """One change of where printed codes lead: a campaign's destination, fallback or rules, or a placement's
    override or rules; who made it, when, and the value before and after (`campaigns.history`; rules as compact
    JSON, `campaigns.rules.as_text`). Editors revert one from the campaign and placement pages, which records the
    revert as a change too."""

    team_paths = ('campaign__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    class Field(models.TextChoices):
        DESTINATION = "destination", "destination"
        FALLBACK_URL = "fallback_url", "fallback address"
        DESTINATION_OVERRIDE = "destination_override", "placement's own destination"
        RULES = "rules", "set of destination rules"
        STARTS_ON = "starts_on", "first day"
        ENDS_ON = "ends_on", "last day"
        DATES_ROUTE = "dates_route", "routing by its dates"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="destination_changes")
    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="destination_changes", help_text="Empty: a campaign's field")
    field = models.CharField(max_length=24, choices=Field.choices)
    before = models.TextField(blank=True)  # text: rules with several addresses can exceed one URL's 2,000
    after = models.TextField(blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    reverts = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                help_text="The change this one undid, when it is a revert")

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.field} of {self.placement_id or self.campaign_id}: “{echo(self.before)}” → “{echo(self.after)}”"

    def shown(self, value: str) -> str:
        """`before` or `after` for people: rules in words (`campaigns.rules.describe`), addresses as they are."""
        if self.field == self.Field.RULES:
            return destination_rules.describe(destination_rules.from_text(value))
        if self.field in (self.Field.STARTS_ON, self.Field.ENDS_ON) and value:
            day = date.fromisoformat(value)
            return f"{day.day} {day:%b %Y}"  # as the campaign page writes its dates
        return value

    @property
    def before_shown(self) -> str:
        return self.shown(self.before)

    @property
    def after_shown(self) -> str:
        return self.shown(self.after)
