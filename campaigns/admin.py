"""Admin for campaigns, placements and scans.

Printed codes cannot be re-printed, so staff never delete a campaign or placement here: they archive a campaign or
switch a placement off (actions, or the `archived` / `active` fields), and the codes keep redirecting, to the
campaign's fallback, and counting. Only a superuser deletes one, on purpose, scans and all.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from campaigns import artwork, history, names, restamps, rollups
from campaigns.forms import SeenVersion, prepare_artwork
from campaigns.models import (
    Campaign,
    DestinationChange,
    Placement,
    PlacementAlert,
    ReportShare,
    ScanEvent,
    ScanRollup,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
    locked_copy,
)
from qartsite import form_fields
from qartsite.access import editable_teams
from qartsite.admin_columns import ClippedColumns
from qartsite.admin_relations import shows_relation
from qartsite.numbers import whole
from qartsite.plurals import counted
from qartsite.scoped_admin import OwnersOnly, SuperusersOnlyFields, TeamScopedAdmin, TeamScopedInline, may_change


class ArchiveInsteadOfDelete:
    """Only superusers delete; the archive actions change only rows of teams where the user edits."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def changeable(self, request, queryset: QuerySet) -> list:
        # A changelist shows the rows of every team the user belongs to, viewers' teams included.
        if request.user.is_superuser:
            return list(queryset)
        return list(queryset.filter(pk__in=self.model.objects.in_teams(self.changing_teams(request.user))
                                    .values("pk")))


class WarnsOfDeadCodes:
    """The delete confirmation of a campaign or a placement (a GET, or the bulk action's first POST) says which printed
    codes stop working, and what to do instead."""

    def get_deleted_objects(self, objs, request):
        found = super().get_deleted_objects(objs, request)
        if not request.POST.get("post"):
            ids = [obj.pk for obj in objs]
            placements = Placement.objects.filter(**{"pk__in" if self.model is Placement else "campaign__in": ids})
            slugs = list(placements.order_by("slug").values_list("slug", flat=True)[:6])
            if slugs:
                count = placements.count()
                shown = ", ".join(reverse("short_link", args=[slug]) for slug in slugs[:5]) + (", …" * (count > 5))
                messages.warning(request, f"{count} printed code{'s' * (count != 1)} will stop working: "
                                          f"{'their' if count != 1 else 'its'} short link{'s' * (count != 1)} "
                                          f"({shown}) will answer “not found”. To stop a code, switch its placement "
                                          "off or archive its campaign instead: it then leads to the campaign's "
                                          "fallback page and its scans still count.")
        return found


class DistinctPlacementNames(forms.BaseInlineFormSet):
    """The campaign page's placements (all of them: `INLINE_PLACEMENTS`) held to the name rule (`campaigns.names`):
    a new or renamed one may not share its name with another as they will be saved, so two may swap names, and a
    pair of one name made before the rule stays editable."""

    def clean(self) -> None:
        super().clean()
        rows = [(form, names.name_key(form.cleaned_data["name"])) for form in self.forms
                if getattr(form, "cleaned_data", {}).get("name") and not self._should_delete_form(form)]
        for index, (form, key) in enumerate(rows):
            if form.instance.pk is not None and "name" not in form.changed_data:
                continue
            if any(other == key for at, (_, other) in enumerate(rows) if at != index):
                form.add_error("name", names.PLACEMENT_NAME_TAKEN)


class ChangesInTurn:
    """A saved change form works on the row as stored and locked (`campaigns.models.locked_copy`, within the admin's
    transaction): a change made meanwhile on a page or through the API stays."""

    def get_object(self, request, object_id, from_field=None):
        found = self.stored_object(request, object_id, from_field)
        if found is None or request.method != "POST":
            return found
        return locked_copy(found, moving_to=whole(request.POST.get("campaign")))  # a placement's new campaign

    def stored_object(self, request, object_id, from_field=None):
        """The row as the admin finds it (scoped to the user's teams), not locked: for work before the transaction."""
        return super().get_object(request, object_id, from_field)


