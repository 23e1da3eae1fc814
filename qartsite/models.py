"""Accounts: teams and their members. Everything a marketing team makes belongs to one team.

Roles: owners manage members; editors create and change campaigns, placements and generations; viewers
only read. `Team.for_user(user)` and `Membership.role_of(user, team)` are the one place access is decided.
"""

from __future__ import annotations

import secrets
import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.deconstruct import deconstructible
from knox.models import AuthToken

from generator.core.codes.echoes import breaks_a_line, echo

# Names in the zone database that are no place: this machine's own zone, and a placeholder of the database's builders.
NOT_PLACES = frozenset({"localtime", "Factory"})

@cache
def time_zone_names() -> frozenset[str]:
    """The IANA zone names this machine knows (read from disk once: it walks the zone database), places only."""
    return frozenset(zoneinfo.available_timezones()) - NOT_PLACES


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The time zone of that name; UTC if this machine's zone database does not know it."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def validate_time_zone(name: str) -> None:
    if name not in time_zone_names():
        # Shortened (`echo`): 10,000 characters came back whole
        raise ValidationError(f"“{echo(name)}” is not a time zone name, like Europe/Paris or America/New_York.")


@deconstructible
class OneLine:
    """A validator: `what` ("A campaign's name") is one line of text as pages, CSV files and e-mails show it: no line
    breaks, tabs, control characters or characters that reorder the text around them."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, value: str) -> None:
        if any(breaks_a_line(char) for char in value):
            raise ValidationError(f"{self.what} is one line of text: no line breaks, tabs or control characters.",
                                  code="one_line")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OneLine) and other.what == self.what


def validate_team_name(name: str) -> None:
    """A team's name is shown in pages and sent in e-mail subjects: one line of text, by the rule every other name
    follows (`OneLine`). Its own rule refused every format character, so "Design 👩‍🎨" (a joiner inside the emoji)
    or a Persian name (a non-joiner inside words) was refused as a team's name and taken as a campaign's."""
    if not name.strip():
        raise ValidationError("Give the team a name.")
    OneLine("A team's name")(name)


class Team(models.Model):
    # Retention below this would leave the drainer unable to tell a late scan's visitor from a new one (it looks
    # at the day's stored scans), and people little time to export.
    MIN_RETENTION_DAYS = 30
    MAX_RETENTION_DAYS = 3660

    name = models.CharField(max_length=120, validators=[validate_team_name])
    created = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone],
        help_text="Dashboards count days in this zone (scans after midnight here belong to the next day).")
    scan_retention_days = models.PositiveIntegerField(
        null=True, blank=True,
        validators=[MinValueValidator(MIN_RETENTION_DAYS), MaxValueValidator(MAX_RETENTION_DAYS)],
        verbose_name="keep raw scans for (days)",
        help_text="Single scan events older than this are deleted each day; the daily counts on the dashboards "
                  "are kept. Empty: keep them all.")
    # Off by default: Google's Pixel Camera app, and Android scanner apps that pass a link on as it is, open no browser
    # for "HTTPS://" (`campaigns.links.code_link`); iPhones' camera with Safari does.
    capital_scheme = models.BooleanField(
        default=False, verbose_name="codes' links start HTTPS:// in capitals",
        help_text="Often makes a code one size smaller (fewer, larger squares) than https://, but Google's Pixel "
                  "Camera app and some scanner apps on Android do not open such a link. Codes made before a change "
                  "keep working.")
    # The zone the dashboards' daily counts were counted in: while it differs from time_zone, the worker's
    # maintenance recounts them (`campaigns.rollup_rebuilds.recount_team`), and every figure (pages, API, CSV,
    # shared report) and the drainer keep to this zone's days, so no page shows days of one zone over counts of
    # another; the recount sets it to time_zone in the transaction that commits the recounted rows.
    counted_time_zone = models.CharField(max_length=64, default="UTC", editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # counted_time_zone is written only by what recounts the figures (`campaigns.rollup_rebuilds`), in the
        # transaction that commits them: a team read before a recount committed and saved after it (the settings
        # form) wrote the old zone back over rows counted in the new one.
        if self._state.adding:
            self.counted_time_zone = self.time_zone  # nothing counted yet
        elif kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [field.name for field in self._meta.concrete_fields
                                       if not field.primary_key and field.name != "counted_time_zone"]
        super().save(*args, **kwargs)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The zone the team chose: destination rules' dates and the settings read it."""
        return zone_named(self.time_zone)

    @property
    def counted_zone(self) -> zoneinfo.ZoneInfo:
        """The zone of the days the figures are counted in (`counted_time_zone`): every figure's days are its."""
        return zone_named(self.counted_time_zone)

    @property
    def recounting(self) -> bool:
        """The time zone changed and the figures still count days in the old one until the recount commits."""
        return self.counted_time_zone != self.time_zone

    @classmethod
    def for_user(cls, user) -> models.QuerySet[Team]:
        """Teams the user belongs to (none for anonymous users)."""
        if not user.is_authenticated:
            return cls.objects.none()
        return cls.objects.filter(memberships__user=user)


