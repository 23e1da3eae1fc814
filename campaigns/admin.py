"""Admin for campaigns, placements and scans.

Printed codes cannot be re-printed, so staff never delete a campaign or placement here: they archive a campaign or
switch a placement off (actions, or the `archived` / `active` fields), and the codes keep redirecting, to the
campaign's fallback, and counting. Only a superuser deletes one, on purpose, scans and all.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet

from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.admin import TeamScopedAdmin, TeamScopedInline


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


class PlacementInline(ArchiveInsteadOfDelete, TeamScopedInline):
    model = Placement
    extra = 0
    fields = ("name", "kind", "location", "active", "slug")
    readonly_fields = ("slug",)


def counted(count: int, noun: str, done: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'} {done}."


@admin.register(Campaign)
class CampaignAdmin(ArchiveInsteadOfDelete, TeamScopedAdmin):
    list_display = ("name", "team", "destination", "starts_on", "ends_on", "archived", "created")
    list_filter = ("archived", "team")
    search_fields = ("name", "destination", "team__name")
    inlines = [PlacementInline]
    actions = ["archive", "unarchive"]

    @admin.action(description="Archive selected campaigns (their codes keep working)", permissions=["change"])
    def archive(self, request, queryset) -> None:
        campaigns = self.changeable(request, queryset)
        for campaign in campaigns:
            campaign.set_archived(True)
        self.message_user(request, counted(len(campaigns), "campaign", "archived"))

    @admin.action(description="Unarchive selected campaigns", permissions=["change"])
    def unarchive(self, request, queryset) -> None:
        campaigns = self.changeable(request, queryset)
        for campaign in campaigns:
            campaign.set_archived(False)
        self.message_user(request, counted(len(campaigns), "campaign", "unarchived"))


@admin.register(Placement)
class PlacementAdmin(ArchiveInsteadOfDelete, TeamScopedAdmin):
    list_display = ("name", "campaign", "kind", "location", "slug", "active", "deployed_on")
    list_filter = ("kind", "active", "campaign__team")
    search_fields = ("name", "location", "slug", "campaign__name")
    readonly_fields = ("slug", "created")
    raw_id_fields = ("artwork",)
    list_select_related = ("campaign",)
    actions = ["archive", "unarchive"]

    @admin.action(description="Switch selected placements off (their codes go to the fallback)",
                  permissions=["change"])
    def archive(self, request, queryset) -> None:
        placements = self.changeable(request, queryset)
        for placement in placements:
            placement.set_active(False)
        self.message_user(request, counted(len(placements), "placement", "switched off"))

    @admin.action(description="Switch selected placements on", permissions=["change"])
    def unarchive(self, request, queryset) -> None:
        placements = self.changeable(request, queryset)
        for placement in placements:
            placement.set_active(True)
        self.message_user(request, counted(len(placements), "placement", "switched on"))


@admin.register(ScanEvent)
class ScanEventAdmin(TeamScopedAdmin):
    list_display = ("time", "placement", "device_class", "os", "browser", "country", "is_bot")
    list_filter = ("is_bot", "device_class", "os", "country")
    search_fields = ("placement__slug", "placement__name")
    date_hierarchy = "time"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