class PlacementInlineForm(SeenVersion, form_fields.ModelForm):
    """A placement on its campaign's admin page: a change saved meanwhile (a switch-off) is not overwritten unseen
    (`SeenVersion`; the campaign's lock, `ChangesInTurn`, holds its placements' edits elsewhere off meanwhile)."""


class PlacementInline(ArchiveInsteadOfDelete, TeamScopedInline):
    model = Placement
    form = PlacementInlineForm
    formset = DistinctPlacementNames
    extra = 0
    fields = ("name", "kind", "location", "active", "slug")
    readonly_fields = ("slug",)


def counted_done(count: int, noun: str, done: str) -> str:
    return f"{counted(count, noun)} {done}."


# A campaign page with more placements than this lists them on the placements' own admin page instead: an import of
# 3,000 drew 3,000 inline forms (6 MB, 19 s).
INLINE_PLACEMENTS = 50


def too_many_to_inline(campaign: Campaign | None) -> bool:
    """Whether `campaign`'s page lists its placements by a link rather than inline."""
    return campaign is not None and campaign.placements.count() > INLINE_PLACEMENTS


class CampaignAdminForm(SeenVersion, form_fields.ModelForm):
    """The campaign, held to the name rule of the pages (`campaigns.names`); a change made meanwhile is not
    overwritten unseen (`SeenVersion`)."""

    def clean(self) -> dict:
        data = super().clean()
        names.refuse_taken_campaign_name(self, data)
        return data


@admin.register(Campaign)
class CampaignAdmin(ClippedColumns, ChangesInTurn, WarnsOfDeadCodes, ArchiveInsteadOfDelete, TeamScopedAdmin):
    form = CampaignAdminForm
    list_display = ("name_cell", "team", "destination_cell", "starts_on", "ends_on", "archived", "created")
    list_filter = ("archived", "team")
    search_fields = ("name", "destination", "team__name")
    inlines = [PlacementInline]
    actions = ["archive", "unarchive"]

    def get_inlines(self, request, obj=None):
        return [] if too_many_to_inline(obj) else super().get_inlines(request, obj)

    def get_readonly_fields(self, request, obj=None):
        many = too_many_to_inline(obj)
        return (*super().get_readonly_fields(request, obj), *(["placements_listed"] if many else []))

    @admin.display(description="placements")
    def placements_listed(self, obj: Campaign) -> str:
        url = reverse("admin:campaigns_placement_changelist")
        return format_html('<a href="{}?campaign__id__exact={}">{} placements</a> (too many to edit here)', url,
                           obj.pk, obj.placements.count())

    def save_model(self, request, obj, form, change) -> None:
        with history.recorded(obj, request.user):
            super().save_model(request, obj, form, change)

    @admin.action(description="Archive selected campaigns (their codes keep working)", permissions=["change"])
    def archive(self, request, queryset) -> None:
        campaigns = self.changeable(request, queryset)
        for campaign in campaigns:
            campaign.set_archived(True)
        self.message_user(request, counted_done(len(campaigns), "campaign", "archived"))

    @admin.action(description="Unarchive selected campaigns", permissions=["change"])
    def unarchive(self, request, queryset) -> None:
        # As on the pages: one active campaign of a name in a team; a namesake waits for a rename (`campaigns.names`)
        back, kept = 0, []
        for campaign in self.changeable(request, queryset):
            with transaction.atomic():  # the name check holds the team until the campaign is back
                if campaign.archived and names.campaign_name_clash(campaign, campaign.team, campaign.name, False):
                    kept.append(campaign.name)
                    continue
                campaign.set_archived(False)
            back += 1
        self.message_user(request, counted_done(back, "campaign", "unarchived"))
        if kept:
            self.message_user(request, "Still archived, as another active campaign of its team has its name: "
                                       + ", ".join(f"“{name}”" for name in kept) + ". Rename it first.",
                              messages.WARNING)