def named(queryset: models.QuerySet) -> models.QuerySet:
    """`queryset` with the relations its objects' names read joined in (a model's `str_related`): a select box or a
    filter names thousands of them, one query each otherwise."""
    related = getattr(queryset.model, "str_related", ())
    return queryset.select_related(*related) if related else queryset  # a bare select_related() follows every key


class TeamOwnedQuerySet(models.QuerySet):
    """`Model.objects.for_user(user)`: the objects of the user's teams, for every team-owned model.

    The model names the path(s) from itself to its team in `team_paths`. An object reachable by several paths
    (a human scan label: through its session or its candidate) is the user's when any of them leads to one
    of the user's teams.
    """

    def for_user(self, user) -> TeamOwnedQuerySet:
        return self.in_teams(Team.for_user(user))

    def in_teams(self, teams: models.QuerySet[Team]) -> TeamOwnedQuerySet:
        """The objects that belong to one of `teams`."""
        paths = self.model.team_paths
        condition = Q()
        for path in paths:
            condition |= Q(**{f"{path}__in": teams})
        scoped = self.filter(condition)
        return scoped.distinct() if len(paths) > 1 else scoped


class Membership(models.Model):
    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    class Role(models.TextChoices):
        OWNER = "owner"
        EDITOR = "editor"
        VIEWER = "viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.EDITOR)
    joined = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_edit(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.EDITOR)

    @classmethod
    def role_of(cls, user, team: Team) -> str | None:
        if not user.is_authenticated:
            return None
        return cls.objects.filter(user=user, team=team).values_list("role", flat=True).first()


def invitation_token() -> str:
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """Sign-up is by invitation: an owner invites an address; the link lets that person join the team."""

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=8, choices=Membership.Role.choices, default=Membership.Role.EDITOR)
    token = models.CharField(max_length=64, unique=True, default=invitation_token)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    created = models.DateTimeField(auto_now_add=True)
    accepted = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.email} to {self.team}"


class APIToken(AuthToken):
    """Knox's API token as the admin shows it: by its prefix and user. Knox's own name for a token is its hash,
    which would read like the token in breadcrumbs, confirmations and the admin's history."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.token_key}… of {self.user}"


class TokenLabel(models.Model):
    """The name given to an API token (`manage.py qart_token USER --name LABEL`), for `--list` and the admin.

    Knox's token row holds no name of its own; this one goes when its token is revoked.
    """

    token = models.OneToOneField("knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="label")
    name = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def name_of(token) -> str:
        """The name of `token` (a knox AuthToken), or "" when it was given none."""
        label = getattr(token, "label", None)  # a missing one-to-one row raises an AttributeError
        return label.name if label else ""
