"""Campaigns, their placements (each printed code, with its own short link) and scan events.

Printed codes cannot be re-printed, so nothing here is deleted in the ordinary way: a campaign is archived and a
placement switched off (pages, API and admin alike; only a superuser's explicit admin delete removes one), and
their codes keep redirecting and counting. Where a code leads: `Placement.destination`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from campaigns import links
from qartsite.models import Team, TeamOwnedQuerySet
from qartsite.site import absolute_url


class Campaign(models.Model):
    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    destination = models.URLField(max_length=2000, validators=[links.validate_destination],
                                  help_text="Where the codes lead unless a placement overrides it.")
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    utm_source = models.CharField(max_length=100, default="qr", blank=True)
    utm_medium = models.CharField(max_length=100, default="print", blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True, help_text="Defaults to the campaign's name.")
    fallback_url = models.URLField(
        max_length=2000, blank=True, validators=[links.validate_destination],
        help_text="Where the codes lead once the campaign is archived or a placement is switched off; "
                  "empty: the destination. Printed codes never answer 404.",
    )
    archived = models.BooleanField(default=False, help_text="Hidden from the campaign list; its codes still "
                                                            "redirect (to the fallback) and still count.")
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
        if not self.utm_campaign:
            self.utm_campaign = slugify(self.name)[:100]
        super().save(*args, **kwargs)

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
    objects = TeamOwnedQuerySet.as_manager()

    class Kind(models.TextChoices):
        POSTER = "poster"
        FLYER = "flyer"
        PACKAGING = "packaging"
        BILLBOARD = "billboard"
        SCREEN = "screen"
        OTHER = "other"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="placements")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.POSTER)
    location = models.CharField(max_length=300, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    printed_quantity = models.PositiveIntegerField(null=True, blank=True)
    deployed_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    active = models.BooleanField(default=True, help_text="Off: the code leads to the campaign's fallback and still "
                                                          "counts (what deleting a placement does).")
    slug = models.CharField(max_length=16, unique=True, editable=False)
    destination_override = models.URLField(max_length=2000, blank=True, validators=[links.validate_destination])
    # The artwork is printed: deleting its candidate or job is refused (the admin names the placements). RESTRICT,
    # not PROTECT: deleting a whole team, whose placements go in the same operation, still works.
    artwork = models.ForeignKey("generator.Candidate", on_delete=models.RESTRICT, null=True, blank=True,
                                related_name="placements")
    created = models.DateTimeField(auto_now_add=True)


    class Meta:
        ordering = ["campaign", "name"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.name}"

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
        """The absolute short link the printed code carries (`qartsite.site`: SITE_ROOT, else this request's host)."""
        return absolute_url(request, reverse("short_link", args=[self.slug]))

    def redirect_url(self) -> str:
        """The stored destination with this placement's UTM parameters."""
        campaign = self.campaign
        return links.with_utm(self.destination, {
            "utm_source": campaign.utm_source,
            "utm_medium": campaign.utm_medium,
            "utm_campaign": campaign.utm_campaign,
            "utm_content": slugify(self.name)[:100],
        })

    def set_active(self, active: bool) -> None:
        """Switch the placement off (what deleting it does everywhere but a superuser's admin), or on again."""
        self.active = active
        self.save(update_fields=["active"])

    def save(self, *args, **kwargs) -> None:
        if self.destination_override:
            links.validate_destination(self.destination_override)
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


class ScanEvent(models.Model):
    """One request to a placement's short link. Nothing here identifies a person.

    Written by the drainer (`campaigns.drainer`), not by the request: `time` is the request's time and `event_id`
    the id the request gave the event, so an event delivered twice is stored once.
    """

    team_paths = ('placement__campaign__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="scans")
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

    class Meta:
        ordering = ["-time"]
        # The second serves the drainer's repeat check (campaigns.drainer.flag_repeats).
        indexes = [models.Index(fields=["placement", "time"]),
                   models.Index(fields=["placement", "visitor_key", "time"])]

    def __str__(self) -> str:
        return f"{self.placement.slug} at {self.time:%Y-%m-%d %H:%M}"