class PlacementAdminForm(SeenVersion, form_fields.ModelForm):
    """The placement with its artwork judged by `campaigns.artwork` (through `restamps.choose`) and its name by
    `campaigns.names`, and changes made meanwhile not overwritten unseen (`SeenVersion`), as on the pages."""

    restamp = forms.BooleanField(required=False, label="Restamp the artwork for this placement", help_text=(
        "For artwork made for another link: use a copy that carries this placement's short link."))
    print_anyway = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
                                   label="Print anyway, because", help_text=(
                                       "Needed to choose artwork that fails the scan check; recorded with who and "
                                       "when, and the placement shows “will not scan — do not print”."))
    request = None  # set by PlacementAdmin.get_form

    class Meta:
        model = Placement
        fields = "__all__"

    def clean(self) -> dict:
        data = super().clean()
        campaign = data.get("campaign")
        if "name" in data and campaign is not None and names.placement_name_clash(
                self.instance if campaign.pk == self.instance.campaign_id else None, campaign, data["name"]):
            self.add_error("name", names.PLACEMENT_NAME_TAKEN)  # moved to another campaign: a new name there
        candidate = data.get("artwork")
        if candidate is None or candidate.pk == self.instance.artwork_id or "artwork" in self.errors:
            return data  # unchanged artwork was judged when it was chosen
        if self.instance.pk is None:
            self.add_error("artwork", "Save the placement first, then choose its artwork: no picture carries its "
                                      "short link yet.")
            return data
        try:
            data["artwork"] = restamps.choose(
                self.instance, candidate, short_url=self.instance.short_url(self.request), user=self.request.user,
                restamp=bool(data.get("restamp")), print_anyway_reason=data.get("print_anyway", ""))
        except artwork.ArtworkRefused as refused:
            self.add_error("artwork", refused.message)
        return data


