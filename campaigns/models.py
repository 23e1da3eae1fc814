"""Campaigns, their placements (each printed code, with its own short link) and scan events."""

from __future__ import annotations

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
    archived = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)


    class Meta:
        ordering = ["archived", "-created"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Checked on every save, not only in forms: the API, the admin and scripts all go through here.
        links.validate_destination(self.destination)
        if not self.utm_campaign:
            self.utm_campaign = slugify(self.name)[:100]
        super().save(*args, **kwargs)


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
    active = models.BooleanField(default=True)
    slug = models.CharField(max_length=16, unique=True, editable=False)
    destination_override = models.URLField(max_length=2000, blank=True, validators=[links.validate_destination])
    artwork = models.ForeignKey("generator.Candidate", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="placements")
    created = models.DateTimeField(auto_now_add=True)


    class Meta:
        ordering = ["campaign", "name"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.name}"

    @property
    def destination(self) -> str:
        return self.destination_override or self.campaign.destination

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