@admin.register(Placement)
class PlacementAdmin(ClippedColumns, ChangesInTurn, WarnsOfDeadCodes, ArchiveInsteadOfDelete, TeamScopedAdmin):
    form = PlacementAdminForm
    list_display = ("name_cell", "campaign_cell", "kind", "location_cell", "slug_cell", "active", "deployed_on",
                    "print_state")
    list_filter = ("kind", "active", "campaign__team")
    search_fields = ("name", "location", "slug", "campaign__name")
    readonly_fields = ("slug", "created", "print_anyway_by", "print_anyway_at", "print_anyway_reason")
    raw_id_fields = ("artwork",)
    list_select_related = ("campaign", "artwork")
    actions = ["archive", "unarchive"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id is not None and "_saveasnew" not in request.POST:
            self.prepare_artwork(request, unquote(object_id))
        return super().changeform_view(request, object_id, form_url, extra_context)

    def prepare_artwork(self, request, object_id: str) -> None:
        """Verifying and restamping the artwork asked for take a second (`forms.prepare_artwork`): done before the
        admin's transaction locks the placement (`ChangesInTurn`); the form judges again, quickly, under the lock."""
        placement = self.stored_object(request, object_id)
        if placement is None or not self.has_change_permission(request, placement):
            return  # the change form answers as it would
        form = self.get_form(request, placement, change=True)(request.POST, request.FILES, instance=placement)
        prepare_artwork(form, short_url=placement.short_url(request), user=request.user)

    def save_model(self, request, obj, form, change) -> None:
        if "artwork" in form.changed_data:
            artwork.apply(obj, form.cleaned_data.get("artwork"), user=request.user,
                          print_anyway_reason=form.cleaned_data.get("print_anyway", ""))
        moved_from = form.initial.get("campaign") if change and "campaign" in form.changed_data else None
        with history.recorded(obj, request.user):
            super().save_model(request, obj, form, change)
        if moved_from is not None:  # its scans now count in the other campaign (only staff move one, and only here)
            rollups.refresh_campaigns([moved_from, obj.campaign_id])

    @admin.display(description="slug", ordering="slug")
    def slug_cell(self, placement: Placement) -> str:
        """The short link's slug in a monospaced font: every slug as wide as any other (in the admin's font "WWWWWWWW"
        took ~20 px more than most, and put the list's last column off a 1280 px screen), and 0/O, 1/l told apart."""
        return format_html('<span class="slug">{}</span>', placement.slug)

    @admin.display(description="print")
    @shows_relation("artwork")  # another team's candidate (a row made before the one-team forms): its verdict too
    def print_state(self, placement: Placement) -> str:
        if placement.artwork is None:
            return "plain code"
        return "WILL NOT SCAN — do not print" if artwork.will_not_scan(placement) else "ok"

    @admin.action(description="Switch selected placements off (their codes go to the fallback)",
                  permissions=["change"])
    def archive(self, request, queryset) -> None:
        placements = self.changeable(request, queryset)
        for placement in placements:
            placement.set_active(False)
        self.message_user(request, counted_done(len(placements), "placement", "switched off"))

    @admin.action(description="Switch selected placements on", permissions=["change"])
    def unarchive(self, request, queryset) -> None:
        placements = self.changeable(request, queryset)
        for placement in placements:
            placement.set_active(True)
        self.message_user(request, counted_done(len(placements), "placement", "switched on"))


class BoundedCount(Paginator):
    """A changelist's pages that count at most `bound` rows (one more, to know there are more): the scans' and
    rollups' lists counted every row of the user's teams on each page, a cost that grew with the table (0.2 s for a
    superuser, 0.4 s for a team's staff at 10.7 M rollups). Past the bound the list says "more than" (the app's
    `admin/campaigns/pagination.html`, and its `search_form.html` and `actions.html`, where Django would name the
    bound and one more as the count) and its pages stop there: a search or a filter finds older rows."""

    bound = 10_000

    @cached_property
    def count(self) -> int:
        # Unordered: the default ordering (newest first) made PostgreSQL sort the whole table for the first rows.
        return self.object_list.order_by()[:self.bound + 1].count()

    @property
    def more_than_bound(self) -> bool:
        return self.count > self.bound


@admin.register(ScanEvent)
class ScanEventAdmin(ClippedColumns, SuperusersOnlyFields, TeamScopedAdmin):
    list_display = ("time", "placement_cell", "device_class", "os", "browser", "country", "rule", "is_bot")
    # Filters of fixed choices only, no date drill-down and no count of every row: over a million scans each
    # all-values filter, the date hierarchy and the full count read the whole table on every view (7-11 s).
    list_filter = ("is_bot",)
    search_fields = ("placement__slug", "placement__name", "=country", "=os", "=device_class")
    list_select_related = ("placement__campaign",)
    show_full_result_count = False
    paginator = BoundedCount
    # Old scans' keyed hash of the address: a visitor key of no use to the team's staff, and one the CSV exports
    # leave out too.
    superusers_only = ("client_hash",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyTeamAdmin(TeamScopedAdmin):
    """Looked at here, changed on the team's own pages (which show a secret once and send test deliveries)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# Webhooks are the owners' alone, as on the site and in the API (webhook_api.OWNERS_ONLY): here a viewer read the
# endpoints' addresses (a chat hook's address is its key) and the messages waiting, and an editor deleted an endpoint.
@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OwnersOnly, ReadOnlyTeamAdmin):
    list_display = ("url", "team", "active", "failing_since", "created")
    list_filter = ("active",)
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OwnersOnly, ReadOnlyTeamAdmin):
    list_display = ("time", "endpoint", "event", "message_id", "attempt", "ok", "status_code", "error")
    list_filter = ("ok", "event")
    date_hierarchy = "time"


@admin.register(WebhookOutbox)
class WebhookOutboxAdmin(OwnersOnly, ReadOnlyTeamAdmin):
    """Webhooks that could not be queued yet (Redis away): the drainer queues them once it answers."""

    list_display = ("created", "endpoint", "event", "next_try")
    list_filter = ("event",)


@admin.register(DestinationChange)
class DestinationChangeAdmin(ClippedColumns, ReadOnlyTeamAdmin):
    """The history of where codes lead: read here, reverted on the campaign and placement pages."""

    list_display = ("changed_at", "where_cell", "field", "before_cell", "after_cell", "changed_by_cell")
    list_filter = ("field",)
    search_fields = ("campaign__name", "placement__name", "placement__slug", "before", "after")
    date_hierarchy = "changed_at"
    list_select_related = ("campaign", "placement__campaign", "changed_by")

    def has_delete_permission(self, request, obj=None) -> bool:
        # A history is not edited; only a superuser's delete of its team, campaign or placement takes it along.
        return request.user.is_superuser and super().has_delete_permission(request, obj)


# Alerts, share links and rollups: records the site makes (the daily alert job, the share page, the drainer). Staff
# read them here; editors dismiss alerts and revoke share links in bulk; only a superuser deletes one.

@admin.register(PlacementAlert)
class PlacementAlertAdmin(ClippedColumns, ArchiveInsteadOfDelete, ReadOnlyTeamAdmin):
    list_display = ("created", "placement_cell", "kind", "day", "message", "dismissed_at", "dismissed_by_cell")
    list_filter = ("kind", ("dismissed_at", admin.EmptyFieldListFilter))
    search_fields = ("placement__name", "placement__slug", "placement__campaign__name")
    date_hierarchy = "created"
    list_select_related = ("placement__campaign", "dismissed_by")
    actions = ["dismiss"]

    def has_dismiss_permission(self, request) -> bool:
        return may_change(request.user, None, self.changing_teams)

    @admin.action(description="Dismiss selected alerts", permissions=["dismiss"])
    def dismiss(self, request, queryset) -> None:
        alerts = self.changeable(request, queryset)
        # Only open ones: dismissing twice keeps the first dismissal's who and when (as on the campaign page).
        count = PlacementAlert.objects.filter(pk__in=[alert.pk for alert in alerts], dismissed_at__isnull=True
                                              ).update(dismissed_at=timezone.now(), dismissed_by=request.user)
        self.message_user(request, counted_done(count, "alert", "dismissed"))


@admin.register(ReportShare)
class ReportShareAdmin(ClippedColumns, ArchiveInsteadOfDelete, ReadOnlyTeamAdmin):
    """Share links, by label and campaign: the token is shown once when made and only its hash is kept, so the
    admin shows neither."""

    list_display = ("created", "campaign_cell", "label_cell", "expires", "revoked_at", "created_by_cell")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("label", "campaign__name")
    exclude = ("token_hash",)
    list_select_related = ("campaign", "created_by")
    actions = ["revoke"]
    # A share opens the campaign's report to anyone holding its link, and making or revoking one is an editor's
    # act: a team's viewers see none (like the team's pages, which show shares to editors only).
    seeing_teams = staticmethod(editable_teams)

    def has_revoke_permission(self, request) -> bool:
        return may_change(request.user, None, self.changing_teams)

    @admin.action(description="Revoke selected share links (they open nothing from then on)",
                  permissions=["revoke"])
    def revoke(self, request, queryset) -> None:
        chosen = self.changeable(request, queryset)
        count = ReportShare.objects.filter(pk__in=[share.pk for share in chosen], revoked_at__isnull=True
                                           ).update(revoked_at=timezone.now())
        self.message_user(request, counted_done(count, "share link", "revoked"))


@admin.register(ScanRollup)
class ScanRollupAdmin(ClippedColumns, ArchiveInsteadOfDelete, ReadOnlyTeamAdmin):
    """The daily counts the dashboards sum: kept by the drainer, rebuilt by `qart_rollups`, never edited by hand
    (retention deletes raw scans, so a rollup may be all that is left of them)."""

    list_display = ("day", "placement_cell", "dimension", "value", "scans", "visitors", "first_scan", "last_scan")
    list_filter = ("dimension",)
    search_fields = ("placement__name", "placement__slug")
    list_select_related = ("placement__campaign",)
    show_full_result_count = False  # a count over every rollup of the user's teams for each filtered page
    paginator = BoundedCount

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a superuser neither: the campaigns' rows (`CampaignRollup`) would still count them
